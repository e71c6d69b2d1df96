"""The documentation stays true to the repository: its links resolve, and every settings key has a row.

1. Every relative link in README.md and docs/*.md (`[text](path)`, `[text](path#anchor)`, `![alt](path)`) points at
   a file or folder that exists; an `#anchor` must name a heading of the target page (GitHub's slug rule). Links to
   http(s) and mailto are not checked, nor anything inside code.
2. Every key of the settings model (infra/config.py) has a row in docs/settings.md, spelled as in the stack files:
   `alicloud:region`, `ha-webapp:imageId`, `ha-webapp:network.zones`, `ha-webapp:network.zones[].id`, ...

No Pulumi runtime: the settings model is only inspected, never run.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from infra import config

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_PAGE = ROOT / "docs" / "settings.md"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# ---------------------------------------------------------------------------------------------------------------------
# Markdown, as far as links and headings need it.

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
# [text](target) or ![alt](target), with an optional "title"; text may hold one level of brackets (`[a [b] c]`).
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked out."""
    result, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        result.append((number, line))
    return result


def without_code_spans(text: str) -> str:
    return _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), text)


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link in the page's prose. Code spans are blanked per paragraph, since a span
    may wrap onto the next line."""
    found = []
    lines = prose_lines(page.read_text(encoding="utf-8"))
    text = "\n".join(line for _, line in lines)
    numbers = [number for number, _ in lines]
    blanked = without_code_spans(text)
    for match in _LINK.finditer(blanked):
        line_index = blanked.count("\n", 0, match.start())
        found.append((numbers[line_index], match.group(1)))
    return found


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text without markup, lower-case, punctuation other than `-` and `_`
    removed, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")  # code and emphasis markers (GitHub keeps `_`)
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        heading = _HEADING.match(line)
        if not heading:
            continue
        slug = github_slug(heading.group(2))
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}-{seen[slug]}"
        else:
            seen[slug] = 0
        result.add(slug)
    return result


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for number, target in links(page):
        if re.match(r"(?i)(https?:|mailto:)", target):
            continue
        where = f"{page.relative_to(root)}:{number}: {target}"
        if re.match(r"(?i)[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            problems.append(f"{where}: not a relative link")
            continue
        path_part, _, anchor = target.partition("#")
        path_part = path_part.split("?", 1)[0]
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            problems.append(f"{where}: no such file or folder")
        elif anchor and resolved.suffix == ".md" and resolved.is_file() and anchor not in anchors(resolved):
            problems.append(f"{where}: no heading with anchor #{anchor} in {resolved.relative_to(root)}")
    return problems


def test_the_docs_exist() -> None:
    names = {page.name for page in pages()}
    for name in ("settings.md", "plan.md", "pipeline.md", "state.md", "releases.md", "images.md", "security.md"):
        assert name in names, f"docs/{name} is missing"
    assert "testing.md" in names


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file(page: Path) -> None:
    assert links(page) or page.name != "README.md", "README.md has no links: is the link pattern broken?"
    assert not broken_links(page), "broken links:\n" + "\n".join(broken_links(page))


def test_the_link_check_finds_broken_links(tmp_path: Path) -> None:
    """The checker itself: each broken case is reported, each good one is not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "target.md").write_text("# A title: with `code`, punctuation!\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "[ok](../target.md) [ok](../target.md#a-title-with-code-punctuation) [ok](../target.md#twice-1)\n"
        "[ok](https://example.com/missing) `[not a link](missing.md)` ![ok](../target.md)\n"
        "```\n[in code](missing.md)\n```\n"
        "[bad](missing.md) [bad](../target.md#nowhere) [bad](/abs.md) [bad](../target.md#twice-2)\n"
    )
    problems = broken_links(page, root=tmp_path)
    assert [p.split(": ", 2)[1] for p in problems] == [
        "missing.md",
        "../target.md#nowhere",
        "/abs.md",
        "../target.md#twice-2",
    ], problems


# ---------------------------------------------------------------------------------------------------------------------
# Settings keys.


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds, directly or inside Optional/Union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _list_item_models(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models a list annotation holds as items (`list[ZoneSettings]`)."""
    if typing.get_origin(annotation) in (list, tuple, set, frozenset):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _list_item_models(arg)]
    return []


def _walk(model: type[BaseModel], prefix: str) -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        key = f"{prefix}.{alias}"
        keys.append(key)
        for sub in _models_in(field.annotation):
            keys.extend(_walk(sub, key))
        for item in _list_item_models(field.annotation):
            keys.extend(_walk(item, f"{key}[]"))
    return keys


# Fields of the settings model that are not stack-file keys: Pulumi supplies the project and stack names.
NOT_STACK_KEYS = {"project", "stack"}


def settings_keys() -> list[str]:
    """Every key a stack file may hold, derived from the settings model, spelled as in the stack files."""
    keys = []
    for name, field in config.Settings.model_fields.items():
        alias = field.alias or name
        if name in NOT_STACK_KEYS:
            continue
        if name == "region":
            top = config.REGION_KEY
        else:
            assert alias in config._KEYS, f"settings field {name} ({alias}) is neither a stack-file key nor known here"
            top = f"{config.PROJECT}:{alias}"
        keys.append(top)
        for sub in _models_in(field.annotation):
            keys.extend(_walk(sub, top))
        for item in _list_item_models(field.annotation):
            keys.extend(_walk(item, f"{top}[]"))
    return keys


def documented_keys(page: Path) -> set[str]:
    """The keys in the first column of the page's tables (each in backticks)."""
    keys = set()
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        cells = line.strip().split("|")
        if not line.lstrip().startswith("|") or len(cells) < 3:
            continue
        keys.update(re.findall(r"`([^`]+)`", cells[1]))
    return keys


def test_the_key_list_is_derived_from_the_model() -> None:
    keys = settings_keys()
    # Spot checks that the walk reaches every level and spells keys as the stack files do.
    for key in (
        "alicloud:region",
        "ha-webapp:imageId",
        "ha-webapp:app.port",
        "ha-webapp:network.zones",
        "ha-webapp:network.zones[].vswitchCidr",
        "ha-webapp:database.instanceClass",
        "ha-webapp:loadBalancer.eipBandwidthMbps",
        "ha-webapp:dns.subDomain",
        "ha-webapp:allowReplacement",
    ):
        assert key in keys, key
    assert len(keys) == len(set(keys))


def test_every_settings_key_is_documented() -> None:
    missing = [key for key in settings_keys() if key not in documented_keys(SETTINGS_PAGE)]
    assert not missing, "keys of infra/config.py without a row in docs/settings.md:\n" + "\n".join(missing)


def test_every_documented_key_exists() -> None:
    """A row for a key the model does not have (renamed, removed, misspelt) is wrong too."""
    known = set(settings_keys())
    extra = [key for key in documented_keys(SETTINGS_PAGE) if key.startswith(("ha-webapp:", "alicloud:"))]
    assert not [key for key in extra if key not in known], [key for key in extra if key not in known]
