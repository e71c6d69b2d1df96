"""The app pin (app.yaml, pipeline/app_pin.py): validation, the image's catalog key, fetching and checking the artifact.

Downloads go to a local HTTP server on 127.0.0.1. Seen failing: with the `extra="forbid"` of the models dropped (the
unknown-key rows), with the one-source validator removed (both/neither), with the checksum comparison removed (the
wrong artifact is accepted), with the runtime left out of the key (a new start command keeps the old image), and with
the redirect handler's header removal dropped (the token reaches the other origin).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import app_pin
from pipeline.app_pin import PinError, parse_pin
from tests.fakes.registry import Served, registry_servers

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # pragma: allowlist secret (a commit SHA)
ARTIFACT = b"PK\x03\x04 the app's jar, as the app's own pipeline published it"
ARTIFACT_SHA256 = hashlib.sha256(ARTIFACT).hexdigest()
RUNTIME = {
    "file_name": "app.jar",
    "start_command": "/usr/bin/java -jar /opt/app/app.jar --server.port=${APP_PORT}",
    "packages": ["openjdk-17-jre-headless"],
    "migrate_command": "/opt/flyway/flyway migrate",
}


def artifact_pin(url: str = "https://gitlab.example.com/app.jar", **changes: Any) -> dict[str, Any]:
    return {"artifact": {"version": "1.4.2", "url": url, "sha256": ARTIFACT_SHA256, **changes}, "runtime": RUNTIME}


def text(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False)


# --- validation (pure) ----------------------------------------------------------------------------------------------


def test_the_shipped_pin_builds_the_example_app() -> None:
    pin = app_pin.load_pin(ROOT)
    assert pin.build is not None and pin.build.path == "app" and pin.artifact is None
    assert pin.runtime.start_command.startswith(f"/opt/app/{pin.runtime.file_name} ")


def test_a_good_artifact_pin() -> None:
    pin = parse_pin(text(artifact_pin()))
    assert pin.source == "artifact" and pin.artifact is not None and pin.artifact.version == "1.4.2"


def without(document: dict[str, Any], *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    section = copy
    for part in path[:-1]:
        section = section[part]
    del section[path[-1]]
    return copy


def changed(document: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    section = copy
    for part in path[:-1]:
        section = section[part]
    section[path[-1]] = value
    return copy


BUILD = {"build": {"path": "app"}, "runtime": RUNTIME}
ARTIFACT_PIN = artifact_pin()

# case -> (document, the expected problem line after "app.yaml: ")
BAD: dict[str, tuple[Any, str]] = {
    "both sources": ({**ARTIFACT_PIN, **BUILD}, "build or artifact: expected exactly one of build or artifact, got"),
    "neither source": ({"runtime": RUNTIME}, "expected exactly one of build or artifact, got neither"),
    "no runtime": (without(BUILD, "runtime"), "runtime: required key is missing"),
    "unknown top-level key": ({**BUILD, "verison": "1"}, "verison: unknown key"),
    "build.path absolute": (changed(BUILD, "/srv/app", "build", "path"), "build.path: expected a folder inside"),
    "build.path outside": (changed(BUILD, "../app", "build", "path"), "build.path: expected a folder inside"),
    "build.path not a string": (changed(BUILD, ["app"], "build", "path"), "build.path: input should be a valid string"),
    "build unknown key": (changed(BUILD, "go build", "build", "command"), "build.command: unknown key"),
    "artifact.version missing": (without(ARTIFACT_PIN, "artifact", "version"), "artifact.version: required key"),
    "artifact.version a number": (changed(ARTIFACT_PIN, 1.4, "artifact", "version"), "artifact.version: input should"),
    "artifact.version with a space": (
        changed(ARTIFACT_PIN, "1.4 beta", "artifact", "version"),
        "artifact.version: expected 1-40 letters, digits",
    ),
    "artifact.version too long": (changed(ARTIFACT_PIN, "1" * 41, "artifact", "version"), "artifact.version: expect"),
    "artifact.url plain http": (
        changed(ARTIFACT_PIN, "http://gitlab.example.com/app.jar", "artifact", "url"),
        "artifact.url: expected an https:// URL",
    ),
    "artifact.url ftp": (changed(ARTIFACT_PIN, "ftp://example.com/a.jar", "artifact", "url"), "artifact.url: expect"),
    "artifact.url no host": (changed(ARTIFACT_PIN, "https:///app.jar", "artifact", "url"), "artifact.url: expected"),
    "artifact.sha256 short": (
        changed(ARTIFACT_PIN, ARTIFACT_SHA256[:63], "artifact", "sha256"),
        "artifact.sha256: expected the artifact's SHA-256 as 64 lower-case hex digits",
    ),
    "artifact.sha256 upper case": (
        changed(ARTIFACT_PIN, ARTIFACT_SHA256.upper(), "artifact", "sha256"),
        "artifact.sha256: expected the artifact's SHA-256",
    ),
    "artifact.sha256 not hex": (changed(ARTIFACT_PIN, "g" * 64, "artifact", "sha256"), "artifact.sha256: expected"),
    "artifact unknown key": (changed(ARTIFACT_PIN, "x", "artifact", "md5"), "artifact.md5: unknown key"),
    "runtime.file_name a path": (
        changed(BUILD, "bin/app", "runtime", "file_name"),
        "runtime.file_name: expected a file name such as app or app.jar",
    ),
    "runtime.file_name hidden": (changed(BUILD, ".app", "runtime", "file_name"), "runtime.file_name: expected"),
    "runtime.start_command relative": (
        changed(BUILD, "java -jar app.jar", "runtime", "start_command"),
        "runtime.start_command: expected a command starting with an absolute path",
    ),
    "runtime.start_command two lines": (
        changed(BUILD, "/bin/app\n--flag", "runtime", "start_command"),
        "runtime.start_command: expected one non-empty line",
    ),
    "runtime.packages empty": (changed(BUILD, [], "runtime", "packages"), "runtime.packages: list should have"),
    "runtime.packages a string": (
        changed(BUILD, "ca-certificates", "runtime", "packages"),
        "runtime.packages: input should be a valid list",
    ),
    "runtime.packages a bad name": (
        changed(BUILD, ["ca-certificates", "Java 17"], "runtime", "packages"),
        "runtime.packages.1: expected a Debian package name",
    ),
    "runtime.migrate_command empty": (
        changed(BUILD, " ", "runtime", "migrate_command"),
        "runtime.migrate_command: expected one non-empty line",
    ),
    "runtime.migrate_command missing": (
        without(BUILD, "runtime", "migrate_command"),
        "runtime.migrate_command: required key is missing",
    ),
    "runtime unknown key": (changed(BUILD, "8080", "runtime", "port"), "runtime.port: unknown key"),
    "not a mapping": (["build", "runtime"], "expected a mapping with runtime and one of build or artifact"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_pin_is_refused_naming_its_key(case: str) -> None:
    document, expected = BAD[case]
    with pytest.raises(PinError) as caught:
        parse_pin(text(document))
    assert any(problem.startswith("app.yaml: ") and expected in problem for problem in caught.value.problems), (
        caught.value.problems
    )


def test_plain_http_is_accepted_only_to_this_machine() -> None:
    for url in ("http://127.0.0.1:8000/app.jar", "http://localhost/app.jar", "http://[::1]:9/app.jar"):
        assert parse_pin(text(artifact_pin(url))).artifact is not None
    with pytest.raises(PinError):
        parse_pin(text(artifact_pin("http://127.0.0.1.example.com/app.jar")))


def test_every_problem_is_reported_at_once() -> None:
    document = changed(changed(ARTIFACT_PIN, "short", "artifact", "sha256"), "rel", "runtime", "start_command")
    with pytest.raises(PinError) as caught:
        parse_pin(text(document))
    assert len(caught.value.problems) == 2, caught.value.problems


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository root with the real image template and an app folder."""
    shutil.copytree(ROOT / "packer", tmp_path / "packer", ignore=shutil.ignore_patterns("manifest.json"))
    (tmp_path / "app").mkdir()
    return tmp_path


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.app_pin", "--project-dir", str(project), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "app.yaml does not exist"),
        ("build: {path: app\n", "app.yaml is not valid YAML"),
        (text(changed(BUILD, "src", "build", "path")), "app.yaml: build.path: 'src' is not a folder of the repository"),
        (text(changed(BUILD, "Java 17", "runtime", "packages")), "app.yaml: runtime.packages: input should be a valid"),
        ("[" * 10000, "app.yaml"),
    ],
    ids=["missing", "not YAML", "no such folder", "bad key", "nested too deeply"],
)
def test_check_exits_2_with_one_line_per_problem(project: Path, content: str | None, expected: str) -> None:
    if content is not None:
        (project / "app.yaml").write_text(content)
    result = cli(project, "check")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_check_accepts_the_shipped_pin() -> None:
    result = cli(ROOT, "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "app.yaml: build mode (app), runs app\n"


# --- the key --------------------------------------------------------------------------------------------------------


def key_of(project: Path, document: dict[str, Any]) -> str:
    (project / "app.yaml").write_text(text(document))
    return app_pin.key(project)


def test_same_pin_same_key_and_a_new_pin_a_new_key(project: Path) -> None:
    first = key_of(project, ARTIFACT_PIN)
    assert key_of(project, ARTIFACT_PIN) == first
    # A new artifact, or the same one run differently, is a new image.
    assert key_of(project, changed(ARTIFACT_PIN, "f" * 64, "artifact", "sha256")) != first
    assert key_of(project, changed(ARTIFACT_PIN, "/usr/bin/java -jar x", "runtime", "start_command")) != first
    assert key_of(project, changed(ARTIFACT_PIN, ["openjdk-21-jre-headless"], "runtime", "packages")) != first
    assert key_of(project, changed(ARTIFACT_PIN, "/opt/app/app migrate", "runtime", "migrate_command")) != first
    # The same bytes under another label or address are the same image: the key is what goes into the image.
    assert key_of(project, changed(ARTIFACT_PIN, "1.4.2-again", "artifact", "version")) == first
    assert key_of(project, changed(ARTIFACT_PIN, "https://mirror.example.com/a.jar", "artifact", "url")) == first


def test_a_template_change_is_a_new_key_and_packers_outputs_are_not(project: Path) -> None:
    first = key_of(project, ARTIFACT_PIN)
    (project / "packer" / "manifest.json").write_text('{"builds": []}')  # written by `packer build`
    assert app_pin.key(project) == first
    script = project / "packer" / "scripts" / "provision.sh"
    script.write_text(script.read_text() + "\n# one more line\n")
    second = app_pin.key(project)
    assert second != first
    script.chmod(script.stat().st_mode ^ 0o100)
    third = app_pin.key(project)
    assert third not in (first, second)
    (project / "packer" / "files" / "motd").write_text("welcome\n")
    assert app_pin.key(project) not in (first, second, third)


def test_build_mode_keys_by_the_built_artifact(project: Path) -> None:
    (project / "app.yaml").write_text(text(BUILD))
    result = cli(project, "key")
    assert result.returncode == 2 and "dist/app.jar does not exist" in result.stderr
    (project / "dist").mkdir()
    (project / "dist" / "app.jar").write_bytes(ARTIFACT)
    result = cli(project, "key")
    assert result.returncode == 0, result.stderr
    # The same bytes built here or downloaded are the same image.
    assert result.stdout.strip() == key_of(project, ARTIFACT_PIN)


# --- fetching -------------------------------------------------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[tuple[Served, Served]]:
    with registry_servers() as started:
        yield started


def test_fetch_downloads_with_the_job_token_and_checks_the_checksum(
    project: Path, servers: tuple[Served, Served], tmp_path: Path
) -> None:
    registry, _ = servers
    registry.routes["/app.jar"] = (200, ARTIFACT, {})
    (project / "app.yaml").write_text(text(artifact_pin(f"{registry.url}/app.jar")))
    output = tmp_path / "fetched"
    fetched = app_pin.fetch(project, output, COMMIT, environ={"CI_JOB_TOKEN": "job-token-1"})
    assert (output / "app.jar").read_bytes() == ARTIFACT
    assert fetched.sha256 == ARTIFACT_SHA256 and fetched.version == "1.4.2" and fetched.source == "artifact"
    assert fetched.key == app_pin.key(project)
    assert registry.requests[0][1].get("job-token") == "job-token-1"
    assert app_pin.load_fetched(output / "pin.json") == fetched


def test_a_wrong_artifact_is_refused_saying_expected_and_got(
    project: Path, servers: tuple[Served, Served], tmp_path: Path
) -> None:
    registry, _ = servers
    tampered = ARTIFACT + b" and something else"
    registry.routes["/app.jar"] = (200, tampered, {})
    (project / "app.yaml").write_text(text(artifact_pin(f"{registry.url}/app.jar")))
    output = tmp_path / "fetched"
    result = cli(project, "fetch", "--output", str(output), "--commit", COMMIT)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: app.yaml: artifact.sha256: the file downloaded from {registry.url}/app.jar has SHA-256"
        f" {hashlib.sha256(tampered).hexdigest()}, expected {ARTIFACT_SHA256}; refusing it (a changed or corrupted"
        " artifact, or a wrong pin)\n"
    )
    # Nothing a later step could mistake for the checked artifact.
    assert list(output.iterdir()) == []


def test_a_redirect_to_another_origin_does_not_get_the_token(
    project: Path, servers: tuple[Served, Served], tmp_path: Path
) -> None:
    registry, storage = servers
    registry.routes["/app.jar"] = (302, b"", {"Location": f"{storage.url}/signed/app.jar?sig=1"})
    storage.routes["/signed/app.jar?sig=1"] = (200, ARTIFACT, {})
    (project / "app.yaml").write_text(text(artifact_pin(f"{registry.url}/app.jar")))
    app_pin.fetch(project, tmp_path / "fetched", COMMIT, environ={"CI_JOB_TOKEN": "job-token-1"})
    assert registry.requests[0][1].get("job-token") == "job-token-1"
    assert [path for path, _ in storage.requests] == ["/signed/app.jar?sig=1"]
    assert "job-token" not in storage.requests[0][1]


@pytest.mark.parametrize(
    ("route", "expected"),
    [("/missing.jar", "GET {url}/missing.jar answered HTTP 404"), (None, "cannot download http://127.0.0.1:9/app.jar")],
    ids=["404", "nothing listening"],
)
def test_a_failed_download_is_one_line(
    project: Path, servers: tuple[Served, Served], tmp_path: Path, route: str | None, expected: str
) -> None:
    registry, _ = servers
    url = f"{registry.url}{route}" if route else "http://127.0.0.1:9/app.jar"
    (project / "app.yaml").write_text(text(artifact_pin(url)))
    result = cli(project, "fetch", "--output", str(tmp_path / "fetched"), "--commit", COMMIT)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and expected.format(url=registry.url) in result.stderr


def test_build_mode_takes_the_build_jobs_output(project: Path, tmp_path: Path) -> None:
    (project / "app.yaml").write_text(text(BUILD))
    (project / "dist").mkdir()
    (project / "dist" / "app.jar").write_bytes(ARTIFACT)
    fetched = app_pin.fetch(project, tmp_path / "fetched", COMMIT)
    assert (fetched.source, fetched.version, fetched.sha256) == ("build", COMMIT[:8], ARTIFACT_SHA256)
    assert fetched.artifact.read_bytes() == ARTIFACT and fetched.origin == "app"


def test_packer_vars_carry_the_pin_and_refuse_an_artifact_changed_after_fetch(project: Path, tmp_path: Path) -> None:
    (project / "app.yaml").write_text(text(BUILD))
    (project / "dist").mkdir()
    (project / "dist" / "app.jar").write_bytes(ARTIFACT)
    output = tmp_path / "fetched"
    assert cli(project, "fetch", "--output", str(output), "--commit", COMMIT).returncode == 0
    var_file = tmp_path / "app.pkrvars.json"
    args = ("packer-vars", "--fetched", str(output / "pin.json"), "--commit", COMMIT, "--output", str(var_file))
    result = cli(project, *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(var_file.read_text()) == {
        "app_artifact": str((output / "app.jar").resolve()),
        "app_file_name": "app.jar",
        "app_version": COMMIT[:8],
        "git_commit": COMMIT,
        "runtime_packages": ["openjdk-17-jre-headless"],
        "start_command": RUNTIME["start_command"],
        "migrate_command": RUNTIME["migrate_command"],
    }
    (output / "app.jar").write_bytes(b"swapped")
    result = cli(project, *args)
    assert result.returncode == 2 and "changed after `fetch` checked it" in result.stderr
