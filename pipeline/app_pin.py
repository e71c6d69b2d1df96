"""The app pin: `app.yaml` at the repository root says which app artifact the image holds and how the image runs it.

    python -m pipeline.app_pin check
    python -m pipeline.app_pin key [--built FILE]
    python -m pipeline.app_pin fetch --output DIR --commit SHA [--built FILE]
    python -m pipeline.app_pin packer-vars --fetched DIR/pin.json --commit SHA --output FILE.pkrvars.json

Exactly one source:

    build:    {path: app}                                          the app lives here; app:build leaves its build in
                                                                   dist/<runtime.file_name>
    artifact: {version: 1.4.2, url: https://…, sha256: <64 hex>}   built elsewhere; downloaded and checked

and `runtime: {file_name, start_command, packages, migrate_command}`, the image's packer variables. `check` validates
the file. `key` prints the image's identity in the catalog: a digest of the artifact's SHA-256, the runtime section and
every file of the image template (packer/), so a new pin or a new template always builds a new image and the same
pin never builds twice. `fetch` puts the artifact in DIR (artifact mode: downloads it with the job token, refuses a
checksum mismatch; build mode: takes app:build's output) and writes DIR/pin.json, which `packer-vars` and
`image_handoff publish --pin` read. Bad input exits 2 with one line per problem, each naming its key.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import re
import stat
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from infra.config import matching

PIN_FILE = "app.yaml"
TEMPLATE_DIR = "packer"
# Where app:build leaves the artifact (its `artifacts:` in .gitlab-ci.yml), as dist/<runtime.file_name>.
BUILD_OUTPUT_DIR = "dist"
FETCHED_FILE = "pin.json"
# Files under packer/ that are outputs, not template: the build's manifest, and Packer's download cache.
_NOT_TEMPLATE = ("manifest.json", "packer_cache")
# GitLab's header for the CI job token (what the image job's curl sent before the pin existed).
TOKEN_HEADER = "JOB-TOKEN"
TOKEN_ENV = "CI_JOB_TOKEN"
_DOWNLOAD_TIMEOUT_SECONDS = 60
_CHUNK = 1 << 20

_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# The version is part of the image's name (packer/variables.pkr.hcl: 1-40 characters; ECS image names allow letters,
# digits, '.', '_', '-').
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
# Installed as /opt/app/<file_name>: one plain file name.
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Debian package names (Debian Policy 5.6.1), optionally with =version.
_PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?")


class PinError(Exception):
    """Bad pin or a failed step; each problem is one line that names what is wrong."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value or not value.strip():
        raise ValueError(f"expected one non-empty line, got {value!r}")
    return value


def _absolute_command(value: str) -> str:
    # The same rules as packer/scripts/app-unit-dropin.sh, which writes it as systemd's ExecStart.
    _one_line(value)
    if not value.startswith("/"):
        raise ValueError(f"expected a command starting with an absolute path (systemd's ExecStart), got {value!r}")
    return value


def _source_folder(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or value in ("", "."):
        raise ValueError(f"expected a folder inside the repository, relative to its root, such as app, got {value!r}")
    return value


def _download_url(value: str) -> str:
    parsed = urllib.parse.urlsplit(value)
    host = parsed.hostname or ""
    # Plain HTTP only to this machine (a local mirror, the tests' server): anything else must be HTTPS, since the
    # request carries the job token and the artifact becomes the app.
    if parsed.scheme == "https" and host:
        return value
    if parsed.scheme == "http" and _is_loopback(host):
        return value
    raise ValueError(f"expected an https:// URL (http:// only to 127.0.0.1 or localhost), got {value!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Section(BaseModel):
    # Strict and closed like the stack settings (infra/config.py): "1.4" is not 1.4, and a typo is an error.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class BuildSource(_Section):
    """The app's sources are in this repository; the pipeline's app:build job builds them."""

    path: Annotated[str, AfterValidator(_source_folder)]


class ArtifactSource(_Section):
    """The app is built elsewhere; the image job downloads this exact file."""

    version: Annotated[str, matching(_VERSION_RE, "1-40 letters, digits, '.', '_' or '-', such as 1.4.2")]
    url: Annotated[str, AfterValidator(_download_url)]
    sha256: Annotated[str, matching(_SHA256_RE, "the artifact's SHA-256 as 64 lower-case hex digits")]


class Runtime(_Section):
    """What the image needs to run the app (packer/variables.pkr.hcl)."""

    file_name: Annotated[str, matching(_FILE_NAME_RE, "a file name such as app or app.jar (installed in /opt/app)")]
    start_command: Annotated[str, AfterValidator(_absolute_command)]
    packages: Annotated[
        list[Annotated[str, matching(_PACKAGE_RE, "a Debian package name such as openjdk-17-jre-headless")]],
        Field(min_length=1),
    ]
    # Run by /usr/local/bin/app-migrate as the app user with bash -c, the settings in its environment.
    migrate_command: Annotated[str, AfterValidator(_one_line)]


class Pin(_Section):
    """app.yaml: one source, build or artifact, and the runtime."""

    build: BuildSource | None = None
    artifact: ArtifactSource | None = None
    runtime: Runtime

    @model_validator(mode="after")
    def _one_source(self) -> Pin:
        if (self.build is None) == (self.artifact is None):
            given = "both" if self.build is not None else "neither"
            raise ValueError(f"expected exactly one of build or artifact, got {given}")
        return self

    @property
    def source(self) -> Literal["build", "artifact"]:
        return "build" if self.build is not None else "artifact"


def parse_pin(text: str, source: str = PIN_FILE) -> Pin:
    """The pin in `text`, or every problem with its key (`app.yaml: runtime.file_name: expected …`)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PinError(f"{source} is not valid YAML: {' '.join(str(error).split())}") from None
    except RecursionError:
        raise PinError(f"{source} is nested too deeply to be a pin") from None
    if not isinstance(document, dict):
        raise PinError(f"{source}: expected a mapping with runtime and one of build or artifact")
    try:
        return Pin.model_validate(document)
    except ValidationError as error:
        raise PinError(*_problems(error, source)) from None


def _problems(error: ValidationError, source: str) -> list[str]:
    problems = []
    for item in error.errors():
        # The one check of the whole file is the choice of source.
        key = ".".join(str(part) for part in item["loc"]) or "build or artifact"
        if item["type"] == "missing":
            message = "required key is missing"
        elif item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "value_error":
            message = str(item["ctx"]["error"])
        else:
            message = f"{item['msg'][0].lower()}{item['msg'][1:]}, got {item.get('input')!r}"
        problems.append(f"{source}: {key}: {message}")
    return problems


def load_pin(project_dir: Path) -> Pin:
    path = project_dir / PIN_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PinError(f"{path} does not exist: the app pin (docs/app.md)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PinError(f"{path} cannot be read: {error}") from None
    pin = parse_pin(text, PIN_FILE)
    if pin.build is not None and not (project_dir / pin.build.path).is_dir():
        raise PinError(f"{PIN_FILE}: build.path: {pin.build.path!r} is not a folder of the repository")
    return pin


# --- the image's identity -------------------------------------------------------------------------------------------


def template_digest(template_dir: Path) -> str:
    """SHA-256 over every file of the image template: its path, whether it is executable, and its content."""
    if not template_dir.is_dir():
        raise PinError(f"{template_dir} is not a folder: the image template")
    digest = hashlib.sha256()
    files = sorted(
        path
        for path in template_dir.rglob("*")
        if path.is_file() and path.relative_to(template_dir).parts[0] not in _NOT_TEMPLATE
    )
    for path in files:
        executable = bool(path.stat().st_mode & stat.S_IXUSR)
        content = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{path.relative_to(template_dir).as_posix()}\0{int(executable)}\0{content}\n".encode())
    return digest.hexdigest()


def image_key(artifact_sha256: str, runtime: Runtime, template: str) -> str:
    """The catalog key of the image this pin and template make: what goes into the image, and nothing else (not the
    version label, not where the artifact came from)."""
    identity = {"artifact_sha256": artifact_sha256, "runtime": runtime.model_dump(), "template": template}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def built_artifact(pin: Runtime, project_dir: Path, built: Path | None) -> Path:
    path = built if built is not None else project_dir / BUILD_OUTPUT_DIR / pin.file_name
    if not path.is_file():
        raise PinError(
            f"{path} does not exist: in build mode the app:build job leaves the artifact there (did it run, and does"
            f" the image job need it with artifacts?)"
        )
    return path


def artifact_sha256(pin: Pin, project_dir: Path, built: Path | None) -> str:
    if pin.artifact is not None:
        return pin.artifact.sha256
    return file_sha256(built_artifact(pin.runtime, project_dir, built))


def key(project_dir: Path, built: Path | None = None) -> str:
    pin = load_pin(project_dir)
    return image_key(artifact_sha256(pin, project_dir, built), pin.runtime, template_digest(project_dir / TEMPLATE_DIR))


# --- fetching the artifact ------------------------------------------------------------------------------------------


class _SameOriginToken(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but send the job token only to the pin's own origin: a package registry answers with a
    redirect to object storage, which must not receive it."""

    def __init__(self, origin: tuple[str, str]) -> None:
        self.origin = origin

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != self.origin:
            new.remove_header(TOKEN_HEADER.capitalize())  # urllib stores header names capitalized
            new.remove_header(TOKEN_HEADER)
        return new


def _origin(url: str) -> tuple[str, str]:
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme, parsed.netloc


def _open(url: str, token: str | None) -> Any:
    request = urllib.request.Request(url)
    if token:
        request.add_header(TOKEN_HEADER, token)
    opener = urllib.request.build_opener(_SameOriginToken(_origin(url)))
    return opener.open(request, timeout=_DOWNLOAD_TIMEOUT_SECONDS)


def download(url: str, destination: Path, expected_sha256: str, token: str | None) -> None:
    """Download `url` to `destination`, or raise with expected and actual SHA-256; nothing is left on a mismatch."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    digest = hashlib.sha256()
    try:
        with os.fdopen(descriptor, "wb") as handle:
            try:
                with _open(url, token) as response:
                    while chunk := response.read(_CHUNK):
                        digest.update(chunk)
                        handle.write(chunk)
            except urllib.error.HTTPError as error:
                raise PinError(f"artifact.url: GET {url} answered HTTP {error.code} {error.reason}") from None
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                reason = getattr(error, "reason", None) or error
                raise PinError(f"artifact.url: cannot download {url}: {reason}") from None
        got = digest.hexdigest()
        if got != expected_sha256:
            raise PinError(
                f"{PIN_FILE}: artifact.sha256: the file downloaded from {url} has SHA-256 {got}, expected"
                f" {expected_sha256}; refusing it (a changed or corrupted artifact, or a wrong pin)"
            )
        os.chmod(temporary, 0o644)
        os.replace(temporary, destination)
    finally:
        Path(temporary).unlink(missing_ok=True)


@dataclass(frozen=True)
class Fetched:
    """What `fetch` wrote: the artifact, checked, and what the image and the catalog need to know about it."""

    key: str
    source: Literal["build", "artifact"]
    version: str
    sha256: str
    artifact: Path
    runtime: Runtime
    origin: str  # the URL (artifact mode) or the folder of the sources (build mode)

    def record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "source": self.source,
            "version": self.version,
            "sha256": self.sha256,
            "artifact": str(self.artifact),
            "origin": self.origin,
            "runtime": self.runtime.model_dump(),
        }


def _commit(commit: str) -> str:
    if not _COMMIT_RE.fullmatch(commit):
        raise PinError(f"--commit {commit!r} must be a full 40-character lowercase commit SHA")
    return commit


def fetch(
    project_dir: Path, output: Path, commit: str, built: Path | None = None, environ: Mapping[str, str] = os.environ
) -> Fetched:
    _commit(commit)
    pin = load_pin(project_dir)
    template = template_digest(project_dir / TEMPLATE_DIR)
    destination = (output / pin.runtime.file_name).resolve()
    if pin.artifact is not None:
        download(pin.artifact.url, destination, pin.artifact.sha256, environ.get(TOKEN_ENV) or None)
        sha256, version, origin = pin.artifact.sha256, pin.artifact.version, pin.artifact.url
    else:
        assert pin.build is not None
        source = built_artifact(pin.runtime, project_dir, built)
        sha256 = file_sha256(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.resolve() != destination:
            destination.write_bytes(source.read_bytes())
        # Built from this commit's sources: the version is the commit, as the image job used before the pin existed.
        version, origin = commit[:8], pin.build.path
    fetched = Fetched(
        image_key(sha256, pin.runtime, template), pin.source, version, sha256, destination, pin.runtime, origin
    )
    (output / FETCHED_FILE).write_text(json.dumps(fetched.record(), indent=2) + "\n", encoding="utf-8")
    return fetched


def load_fetched(path: Path) -> Fetched:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PinError(f"{path} does not exist: run `python -m pipeline.app_pin fetch` first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise PinError(f"{path} cannot be read as what `fetch` writes: {error}") from None
    fields = ("key", "source", "version", "sha256", "artifact", "origin")
    if not isinstance(body, dict) or not all(isinstance(body.get(name), str) for name in fields):
        raise PinError(f"{path}: expected what `fetch` writes ({', '.join(fields)}, runtime)")
    if body["source"] not in ("build", "artifact") or not all(
        _SHA256_RE.fullmatch(body[name]) for name in ("key", "sha256")
    ):
        raise PinError(f"{path}: 'source' must be build or artifact, 'key' and 'sha256' 64 hex digits")
    try:
        runtime = Runtime.model_validate(body.get("runtime"))
    except ValidationError as error:
        raise PinError(*_problems(error, str(path))) from None
    return Fetched(
        body["key"], body["source"], body["version"], body["sha256"], Path(body["artifact"]), runtime, body["origin"]
    )


def packer_vars(fetched: Fetched, commit: str) -> dict[str, Any]:
    """The template's variables (packer/variables.pkr.hcl) for this artifact, as a JSON var-file holds them."""
    if not fetched.artifact.is_file():
        raise PinError(f"{fetched.artifact} does not exist: run `python -m pipeline.app_pin fetch` in this job")
    if file_sha256(fetched.artifact) != fetched.sha256:
        raise PinError(f"{fetched.artifact} changed after `fetch` checked it (SHA-256 differs from {fetched.sha256})")
    return {
        "app_artifact": str(fetched.artifact),
        "app_file_name": fetched.runtime.file_name,
        "app_version": fetched.version,
        "git_commit": _commit(commit),
        "runtime_packages": list(fetched.runtime.packages),
        "start_command": fetched.runtime.start_command,
        "migrate_command": fetched.runtime.migrate_command,
    }


# --- command line ---------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.app_pin", description="The app pin (app.yaml): check it, key it, fetch its artifact."
    )
    parser.add_argument("--project-dir", type=Path, default=Path("."), help="where app.yaml and packer/ live")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="validate app.yaml")
    key_ = commands.add_parser("key", help="print the image's catalog key for this pin and template")
    built_help = f"build mode: the artifact app:build made (default: {BUILD_OUTPUT_DIR}/<runtime.file_name>)"
    key_.add_argument("--built", type=Path, metavar="FILE", help=built_help)
    fetch_ = commands.add_parser("fetch", help="put the checked artifact in DIR and write DIR/pin.json")
    fetch_.add_argument("--output", type=Path, required=True, metavar="DIR")
    fetch_.add_argument("--commit", required=True, help="the full SHA the image is built for")
    fetch_.add_argument("--built", type=Path, metavar="FILE", help=built_help)
    vars_ = commands.add_parser("packer-vars", help="write the packer variables (a JSON var-file) for a fetched pin")
    vars_.add_argument("--fetched", type=Path, required=True, metavar="DIR/pin.json")
    vars_.add_argument("--commit", required=True, help="the full SHA the image is built for")
    vars_.add_argument("--output", type=Path, required=True, metavar="FILE.pkrvars.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            pin = load_pin(args.project_dir)
            origin = pin.build.path if pin.build else f"version {pin.artifact.version if pin.artifact else '?'}"
            print(f"{PIN_FILE}: {pin.source} mode ({origin}), runs {pin.runtime.file_name}")
        elif args.command == "key":
            print(key(args.project_dir, args.built))
        elif args.command == "fetch":
            fetched = fetch(args.project_dir, args.output, args.commit, args.built)
            print(
                f"{fetched.artifact}: {fetched.source} {fetched.version}, SHA-256 {fetched.sha256} (checked);"
                f" image key {fetched.key}"
            )
        else:
            values = packer_vars(load_fetched(args.fetched), args.commit)
            args.output.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
            print(f"wrote {args.output}")
    except PinError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except OSError as error:  # an output folder that cannot be written, a disk full
        print(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
