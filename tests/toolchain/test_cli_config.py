"""The real CLI's view of our stack files: what `pulumi config` reads is what the program and the offline plan read,
and the image hand-off edits a stack file exactly as `pulumi config set imageId` does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.image_handoff import with_image
from plan import offline
from plan.stack_file import SECRET_PLACEHOLDER, StackFileError, read_stack_config
from tests.conftest import STACKS
from tests.plan.test_stack_file import ACCEPTED, MALFORMED
from tests.pulumi_cli import Workspace, toolchain_bin

NEW_IMAGE = "m-bp1ffffffffffffffff9"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = Workspace(tmp_path_factory.mktemp("cli-config"), toolchain_bin())
    for stack in STACKS:
        ws.init_stack(stack)
    yield ws


@pytest.fixture(scope="module")
def scratch(workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare project with stack `x`, whose file the tests overwrite."""
    folder = tmp_path_factory.mktemp("scratch-project")
    (folder / "Pulumi.yaml").write_text("name: ha-webapp\nruntime: python\n")
    workspace.run("stack", "init", "x", "--secrets-provider", "passphrase", cwd=folder)
    return folder


def cli_config(workspace: Workspace, stack: str, cwd: Path | None = None) -> dict[str, Any]:
    """`pulumi config --json`: key -> the value the CLI hands the program (structured ones parsed)."""
    shown = json.loads(workspace.run("config", "--json", "--show-secrets", "--stack", stack, cwd=cwd).stdout)
    return {key: entry.get("objectValue", entry.get("value")) for key, entry in shown.items()}


def ours(values: dict[str, str]) -> dict[str, Any]:
    """The offline reader's config map, structured values parsed like the CLI's objectValue."""
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        try:
            parsed[key] = json.loads(value) if value[:1] in "{[" else value
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


@pytest.mark.parametrize("stack", STACKS)
def test_the_cli_reads_each_stack_file_as_the_offline_plan_does(workspace: Workspace, stack: str) -> None:
    config, _secret_keys = offline.stack_config(stack)
    assert cli_config(workspace, stack) == ours(config)


@pytest.mark.parametrize("stack", STACKS)
def test_config_get_path_reads_every_structured_key_the_program_uses(workspace: Workspace, stack: str) -> None:
    config, _ = offline.stack_config(stack)
    paths = list(_leaf_paths(ours(config)))
    assert any("[" in p for p, _ in paths), "the stack files hold lists (network.zones)"
    for path, value in paths:
        got = workspace.run("config", "get", "--path", path, "--stack", stack).stdout.strip()
        assert got == (json.dumps(value) if isinstance(value, bool) else str(value)), path


def _leaf_paths(config: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    def walk(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for key, inner in value.items():
                yield from walk(f"{prefix}.{key}", inner)
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                yield from walk(f"{prefix}[{index}]", inner)
        else:
            yield prefix, value

    for key, value in config.items():
        if isinstance(value, dict | list):
            yield from walk(key, value)


@pytest.mark.parametrize("stack", STACKS)
def test_the_image_hand_off_edits_a_stack_file_as_pulumi_config_set_does(workspace: Workspace, stack: str) -> None:
    stack_file = workspace.stack_file(stack)
    committed = stack_file.read_text()
    try:
        workspace.run("config", "set", "imageId", NEW_IMAGE, "--stack", stack)
        by_cli = stack_file.read_text()
    finally:
        stack_file.write_text(committed)
    by_handoff = with_image(committed, NEW_IMAGE, stack_file.name)
    assert by_handoff == by_cli


@pytest.mark.parametrize(("content", "stricter"), [(c[1], c[4]) for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_a_stack_file_the_offline_plan_refuses_is_refused_by_the_cli_too(
    workspace: Workspace, scratch: Path, content: str | bytes, stricter: bool
) -> None:
    stack_file = scratch / "Pulumi.x.yaml"
    if isinstance(content, bytes):
        stack_file.write_bytes(content)
    else:
        stack_file.write_text(content)
    with pytest.raises(StackFileError):
        read_stack_config(stack_file, "ha-webapp")
    shown = workspace.run("config", "--json", "--stack", "x", cwd=scratch, check=False)
    if stricter:
        # Refused here on purpose (plan/stack_file.py says why); the CLI reads these.
        assert shown.returncode == 0, shown.stderr
    else:
        assert shown.returncode != 0, f"the CLI read a file the offline plan refuses:\n{shown.stdout}"


@pytest.mark.parametrize(
    ("content", "expected"),
    [c[1:] for c in ACCEPTED if SECRET_PLACEHOLDER not in c[2].values()],
    ids=[c[0] for c in ACCEPTED if SECRET_PLACEHOLDER not in c[2].values()],
)
def test_a_stack_file_the_offline_plan_reads_is_read_to_the_same_values_by_the_cli(
    workspace: Workspace, scratch: Path, content: str, expected: dict[str, str]
) -> None:
    (scratch / "Pulumi.x.yaml").write_text(content, encoding="utf-8")
    assert cli_config(workspace, "x", cwd=scratch) == ours(expected)
