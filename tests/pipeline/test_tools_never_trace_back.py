"""The pipeline's tools end every failure with exit 2 and one line, never a traceback; an answer they cannot read is
"cannot tell", never "not there"."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import image_handoff, state_bucket
from tests.pipeline.test_image_handoff import COMMIT, IMAGE_A, build, manifest

ROOT = Path(__file__).resolve().parents[2]


class _Answer(http.server.BaseHTTPRequestHandler):
    """Answers every request with the server's status and an HTML page: a web server or proxy, not S3."""

    def _answer(self) -> None:
        status = self.server.status  # type: ignore[attr-defined]
        body = b"<html><body><h1>Not an S3 endpoint</h1></body></html>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer  # noqa: N815 (http.server's method names)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def not_s3(oss_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], str]]:
    """Starts a local HTTP server that answers every request with the given status and HTML; points OSS_ENDPOINT at
    it and returns its URL."""
    servers: list[http.server.HTTPServer] = []

    def start(status: int) -> str:
        server = http.server.HTTPServer(("127.0.0.1", 0), _Answer)
        server.status = status  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("OSS_ENDPOINT", url)
        monkeypatch.setenv("STATE_BUCKET", "ha-webapp-state-test")
        return url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _one_line_exit_2(code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


# Bad answers that are already refused (a 200 page that is not JSON, a 403 or 500) are covered by test_image_handoff.
@pytest.mark.parametrize("status", [404])
def test_show_against_an_endpoint_that_is_not_s3_cannot_tell(
    not_s3: Callable[[int], str], status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    not_s3(status)
    code = image_handoff.main(["show", "--commit", COMMIT])
    out, err = capsys.readouterr()
    _one_line_exit_2(code, err)
    # Exit 1 ("no image recorded") would make the pipeline build the commit a second time.
    assert "no image recorded" not in out
    assert "cannot tell" in err, err


# A page with a 200 status is what a web server or a captive proxy answers; errors with a status were refused already.
@pytest.mark.parametrize("status", [200])
def test_state_bucket_against_an_endpoint_that_is_not_s3(
    not_s3: Callable[[int], str], status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    not_s3(status)
    code = state_bucket.main(["--bucket", "ha-webapp-state-test", "--region", "cn-hangzhou"])
    _one_line_exit_2(code, capsys.readouterr().err)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# (id, manifest text, stack file bytes (None: the real dev file), what the one line says)
BAD_INPUT: list[tuple[str, str, bytes | None, str]] = [
    ("build-time-absurd", manifest(build(f"cn-hangzhou:{IMAGE_A}", build_time=10**20)), None, "build_time"),
    ("build-time-negative", manifest(build(f"cn-hangzhou:{IMAGE_A}", build_time=-1)), None, "build_time"),
    (
        "build-time-year-10000",
        manifest(build(f"cn-hangzhou:{IMAGE_A}", build_time=253_402_300_800)),
        None,
        "build_time",
    ),
    ("manifest-deeply-nested", _nested(100_000), None, "nested too deeply"),
    (
        "manifest-deeply-nested-inside",
        json.dumps({"builds": [build(f"cn-hangzhou:{IMAGE_A}")], "last_run_uuid": "run-2"})[:-1]
        + ', "x": '
        + _nested(100_000)
        + "}",
        None,
        "nested too deeply",
    ),
    (
        "stack-file-not-utf8",
        manifest(build(f"cn-hangzhou:{IMAGE_A}")),
        b"config:\n  alicloud:region: caf\xe9\n",
        "UTF-8",
    ),
    (
        "stack-file-deeply-nested",
        manifest(build(f"cn-hangzhou:{IMAGE_A}")),
        ("config:\n  x: " + _nested(3_000) + "\n").encode(),
        "Pulumi.dev.yaml",
    ),
]


@pytest.mark.parametrize(
    ("manifest_text", "stack_bytes", "message"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_set_on_bad_input_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    manifest_text: str,
    stack_bytes: bytes | None,
    message: str,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_bytes(stack_bytes if stack_bytes is not None else (ROOT / "Pulumi.dev.yaml").read_bytes())
    before = stack_file.read_bytes()
    path = tmp_path / "manifest.json"
    path.write_text(manifest_text)
    code = image_handoff.main(["--project-dir", str(project), "set", "--stack", "dev", "--manifest", str(path)])
    err = capsys.readouterr().err
    _one_line_exit_2(code, err)
    assert message in err, err
    assert stack_file.read_bytes() == before


def test_a_catalog_entry_nested_too_deeply_is_refused() -> None:
    with pytest.raises(image_handoff.HandoffError, match="nested too deeply"):
        image_handoff.parse_catalog_entry(_nested(100_000).encode(), "images/x.json")


def test_resolve_without_git_on_path_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.dev.yaml").write_bytes((ROOT / "Pulumi.dev.yaml").read_bytes())
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code = image_handoff.main(["--project-dir", str(project), "resolve", "--stack", "dev"])
    err = capsys.readouterr().err
    _one_line_exit_2(code, err)
    assert "git" in err, err
