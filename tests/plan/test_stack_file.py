"""Stack files read as the Pulumi CLI reads them: every malformed file is exit 2 naming file, line and key.

MALFORMED and ACCEPTED are plain tables on purpose: once the toolchain provides the real `pulumi` CLI, a test can run
the same files through `pulumi config --json --stack <stack>` and check that the CLI refuses exactly the MALFORMED ones
(except those marked `stricter`, which this reader refuses on purpose) and reads the ACCEPTED ones to the same values.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from plan import __main__ as plan_main
from plan import offline
from plan.stack_file import SECRET_PLACEHOLDER, StackFileError, read_stack_config

# (id, file content, line named, key named ("" when the problem is the file itself), stricter than the CLI)
MALFORMED: list[tuple[str, str | bytes, int | None, str, bool]] = [
    ("top-level-list", "- config\n- x\n", 1, "", False),
    ("top-level-string", "just a string\n", 1, "", False),
    ("top-level-number", "42\n", 1, "", False),
    ("config-list", "config:\n  - ha-webapp:protect\n", 2, "config", False),
    ("config-string", "config: ha-webapp:protect=true\n", 1, "config", False),
    ("syntax-error", "config:\n  ha-webapp:app: {instanceType: [ecs.g7.large\n", 3, "", False),
    ("bad-indentation", "config:\n  ha-webapp:protect: true\n ha-webapp:imageId: m-1\n", 3, "", False),
    ("tab-indentation", "config:\n\tha-webapp:protect: true\n", 2, "", False),
    (
        "python-object-tag",
        "config:\n  ha-webapp:app: !!python/object/apply:os.system ['true']\n",
        2,
        "ha-webapp:app",
        True,
    ),
    ("python-name-tag", "config:\n  ha-webapp:imageId: !!python/name:os.system\n", 2, "ha-webapp:imageId", True),
    ("local-tag", "config:\n  ha-webapp:protect: !secret true\n", 2, "ha-webapp:protect", True),
    ("tagged-mapping", "config:\n  ha-webapp:app: !App {instanceType: ecs.g7.large}\n", 2, "ha-webapp:app", True),
    ("int-tag-on-text", "config:\n  ha-webapp:protect: !!int yes\n", 2, "ha-webapp:protect", False),
    ("bad-binary", "config:\n  ha-webapp:imageId: !!binary '***'\n", 2, "ha-webapp:imageId", False),
    ("non-string-nested-key", "config:\n  ha-webapp:app:\n    1: ecs.g7.large\n", 3, "ha-webapp:app.1", True),
    ("boolean-nested-key", "config:\n  ha-webapp:app:\n    true: 1\n", 3, "ha-webapp:app.true", True),
    ("list-as-key", "config:\n  ? [a, b]\n  : 1\n", 2, "config", False),
    (
        "duplicate-key",
        "config:\n  ha-webapp:protect: true\n  ha-webapp:protect: false\n",
        3,
        "ha-webapp:protect",
        False,
    ),
    (
        "duplicate-nested-key",
        "config:\n  ha-webapp:app:\n    serversPerZone: 1\n    serversPerZone: 2\n",
        4,
        "ha-webapp:app.serversPerZone",
        False,
    ),
    (
        "duplicate-config",
        "config:\n  ha-webapp:protect: true\nconfig:\n  ha-webapp:protect: false\n",
        3,
        "config",
        False,
    ),
    (
        "duplicate-after-namespacing",
        "config:\n  protect: true\n  ha-webapp:protect: false\n",
        3,
        "ha-webapp:protect",
        True,
    ),
    ("key-with-two-colons", "config:\n  ha-webapp:app:port: 8080\n", 2, "ha-webapp:app:port", False),
    ("unknown-alias", "config:\n  ha-webapp:app: *base\n", 2, "", False),
    ("infinite-number", "config:\n  ha-webapp:app: {serversPerZone: .inf}\n", 2, "ha-webapp:app", False),
    ("deep-nesting", "config:\n  ha-webapp:app: " + "[" * 100 + "]" * 100 + "\n", 2, "", True),
    ("not-utf8", b"config:\n  ha-webapp:imageId: m-caf\xe9\n", 2, "", False),
    ("utf16-without-bom", "config: {}\n".encode("utf-16-le"), 1, "", False),
]

# (id, file content, the config map the program receives); shared with the future `pulumi config` check.
ACCEPTED: list[tuple[str, str, dict[str, str]]] = [
    ("empty-file", "", {}),
    ("empty-config", "config:\n", {}),
    (
        "other-top-level-keys",
        "encryptionsalt: v1:abc\nconfig:\n  ha-webapp:protect: true\n",
        {"ha-webapp:protect": "true"},
    ),
    # What the real CLI shows (tests/toolchain/test_cli_config.py): YAML v3 decodes these into Go's time.Time.
    (
        "date-becomes-go-time",
        "config:\n  ha-webapp:imageId: 2024-01-01\n",
        {"ha-webapp:imageId": "2024-01-01 00:00:00 +0000 UTC"},
    ),
    (
        "timestamp-becomes-go-time",
        "config:\n  ha-webapp:app: {built: 2024-01-01 10:00:00}\n",
        {"ha-webapp:app": '{"built": "2024-01-01 10:00:00 +0000 UTC"}'},
    ),
    (
        "timestamp-with-offset",
        "config:\n  ha-webapp:imageId: 2024-01-01T10:00:00.25+02:00\n",
        {"ha-webapp:imageId": "2024-01-01 10:00:00.25 +0200 +0200"},
    ),
    ("date-like-text", "config:\n  ha-webapp:imageId: 2024-01\n", {"ha-webapp:imageId": "2024-01"}),
    ("binary-is-decoded", "config:\n  ha-webapp:imageId: !!binary bS0x\n", {"ha-webapp:imageId": "m-1"}),
    ("explicit-str", "config:\n  ha-webapp:protect: !!str true\n", {"ha-webapp:protect": "true"}),
    ("capitalised-bool", "config:\n  ha-webapp:protect: True\n", {"ha-webapp:protect": "true"}),
    ("yes-is-text", "config:\n  ha-webapp:protect: yes\n", {"ha-webapp:protect": "yes"}),
    ("empty-value", "config:\n  ha-webapp:imageId:\n", {"ha-webapp:imageId": ""}),
    ("hex-number", "config:\n  ha-webapp:imageId: 0x10\n", {"ha-webapp:imageId": "16"}),
    ("whole-float", "config:\n  ha-webapp:imageId: 2.0\n", {"ha-webapp:imageId": "2"}),
    ("large-float", "config:\n  ha-webapp:imageId: 1234567.0\n", {"ha-webapp:imageId": "1234567"}),
    ("huge-float", "config:\n  ha-webapp:imageId: 1.5e+22\n", {"ha-webapp:imageId": "1.5e+22"}),
    ("tiny-float", "config:\n  ha-webapp:imageId: 0.0000001\n", {"ha-webapp:imageId": "1e-7"}),
    (
        "nested-whole-float-is-an-int",
        "config:\n  ha-webapp:app: {serversPerZone: 2.0, ratio: 2.5}\n",
        {"ha-webapp:app": '{"serversPerZone": 2, "ratio": 2.5}'},
    ),
    ("key-without-namespace", "config:\n  protect: true\n", {"ha-webapp:protect": "true"}),
    ("old-config-form", "config:\n  ha-webapp:config:protect: true\n", {"ha-webapp:protect": "true"}),
    (
        "anchor-and-merge",
        "config:\n  ha-webapp:app: &app {instanceType: ecs.g7.large, port: 8080}\n"
        "  ha-webapp:database:\n    <<: *app\n    port: 9000\n",
        {
            "ha-webapp:app": '{"instanceType": "ecs.g7.large", "port": 8080}',
            "ha-webapp:database": '{"instanceType": "ecs.g7.large", "port": 9000}',
        },
    ),
    ("byte-order-mark", "\ufeffconfig:\n  ha-webapp:protect: false\n", {"ha-webapp:protect": "false"}),
    ("only-the-first-document", "config:\n  ha-webapp:protect: true\n---\nconfig: {}\n", {"ha-webapp:protect": "true"}),
    ("secure-value", "config:\n  ha-webapp:token:\n    secure: v1:abc\n", {"ha-webapp:token": SECRET_PLACEHOLDER}),
]


def _write(tmp_path: Path, content: str | bytes) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: ha-webapp\n")
    path = tmp_path / "Pulumi.x.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(("content", "line", "key"), [c[1:4] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_stack_files_are_refused_with_file_line_and_key(
    tmp_path: Path, content: str | bytes, line: int | None, key: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(StackFileError) as raised:
        read_stack_config(path, "ha-webapp")
    error = raised.value
    assert (error.line, error.key) == (line, key), str(error)
    assert str(error).startswith(f"Pulumi.x.yaml:{line}: "), str(error)


@pytest.mark.parametrize("content", [c[1] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_the_plan_exits_2_on_a_malformed_stack_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], content: str | bytes
) -> None:
    _write(tmp_path, content)
    monkeypatch.setattr(offline, "PROJECT_DIR", tmp_path)
    assert plan_main.main(["x"]) == plan_main.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("python -m plan: Pulumi.x.yaml"), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_stack_files_read_to_what_the_cli_hands_the_program(
    tmp_path: Path, content: str, expected: dict[str, str]
) -> None:
    assert read_stack_config(_write(tmp_path, content), "ha-webapp").values == expected


def test_aliases_cannot_expand_without_limit(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(StackFileError, match="aliases expand"):
        read_stack_config(_write(tmp_path, "\n".join(lines) + "\nconfig: {}\n"), "ha-webapp")


def test_the_committed_stack_files_read_the_same_as_before() -> None:
    config, secret_keys = offline.stack_config("prod")
    assert secret_keys == []
    assert config["ha-webapp:protect"] == "true"
    assert config["ha-webapp:app"] == textwrap.dedent('{"instanceType": "ecs.g7.large", "serversPerZone": 2}')
