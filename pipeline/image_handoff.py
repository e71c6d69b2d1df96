"""Hands the Packer-built image to the stacks: built once on master, promoted unchanged by merge.

    python -m pipeline.image_handoff set --stack STACK --manifest packer/manifest.json
    python -m pipeline.image_handoff publish --manifest packer/manifest.json --commit SHA [--version V] [--pin FILE]
    python -m pipeline.image_handoff show --commit SHA
    python -m pipeline.image_handoff reuse --pin-key KEY --commit SHA
    python -m pipeline.image_handoff resolve --stack STACK [--commit REV] [--save FILE]
    python -m pipeline.image_handoff check-forward --stack STACK --commit SHA [--rollback-to SHA]
    python -m pipeline.image_handoff record --stack STACK --commit SHA --resolved FILE [--rollback-to SHA]

`set` puts the image of the stack's region from Packer's manifest into `ha-webapp:imageId`. `publish` records a build
in the image catalog, `images/<commit>.json` in the OSS bucket $STATE_BUCKET; `show` tells whether a commit has one
(exit 1 when not), so that a re-run pipeline does not build the same commit again. With `--pin` (what `python -m
pipeline.app_pin fetch` wrote), `publish` also records the entry under the pin's key, `images/pins/<key>.json`;
`reuse` records a new commit with the image already built for its key (exit 1 when there is none), so that the same
app pin and template never build twice while `resolve`, which walks commits, works as before. `resolve` finds the newest
ancestor of a commit that has a catalog entry and sets its image, so that a merge to pre-production or production
deploys exactly the image master built; for preprod only an image that dev deployed successfully, for prod only one
that preprod did. `record` writes that success after `pulumi up` (`deployments/<stack>/…`, one object per deploy,
never rewritten), and `check-forward` refuses a deploy of a commit that does not descend from the stack's last
recorded deploy unless ROLLBACK_TO names it. Bad input exits 2 with one line per problem, and changes nothing.

The pure parts (reading a manifest, picking a region's image, editing a stack file's text, checking a catalog entry)
are plain functions, tested with tables of good and bad input.
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from infra.config import IMAGE_ID_RE, PROJECT, REGION_KEY, REGION_RE
from pipeline import app_pin

IMAGE_KEY = f"{PROJECT}:imageId"
BUCKET_ENV = "STATE_BUCKET"
CATALOG_PREFIX = "images/"
# images/pins/<key>.json: the entry of the first commit built for an app pin and template (pipeline/app_pin.py). Under
# images/ so that the image job's role, which writes images/, needs nothing more; `_catalog_commits` skips it.
PINS_PREFIX = f"{CATALOG_PREFIX}pins/"
DEPLOYS_PREFIX = "deployments/"
# Promote only what passed: a stack gets only images that the stack before it deployed successfully (`record`).
# The order is the release flow's: master deploys dev, pre-production preprod, production prod (the stack map).
PROMOTED_FROM = {"preprod": "dev", "prod": "preprod"}
# How far back `resolve` looks: master's image job runs for every commit, so the last build is never far behind.
MAX_ANCESTORS = 500

_STACK_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_PIN_KEY_RE = re.compile(r"[0-9a-f]{64}")
# deployments/<stack>/<sequence>.<deployed commit>.<commit the image was built from>.json
_RECORD_NAME_RE = re.compile(r"(?P<sequence>[0-9]{8})\.(?P<commit>[0-9a-f]{40})\.(?P<image_commit>[0-9a-f]{40})\.json")
_EXAMPLE_ID = "m-bp1g7004ksh0oeuc1ne8"
# A Packer build_time is a Unix time; outside these bounds it is not a time this tool can write as a date.
_MIN_BUILD_TIME = 946_684_800  # 2000-01-01
_MAX_BUILD_TIME = 253_402_300_799  # 9999-12-31T23:59:59


class HandoffError(Exception):
    """Bad input or a failed step; each problem is one line that names what is wrong."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class ManifestRun:
    """The images of one Packer run, by region, with what the template recorded about them."""

    images: dict[str, str]
    version: str | None
    commit: str | None
    built_at: str | None


# --- Packer's manifest (pure) ---------------------------------------------------------------------------------------


def parse_artifact_id(artifact_id: object, where: str) -> dict[str, str]:
    """'cn-hangzhou:m-aaa' or 'cn-hangzhou:m-aaa,cn-shanghai:m-bbb' (an image copied to regions) -> {region: ID}."""
    if not isinstance(artifact_id, str) or not artifact_id.strip():
        raise HandoffError(f"{where}: artifact_id must be a string like 'cn-hangzhou:{_EXAMPLE_ID}'")
    images: dict[str, str] = {}
    problems = []
    for part in artifact_id.split(","):
        region, sep, image_id = part.strip().partition(":")
        if not sep or not REGION_RE.fullmatch(region):
            problems.append(f"{where}: artifact_id part {part.strip()!r} is not '<region>:<image ID>'")
        elif not IMAGE_ID_RE.fullmatch(image_id):
            problems.append(
                f"{where}: image ID {image_id!r} for {region} is not a custom image ID (m- and 8-32 lowercase"
                f" letters or digits, like {_EXAMPLE_ID})"
            )
        elif region in images and images[region] != image_id:
            problems.append(f"{where}: two images for {region}: {images[region]} and {image_id}")
        else:
            images[region] = image_id
    if problems:
        raise HandoffError(*problems)
    return images


def parse_manifest(text: str, source: str) -> ManifestRun:
    """The images of the manifest's last run (`last_run_uuid`); earlier runs appended to the same file are ignored."""
    document = _json(text, source)
    if not isinstance(document, dict):
        raise HandoffError(f"{source}: expected a JSON object with 'builds' and 'last_run_uuid'")
    builds = document.get("builds")
    if not isinstance(builds, list) or not builds:
        raise HandoffError(f"{source}: 'builds' must be a non-empty list (did `packer build` finish?)")
    run_uuid = document.get("last_run_uuid")
    if not isinstance(run_uuid, str) or not run_uuid:
        raise HandoffError(f"{source}: 'last_run_uuid' is missing; it tells which run's builds to use")
    last_run = [b for b in builds if isinstance(b, dict) and b.get("packer_run_uuid") == run_uuid]
    if not last_run:
        raise HandoffError(f"{source}: no build belongs to the last run ({run_uuid})")

    images: dict[str, str] = {}
    problems: list[str] = []
    custom: dict[str, set[str]] = {"app_version": set(), "git_commit": set()}
    build_times: list[int] = []
    for build in last_run:
        where = f"{source}: build {build.get('name', '?')!s}"
        try:
            found = parse_artifact_id(build.get("artifact_id"), where)
        except HandoffError as error:
            problems.extend(error.problems)
            continue
        for region, image_id in found.items():
            if region in images and images[region] != image_id:
                problems.append(f"{where}: a second image for {region} in the same run: {images[region]}, {image_id}")
            images[region] = image_id
        data = build.get("custom_data")
        if isinstance(data, dict):
            for key, values in custom.items():
                if isinstance(data.get(key), str):
                    values.add(data[key])
        build_time = build.get("build_time")
        if isinstance(build_time, int) and not isinstance(build_time, bool):
            if not _MIN_BUILD_TIME <= build_time <= _MAX_BUILD_TIME:
                problems.append(f"{where}: build_time {build_time} is not a Unix time between 2000 and 9999")
                continue
            build_times.append(build_time)
    if problems:
        raise HandoffError(*problems)
    for key, values in custom.items():
        if len(values) > 1:
            raise HandoffError(f"{source}: the last run's builds disagree on {key}: {', '.join(sorted(values))}")
    return ManifestRun(
        images=images,
        version=next(iter(custom["app_version"]), None),
        commit=next(iter(custom["git_commit"]), None),
        built_at=_iso(max(build_times)) if build_times else None,
    )


def _json(text: str | bytes, source: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HandoffError(f"{source} is not valid JSON: {error}") from None
    except RecursionError:
        raise HandoffError(f"{source} is nested too deeply to be a manifest or a catalog entry") from None


def load_manifest(path: Path) -> ManifestRun:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HandoffError(f"manifest {path} does not exist (run `packer build` first)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HandoffError(f"manifest {path} cannot be read: {error}") from None
    return parse_manifest(text, str(path))


def image_for_region(images: Mapping[str, str], region: str, source: str) -> str:
    if region not in images:
        built = ", ".join(sorted(images)) or "none"
        raise HandoffError(f"{source} has no image for region {region} (built for: {built})")
    return images[region]


def _iso(epoch_seconds: int) -> str:
    return datetime.datetime.fromtimestamp(epoch_seconds, tz=datetime.UTC).isoformat().replace("+00:00", "Z")


# --- the stack file (pure) ------------------------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, key order and quoting survive
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)  # the stack files' style (and `pulumi config set`'s)
    yaml.width = 4096  # never re-wrap a long line
    return yaml


def _load_stack(text: str, source: str) -> tuple[YAML, CommentedMap, CommentedMap]:
    """The stack file's document and its `config:` mapping, with the YAML instance that can write them back."""
    yaml = _yaml()
    try:
        document = yaml.load(text)
    except YAMLError as error:
        raise HandoffError(f"{source} is not valid YAML: {' '.join(str(error).split())}") from None
    except RecursionError:
        raise HandoffError(f"{source} is nested too deeply to be a stack file") from None
    config = document.get("config") if isinstance(document, CommentedMap) else None
    if not isinstance(config, CommentedMap):
        raise HandoffError(f"{source} has no 'config:' mapping")
    return yaml, document, config


def stack_region(text: str, source: str) -> str:
    region = _load_stack(text, source)[2].get(REGION_KEY)
    if not isinstance(region, str) or not REGION_RE.fullmatch(region):
        raise HandoffError(f"{source}: {REGION_KEY} must be a region ID such as cn-hangzhou, got {region!r}")
    return region


def with_image(text: str, image_id: str, source: str) -> str:
    """The stack file's text with `ha-webapp:imageId` set (added after the region if absent), nothing else changed."""
    if not IMAGE_ID_RE.fullmatch(image_id):
        raise HandoffError(f"{image_id!r} is not a custom image ID (like {_EXAMPLE_ID})")
    yaml, document, config = _load_stack(text, source)
    if IMAGE_KEY in config:
        config[IMAGE_KEY] = image_id
    else:
        keys = list(config)
        config.insert(keys.index(REGION_KEY) + 1 if REGION_KEY in keys else len(keys), IMAGE_KEY, image_id)
    out = io.StringIO()
    yaml.dump(document, out)
    new = out.getvalue()
    # The promise is "only the image ID changed": check it rather than trust the YAML library with every style.
    changed = [line for line in difflib.ndiff(text.splitlines(), new.splitlines()) if line[:2] in ("- ", "+ ")]
    if any(IMAGE_KEY not in line for line in changed):
        raise HandoffError(
            f"{source}: setting {IMAGE_KEY} would also reformat other lines; set it with"
            f" `pulumi config set imageId {image_id}` or edit the file by hand"
        )
    return new


def _write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step (a crash leaves the old or the new file, never half of one), keeping its mode."""
    mode = path.stat().st_mode & 0o777
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Stack:
    name: str
    file: Path
    text: str
    region: str


def read_stack(name: str, project_dir: Path) -> Stack:
    if not _STACK_RE.fullmatch(name):
        raise HandoffError(f"--stack {name!r} is not a stack name (letters, digits, '.', '_', '-')")
    path = project_dir / f"Pulumi.{name}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HandoffError(f"stack {name}: {path} does not exist") from None
    except UnicodeDecodeError as error:
        raise HandoffError(f"stack {name}: {path} is not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise HandoffError(f"stack {name}: {path} cannot be read: {error.strerror or error}") from None
    return Stack(name, path, text, stack_region(text, path.name))


Runner = Callable[[Sequence[str], Path], subprocess.CompletedProcess[str]]


def _run(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as error:  # the program is not installed, or not executable
        raise HandoffError(f"cannot run {argv[0]}: {error.strerror or error} (is it installed and on PATH?)") from None


def set_stack_image(stack: Stack, image_id: str, project_dir: Path, run: Runner = _run) -> str:
    """Set the stack's imageId: through the Pulumi CLI when it is installed, else in the stack file. Says how."""
    if not IMAGE_ID_RE.fullmatch(image_id):
        raise HandoffError(f"{image_id!r} is not a custom image ID (like {_EXAMPLE_ID})")
    pulumi = shutil.which("pulumi")
    if pulumi:
        result = run([pulumi, "config", "set", "imageId", image_id, "--stack", stack.name], project_dir)
        if result.returncode != 0:
            detail = " ".join((result.stderr or result.stdout).split()) or "no output"
            raise HandoffError(f"`pulumi config set imageId {image_id} --stack {stack.name}` failed: {detail}")
        return "pulumi config set"
    new = with_image(stack.text, image_id, stack.file.name)
    if new != stack.text:
        _write_atomically(stack.file, new)
    return f"edited {stack.file.name}"


# --- the image catalog in OSS ---------------------------------------------------------------------------------------


def catalog_key(commit: str) -> str:
    return f"{CATALOG_PREFIX}{commit}.json"


def pin_catalog_key(key: str) -> str:
    if not _PIN_KEY_RE.fullmatch(key):
        raise HandoffError(f"--pin-key {key!r} must be 64 lowercase hex digits (python -m pipeline.app_pin key)")
    return f"{PINS_PREFIX}{key}.json"


def pin_record(fetched: app_pin.Fetched) -> dict[str, str]:
    """What the catalog says about the app in an image: enough to tell which artifact it runs."""
    return {"key": fetched.key, "source": fetched.source, "version": fetched.version, "sha256": fetched.sha256}


def catalog_entry(run: ManifestRun, commit: str, version: str, pin: app_pin.Fetched | None = None) -> dict[str, Any]:
    if not _COMMIT_RE.fullmatch(commit):
        raise HandoffError(f"--commit {commit!r} must be a full 40-character lowercase commit SHA")
    if not version.strip():
        raise HandoffError("--version must not be empty")
    problems = []
    if run.commit is not None and run.commit != commit:
        problems.append(f"the manifest's last run was built from commit {run.commit}, not {commit}")
    if run.version is not None and run.version != version:
        problems.append(f"the manifest's last run is version {run.version}, not {version}")
    if problems:
        raise HandoffError(*problems)
    built_at = run.built_at or _iso(int(datetime.datetime.now(tz=datetime.UTC).timestamp()))
    entry = {"commit": commit, "version": version, "images": dict(sorted(run.images.items())), "built_at": built_at}
    # Entries published before the pin existed have no "pin"; every reader treats it as optional.
    return entry if pin is None else {**entry, "pin": pin_record(pin)}


def parse_catalog_entry(body: bytes, key: str) -> dict[str, Any]:
    entry = _json(body, f"catalog entry {key}")
    if not isinstance(entry, dict):
        raise HandoffError(f"catalog entry {key}: expected a JSON object")
    images = entry.get("images")
    if not isinstance(images, dict) or not all(
        isinstance(r, str) and isinstance(i, str) and IMAGE_ID_RE.fullmatch(i) for r, i in images.items()
    ):
        raise HandoffError(f"catalog entry {key}: 'images' must map regions to image IDs like {_EXAMPLE_ID}")
    return entry


def _bucket() -> str:
    bucket = os.environ.get(BUCKET_ENV, "").strip()
    if not bucket:
        raise HandoffError(f"{BUCKET_ENV} is not set: the OSS bucket that holds the state and the image catalog")
    return bucket


def _oss() -> Any:
    from pipeline import oss  # boto3 is only needed by publish and resolve

    try:
        return oss.client()
    except ValueError as error:
        raise HandoffError(str(error)) from None


def _oss_errors() -> tuple[type[Exception], ...]:
    """What a call to OSS may raise: the SDK's errors, and answers that are not S3's XML (an endpoint not OSS)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return (BotoCoreError, ClientError, ResponseParserError, KeyError, TypeError)


def _oss_error(error: Exception, what: str) -> HandoffError:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code") or "")
        if not code or code.isdigit():  # no S3 error code: botocore leaves it empty or puts the HTTP status there
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", code or "?")
            return HandoffError(
                f"{what}: HTTP {status} without an S3 error code: cannot tell what is there; check OSS_ENDPOINT, the"
                " bucket name and the credentials"
            )
        return HandoffError(f"{what}: {code}: {info.get('Message', '')}".rstrip(": "))
    if isinstance(error, KeyError | TypeError):
        return HandoffError(f"{what}: the endpoint's answer is not what S3/OSS answers ({type(error).__name__})")
    return HandoffError(f"{what}: {' '.join(str(error).split())}")


def _catalog_object(s3: Any, bucket: str, key: str) -> bytes | None:
    """A catalog object's body, or None when there is no such object."""
    from botocore.exceptions import ClientError

    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as error:
        # Only S3's own answer means "no such entry". A bare 404 (no error code: a proxy, a wrong endpoint or a
        # missing bucket behind a gateway) cannot tell, and reading it as "not built" would start a second build.
        if error.response.get("Error", {}).get("Code") != "NoSuchKey":
            raise
        return None


def _recorded(s3: Any, bucket: str, commit: str) -> dict[str, Any] | None:
    """The catalog entry of `commit`, or None when it has none."""
    key = catalog_key(commit)
    body = _catalog_object(s3, bucket, key)
    return None if body is None else parse_catalog_entry(body, key)


def lookup(commit: str) -> str | None:
    """What the catalog records for `commit` (one line), or None: lets the image job skip a commit already built."""
    if not _COMMIT_RE.fullmatch(commit):
        raise HandoffError(f"--commit {commit!r} must be a full 40-character lowercase commit SHA")
    bucket = _bucket()
    s3 = _oss()
    try:
        entry = _recorded(s3, bucket, commit)
    except _oss_errors() as error:
        raise _oss_error(error, f"OSS bucket {bucket}") from None
    return None if entry is None else f"{catalog_key(commit)} records {_describe(entry)}"


def _load_pin(path: Path) -> app_pin.Fetched:
    try:
        return app_pin.load_fetched(path)
    except app_pin.PinError as error:
        raise HandoffError(*error.problems) from None


def publish(manifest: Path, commit: str, version: str | None, pin_file: Path | None = None) -> str:
    run = load_manifest(manifest)
    pin = _load_pin(pin_file) if pin_file is not None else None
    if version is None:
        if pin is None:
            raise HandoffError("--version is required without --pin (which carries the app's version)")
        version = pin.version
    entry = catalog_entry(run, commit, version, pin)
    bucket = _bucket()
    s3 = _oss()
    key = catalog_key(commit)
    body = (json.dumps(entry, indent=2) + "\n").encode()
    try:
        old = _recorded(s3, bucket, commit)
        if old is not None:
            if old.get("images") == entry["images"] and old.get("version") == version:
                return f"{key} already records {_describe(entry)}"
            # Preprod may already run the recorded image; replacing it would promote a different one to prod.
            raise HandoffError(
                f"{key} already records {_describe(old)} for this commit; an image is built once per commit"
                f" (delete s3://{bucket}/{key} on purpose to replace it)"
            )
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        indexed = "" if pin is None else _index_pin(s3, bucket, pin.key, entry)
    except _oss_errors() as error:
        raise _oss_error(error, f"OSS bucket {bucket}") from None
    return f"published {key}: {_describe(entry)}{indexed}"


def _index_pin(s3: Any, bucket: str, pin_key: str, entry: Mapping[str, Any]) -> str:
    """Record the entry under its pin's key, unless an image is recorded there already: the first one stays (two
    pipelines that built the same pin at once both keep working; later commits reuse the first)."""
    from botocore.exceptions import ClientError

    key = pin_catalog_key(pin_key)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) not in ("404", "NoSuchKey", "NotFound"):
            raise
    else:
        return f"; {key} already names an image for this pin, which later commits reuse"
    s3.put_object(Bucket=bucket, Key=key, Body=(json.dumps(entry, indent=2) + "\n").encode())
    return f"; indexed as {key}"


def reuse(pin_key: str, commit: str) -> str | None:
    """Record `commit` with the image already built for `pin_key`, or None when there is none (the job builds it).

    The commit gets its own entry, a copy of the first one with its own commit and `reused_from`, so that `resolve`,
    which walks commits, finds it like any other build."""

    if not _COMMIT_RE.fullmatch(commit):
        raise HandoffError(f"--commit {commit!r} must be a full 40-character lowercase commit SHA")
    index = pin_catalog_key(pin_key)
    bucket = _bucket()
    s3 = _oss()
    try:
        body = _catalog_object(s3, bucket, index)
        if body is None:
            return None
        first = parse_catalog_entry(body, index)
        pin = first.get("pin")
        if not isinstance(pin, dict) or pin.get("key") != pin_key:
            raise HandoffError(f"catalog entry {index} does not record pin {pin_key}; delete it on purpose")
        origin = str(first.get("reused_from") or first.get("commit"))
        entry = {**first, "commit": commit}
        if origin != commit:
            entry["reused_from"] = origin
        old = _recorded(s3, bucket, commit)
        if old is not None:
            if old.get("images") == entry["images"]:
                return f"{catalog_key(commit)} already records {_describe(old)}"
            raise HandoffError(
                f"{catalog_key(commit)} already records {_describe(old)}, not the image of pin {pin_key}; an image is"
                " recorded once per commit"
            )
        s3.put_object(
            Bucket=bucket,
            Key=catalog_key(commit),
            Body=(json.dumps(entry, indent=2) + "\n").encode(),
            ContentType="application/json",
        )
    except _oss_errors() as error:
        raise _oss_error(error, f"OSS bucket {bucket}") from None
    return f"recorded {catalog_key(commit)}: {_describe(entry)}, built for commit {origin} from the same app pin"


def _describe(entry: Mapping[str, Any]) -> str:
    images = ", ".join(f"{region} {image}" for region, image in sorted(entry.get("images", {}).items()))
    return f"version {entry.get('version')}, {images}"


def _ancestors(rev: str, project_dir: Path, run: Runner) -> list[str]:
    if rev.startswith("-"):
        raise HandoffError(f"--commit {rev!r} is not a revision")
    # --topo-order: never a parent before its children. By default git lists by commit date, so in a merge an older
    # build with a later date (a committer's clock ahead, or commits in one second) came first and was promoted.
    result = run(["git", "rev-list", "--topo-order", f"--max-count={MAX_ANCESTORS}", rev, "--"], project_dir)
    if result.returncode != 0:
        detail = " ".join(result.stderr.split()) or "no output"
        raise HandoffError(f"git cannot list the ancestors of {rev}: {detail}")
    return result.stdout.split()


def _catalog_commits(s3: Any, bucket: str) -> set[str]:
    commits = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=CATALOG_PREFIX):
        for item in page.get("Contents", []):
            name = item["Key"][len(CATALOG_PREFIX) :]
            if name.endswith(".json") and _COMMIT_RE.fullmatch(name[: -len(".json")]):
                commits.add(name[: -len(".json")])
    return commits


@dataclass(frozen=True)
class DeployRecord:
    """One successful deploy of a stack, as its key in the catalog names it."""

    stack: str
    sequence: int
    commit: str
    image_commit: str
    key: str


def deploys_prefix(stack: str) -> str:
    return f"{DEPLOYS_PREFIX}{stack}/"


def record_key(stack: str, sequence: int, commit: str, image_commit: str) -> str:
    return f"{deploys_prefix(stack)}{sequence:08d}.{commit}.{image_commit}.json"


def _deploy_records(s3: Any, bucket: str, stack: str) -> list[DeployRecord]:
    """The stack's successful deploys, oldest first. The key says all that ordering and promotion need, so that
    neither reads every record: a stack deployed twice a day for years has thousands."""
    records = []
    prefix = deploys_prefix(stack)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            match = _RECORD_NAME_RE.fullmatch(item["Key"][len(prefix) :])
            if match:
                records.append(
                    DeployRecord(stack, int(match["sequence"]), match["commit"], match["image_commit"], item["Key"])
                )
    return sorted(records, key=lambda record: record.sequence)


def _git_sha(rev: str, project_dir: Path, run: Runner) -> str:
    if rev.startswith("-"):
        raise HandoffError(f"--commit {rev!r} is not a revision")
    result = run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], project_dir)
    if result.returncode != 0 or not _COMMIT_RE.fullmatch(result.stdout.strip()):
        raise HandoffError(f"git does not know the commit {rev!r} (is the clone shallow? the job needs GIT_DEPTH 0)")
    return result.stdout.strip()


@dataclass(frozen=True)
class Resolved:
    """The image `resolve` chose for a stack, and why."""

    stack: str
    region: str
    image: str
    image_commit: str
    version: str
    reason: str


def choose_image(
    ancestors: Sequence[str], built: set[str], passed: Mapping[str, int] | None
) -> tuple[str | None, list[str]]:
    """The newest ancestor with a build that may go to `stack`, and the newer builds skipped on the way.

    `passed` maps the commits whose image the stack before this one deployed successfully to that deploy's number;
    None when the stack takes any build (dev)."""
    skipped: list[str] = []
    for sha in ancestors:
        if sha not in built:
            continue
        if passed is None or sha in passed:
            return sha, skipped
        skipped.append(sha)
    return None, skipped


def resolve(stack_name: str, rev: str, project_dir: Path, run: Runner = _run, save: Path | None = None) -> str:
    stack = read_stack(stack_name, project_dir)
    ancestors = _ancestors(rev, project_dir, run)
    bucket = _bucket()
    s3 = _oss()
    source = PROMOTED_FROM.get(stack.name)
    try:
        built = _catalog_commits(s3, bucket)
        passed = None
        if source is not None:
            passed = {record.image_commit: record.sequence for record in _deploy_records(s3, bucket, source)}
        found, skipped = choose_image(ancestors, built, passed)
        if found is None:
            looked = f"looked at {len(ancestors)} commits, up to {MAX_ANCESTORS}"
            if not skipped:
                raise HandoffError(
                    f"no image built for any ancestor of {rev} ({looked}); run the image job on master first"
                )
            raise HandoffError(
                f"no image among the ancestors of {rev} succeeded in {source} ({looked}); built but never deployed"
                f" successfully to {source}: {', '.join(skipped)}; deploy one to {source} first"
            )
        key = catalog_key(found)
        entry = parse_catalog_entry(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), key)
    except _oss_errors() as error:
        raise _oss_error(error, f"OSS bucket {bucket}") from None
    image_id = image_for_region(entry["images"], stack.region, f"catalog entry {key}")
    if passed is None:
        reason = "the newest build among its ancestors"
    else:
        reason = f"the newest build among its ancestors that succeeded in {source} (deploy #{passed[found]})"
        if skipped:
            reason += f"; skipped newer builds that never succeeded in {source}: {', '.join(skipped)}"
    resolved = Resolved(stack.name, stack.region, image_id, found, str(entry.get("version")), reason)
    how = set_stack_image(stack, image_id, project_dir, run)
    if save is not None:
        _save_resolved(save, resolved)
    return (
        f"promoted image {image_id} (version {entry.get('version')}, commit {found}) to stack {stack.name}"
        f" in {stack.region}: {reason}; {how}"
    )


def _save_resolved(path: Path, resolved: Resolved) -> None:
    body = {
        "stack": resolved.stack,
        "region": resolved.region,
        "image": resolved.image,
        "image_commit": resolved.image_commit,
        "version": resolved.version,
    }
    try:
        path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise HandoffError(f"cannot write {path}: {error.strerror or error}") from None


def _load_resolved(path: Path, stack: str) -> Resolved:
    try:
        body = _json(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        raise HandoffError(f"{path} does not exist: run `resolve --stack {stack} --save {path}` first") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HandoffError(f"{path} cannot be read: {error}") from None
    fields = ("stack", "region", "image", "image_commit", "version")
    if not isinstance(body, dict) or not all(isinstance(body.get(name), str) for name in fields):
        raise HandoffError(f"{path}: expected what `resolve --save` writes ({', '.join(fields)})")
    if body["stack"] != stack:
        raise HandoffError(f"{path} was resolved for stack {body['stack']}, not {stack}")
    if not IMAGE_ID_RE.fullmatch(body["image"]) or not _COMMIT_RE.fullmatch(body["image_commit"]):
        raise HandoffError(f"{path}: 'image' must be an image ID and 'image_commit' a full commit SHA")
    return Resolved(body["stack"], body["region"], body["image"], body["image_commit"], body["version"], "")


def _rollback_target(rollback_to: str) -> str | None:
    value = rollback_to.strip()
    if not value:
        return None
    if not _COMMIT_RE.fullmatch(value):
        raise HandoffError(
            f"ROLLBACK_TO {value!r} must be the full 40-character lowercase SHA of the commit to roll back to"
        )
    return value


def check_forward(stack_name: str, rev: str, rollback_to: str, project_dir: Path, run: Runner = _run) -> str:
    """Refuse a deploy that would move the stack back, unless ROLLBACK_TO names the commit on purpose."""
    if not _STACK_RE.fullmatch(stack_name):
        raise HandoffError(f"--stack {stack_name!r} is not a stack name (letters, digits, '.', '_', '-')")
    target = _rollback_target(rollback_to)
    commit = _git_sha(rev, project_dir, run)
    bucket = _bucket()
    s3 = _oss()
    try:
        records = _deploy_records(s3, bucket, stack_name)
    except _oss_errors() as error:
        raise _oss_error(error, f"OSS bucket {bucket}") from None
    stale = (
        f"; ROLLBACK_TO={target} is ignored (it names another commit: delete the variable after a rollback)"
        if target is not None and target != commit
        else ""
    )
    if not records:
        return f"stack {stack_name} has no recorded deploy: {commit} is its first{stale}"
    last = records[-1]
    if last.commit == commit:
        return f"stack {stack_name} runs {commit} already (deploy #{last.sequence}): deploying it again{stale}"
    result = run(["git", "merge-base", "--is-ancestor", last.commit, commit], project_dir)
    if result.returncode == 0:
        return f"{commit} descends from {last.commit}, deployed last to {stack_name} (deploy #{last.sequence}){stale}"
    if result.returncode != 1:
        raise HandoffError(
            f"cannot tell whether {commit} descends from {last.commit}, deployed last to {stack_name} (deploy"
            f" #{last.sequence}): git does not know that commit (shallow clone, or history rewritten)"
        )
    if target == commit:
        return (
            f"ROLLBACK: {commit} does not descend from {last.commit}, deployed last to {stack_name} (deploy"
            f" #{last.sequence}); deploying it because ROLLBACK_TO names it"
        )
    raise HandoffError(
        f"refusing to deploy {commit} to stack {stack_name}: it does not descend from {last.commit}, deployed last"
        f" (deploy #{last.sequence}), so this deploy would roll the stack back (an older pipeline's job run late?)."
        f" To roll back on purpose, run it with ROLLBACK_TO={commit} (docs/pipeline.md#rolling-back)"
        + (f"; ROLLBACK_TO is {target}, another commit" if target is not None else "")
    )


def record(
    stack_name: str, rev: str, resolved_file: Path, rollback_to: str, project_dir: Path, run: Runner = _run
) -> str:
    """Record a successful deploy: the next numbered object under deployments/<stack>/, written once."""
    from botocore.exceptions import ClientError

    if not _STACK_RE.fullmatch(stack_name):
        raise HandoffError(f"--stack {stack_name!r} is not a stack name (letters, digits, '.', '_', '-')")
    target = _rollback_target(rollback_to)
    commit = _git_sha(rev, project_dir, run)
    resolved = _load_resolved(resolved_file, stack_name)
    bucket = _bucket()
    s3 = _oss()
    try:
        records = _deploy_records(s3, bucket, stack_name)
        sequence = records[-1].sequence + 1 if records else 1
        key = record_key(stack_name, sequence, commit, resolved.image_commit)
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) not in ("404", "NoSuchKey", "NotFound"):
                raise
        else:
            raise HandoffError(f"{key} exists already: a deploy record is never rewritten (two deploys at once?)")
        body = {
            "stack": stack_name,
            "sequence": sequence,
            "commit": commit,
            "image": resolved.image,
            "image_commit": resolved.image_commit,
            "version": resolved.version,
            "region": resolved.region,
            "deployed_at": _iso(int(datetime.datetime.now(tz=datetime.UTC).timestamp())),
            "rollback": target == commit,
            "pipeline": os.environ.get("CI_PIPELINE_URL"),
            "job": os.environ.get("CI_JOB_URL"),
            "by": os.environ.get("GITLAB_USER_LOGIN"),
        }
        s3.put_object(
            Bucket=bucket, Key=key, Body=(json.dumps(body, indent=2) + "\n").encode(), ContentType="application/json"
        )
    except _oss_errors() as error:
        raise _oss_error(error, f"OSS bucket {bucket}") from None
    kind = "rollback" if body["rollback"] else "deploy"
    return (
        f"recorded {kind} #{sequence} of stack {stack_name}: commit {commit}, image {resolved.image} (version"
        f" {resolved.version}, built from {resolved.image_commit}) in {key}"
    )


# --- command line ---------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.image_handoff",
        description="Hand the Packer-built image to the stacks (ha-webapp:imageId) and promote it by merge.",
    )
    parser.add_argument("--project-dir", type=Path, default=Path("."), help="where Pulumi.<stack>.yaml live")
    commands = parser.add_subparsers(dest="command", required=True)

    set_ = commands.add_parser("set", help="set a stack's imageId from Packer's manifest")
    set_.add_argument("--stack", required=True)
    set_.add_argument("--manifest", type=Path, required=True)

    publish_ = commands.add_parser("publish", help="record the manifest's images in the catalog in $STATE_BUCKET")
    publish_.add_argument("--manifest", type=Path, required=True)
    publish_.add_argument("--commit", required=True, help="full SHA the image was built from")
    publish_.add_argument("--version", help="application version (default: the pin's)")
    publish_.add_argument("--pin", type=Path, metavar="FILE", help="what `python -m pipeline.app_pin fetch` wrote")

    show_ = commands.add_parser(
        "show", help="print what the catalog records for a commit; exit 1 when it records nothing"
    )
    show_.add_argument("--commit", required=True, help="full SHA")

    reuse_ = commands.add_parser(
        "reuse", help="record a commit with the image already built for its app pin; exit 1 when there is none"
    )
    reuse_.add_argument("--pin-key", required=True, help="python -m pipeline.app_pin key")
    reuse_.add_argument("--commit", required=True, help="full SHA")

    resolve_ = commands.add_parser("resolve", help="set a stack's imageId to the newest image among REV's ancestors")
    resolve_.add_argument("--stack", required=True)
    resolve_.add_argument("--commit", default="HEAD", metavar="REV", help="default: HEAD")
    resolve_.add_argument("--save", type=Path, metavar="FILE", help="write the chosen image here, for `record`")

    forward = commands.add_parser(
        "check-forward", help="refuse a deploy of a commit that does not descend from the stack's last deploy"
    )
    forward.add_argument("--stack", required=True)
    forward.add_argument("--commit", default="HEAD", metavar="REV", help="the commit to deploy; default: HEAD")
    forward.add_argument("--rollback-to", default="", metavar="SHA", help="deploy this older commit on purpose")

    record_ = commands.add_parser("record", help="record a successful deploy (after `pulumi up`) in the catalog")
    record_.add_argument("--stack", required=True)
    record_.add_argument("--commit", default="HEAD", metavar="REV", help="the deployed commit; default: HEAD")
    record_.add_argument("--resolved", type=Path, required=True, metavar="FILE", help="what `resolve --save` wrote")
    record_.add_argument("--rollback-to", default="", metavar="SHA", help="as given to check-forward")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "set":
            stack = read_stack(args.stack, args.project_dir)
            run = load_manifest(args.manifest)
            image_id = image_for_region(run.images, stack.region, str(args.manifest))
            how = set_stack_image(stack, image_id, args.project_dir)
            print(f"stack {stack.name} ({stack.region}): imageId {image_id}; {how}")
        elif args.command == "publish":
            print(publish(args.manifest, args.commit, args.version, args.pin))
        elif args.command == "show":
            recorded = lookup(args.commit)
            if recorded is None:
                print(f"no image recorded for commit {args.commit}")
                return 1
            print(recorded)
        elif args.command == "reuse":
            reused = reuse(args.pin_key, args.commit)
            if reused is None:
                print(f"no image built for app pin {args.pin_key}")
                return 1
            print(reused)
        elif args.command == "resolve":
            print(resolve(args.stack, args.commit, args.project_dir, save=args.save))
        elif args.command == "check-forward":
            print(check_forward(args.stack, args.commit, args.rollback_to, args.project_dir))
        else:
            print(record(args.stack, args.commit, args.resolved, args.rollback_to, args.project_dir))
    except HandoffError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
