"""The image hand-off: Packer's manifest -> ha-webapp:imageId, and promotion by merge through the image catalog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline import app_pin, image_handoff
from pipeline.image_handoff import HandoffError, image_for_region, parse_artifact_id, parse_manifest, with_image

ROOT = Path(__file__).resolve().parents[2]
IMAGE_A = "m-bp1aaaaaaaaaaaaaaaa1"
IMAGE_B = "m-bp1bbbbbbbbbbbbbbbb2"
IMAGE_SH = "m-uf6ccccccccccccccccc"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # pragma: allowlist secret (a commit SHA)


def build(artifact_id: Any, run: str = "run-2", **extra: Any) -> dict[str, Any]:
    return {
        "name": "app",
        "builder_type": "alicloud-ecs",
        "build_time": 1767225600,
        "files": None,
        "artifact_id": artifact_id,
        "packer_run_uuid": run,
        "custom_data": {"app_version": "1.4.2", "git_commit": COMMIT},
        **extra,
    }


def manifest(*builds: dict[str, Any], last: str = "run-2") -> str:
    return json.dumps({"builds": list(builds), "last_run_uuid": last})


# --- manifests (pure) -----------------------------------------------------------------------------------------------

GOOD = {
    "one region": (manifest(build(f"cn-hangzhou:{IMAGE_A}")), {"cn-hangzhou": IMAGE_A}),
    "copied to two regions": (
        manifest(build(f"cn-hangzhou:{IMAGE_A},cn-shanghai:{IMAGE_SH}")),
        {"cn-hangzhou": IMAGE_A, "cn-shanghai": IMAGE_SH},
    ),
    "last run wins over earlier runs": (
        manifest(build(f"cn-hangzhou:{IMAGE_A}", run="run-1"), build(f"cn-hangzhou:{IMAGE_B}", run="run-2")),
        {"cn-hangzhou": IMAGE_B},
    ),
    "last run listed first": (
        manifest(build(f"cn-hangzhou:{IMAGE_B}", run="run-2"), build(f"cn-hangzhou:{IMAGE_A}", run="run-1")),
        {"cn-hangzhou": IMAGE_B},
    ),
    "an earlier run's bad build is ignored": (
        manifest(build("garbage", run="run-1"), build(f"cn-hangzhou:{IMAGE_A}")),
        {"cn-hangzhou": IMAGE_A},
    ),
}


@pytest.mark.parametrize("case", GOOD, ids=list(GOOD))
def test_good_manifest(case: str) -> None:
    text, images = GOOD[case]
    run = parse_manifest(text, "manifest.json")
    assert run.images == images
    assert (run.version, run.commit, run.built_at) == ("1.4.2", COMMIT, "2026-01-01T00:00:00Z")


BAD = {
    "not JSON": ("{builds: [", "is not valid JSON"),
    "a list": ("[]", "expected a JSON object"),
    "no builds key": (json.dumps({"last_run_uuid": "run-2"}), "'builds' must be a non-empty list"),
    "no builds": (manifest(), "'builds' must be a non-empty list"),
    "no last_run_uuid": (json.dumps({"builds": [build(f"cn-hangzhou:{IMAGE_A}")]}), "'last_run_uuid' is missing"),
    "no build of the last run": (
        manifest(build(f"cn-hangzhou:{IMAGE_A}", run="run-1")),
        "no build belongs to the last run (run-2)",
    ),
    "artifact_id missing": (manifest(build(None)), "artifact_id must be a string"),
    "not an m- ID": (manifest(build("cn-hangzhou:ami-0abc1234")), "image ID 'ami-0abc1234' for cn-hangzhou"),
    "upper-case ID": (manifest(build("cn-hangzhou:m-BP1AAAAAAAAA")), "is not a custom image ID"),
    "no region": (manifest(build(IMAGE_A)), "is not '<region>:<image ID>'"),
    "bad second region": (
        manifest(build(f"cn-hangzhou:{IMAGE_A},shanghai:{IMAGE_SH}")),
        "part 'shanghai:m-uf6ccccccccccccccccc' is not '<region>:<image ID>'",
    ),
    "two images for a region in one run": (
        manifest(build(f"cn-hangzhou:{IMAGE_A}"), build(f"cn-hangzhou:{IMAGE_B}")),
        "a second image for cn-hangzhou",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_manifest_is_refused(case: str) -> None:
    text, message = BAD[case]
    with pytest.raises(HandoffError) as raised:
        parse_manifest(text, "packer/manifest.json")
    assert message in str(raised.value)
    assert all(problem.startswith("packer/manifest.json") for problem in raised.value.problems)


def test_every_bad_part_is_reported_at_once() -> None:
    with pytest.raises(HandoffError) as raised:
        parse_artifact_id("cn-hangzhou:x-1,cn-shanghai:m-Q", "build app")
    assert len(raised.value.problems) == 2


@pytest.mark.parametrize(
    ("images", "region", "expected"),
    [
        ({"cn-hangzhou": IMAGE_A, "cn-shanghai": IMAGE_SH}, "cn-shanghai", IMAGE_SH),
        ({"cn-hangzhou": IMAGE_A}, "cn-hangzhou", IMAGE_A),
    ],
)
def test_image_for_the_stacks_region(images: dict[str, str], region: str, expected: str) -> None:
    assert image_for_region(images, region, "m.json") == expected


def test_no_build_for_the_stacks_region() -> None:
    with pytest.raises(HandoffError, match=r"m.json has no image for region cn-beijing \(built for: cn-hangzhou\)"):
        image_for_region({"cn-hangzhou": IMAGE_A}, "cn-beijing", "m.json")


# --- the stack file: round trip -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "preprod", "prod"])
def test_only_the_image_line_of_a_real_stack_file_changes(stack: str) -> None:
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    new = with_image(text, IMAGE_B, f"Pulumi.{stack}.yaml")
    old_lines, new_lines = text.splitlines(keepends=True), new.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    changed = [(o, n) for o, n in zip(old_lines, new_lines, strict=True) if o != n]
    assert changed == [
        (next(x for x in old_lines if x.startswith("  ha-webapp:imageId:")), f"  ha-webapp:imageId: {IMAGE_B}\n")
    ]


STACK_FILE = """\
# A stack file with comments in every place a person puts them.
config:
  alicloud:region: cn-shanghai   # where it runs
  # the image, set by the pipeline
  ha-webapp:imageId: "m-bp1olderimage0001"  # quoted by hand
  ha-webapp:network:
    vpcCidr: '10.40.0.0/16'
    zones:
      - id: cn-shanghai-e
        vswitchCidr: 10.40.1.0/24   # zone A
      - id: cn-shanghai-f
        vswitchCidr: 10.40.2.0/24
  ha-webapp:app:
    instanceType: ecs.g7.large
  ha-webapp:protect: true
# trailing comment
"""


def test_comments_quotes_and_other_keys_survive() -> None:
    new = with_image(STACK_FILE, IMAGE_SH, "Pulumi.x.yaml")
    old_lines, new_lines = STACK_FILE.splitlines(), new.splitlines()
    changed = [i for i, (o, n) in enumerate(zip(old_lines, new_lines, strict=True)) if o != n]
    assert changed == [4]
    # The hand-written quotes and the trailing comment of the image's own line stay too.
    assert new_lines[4] == f'  ha-webapp:imageId: "{IMAGE_SH}" # quoted by hand'


def test_missing_image_key_is_added_after_the_region() -> None:
    text = STACK_FILE.replace(
        '  # the image, set by the pipeline\n  ha-webapp:imageId: "m-bp1olderimage0001"  # quoted by hand\n', ""
    )
    new = with_image(text, IMAGE_SH, "Pulumi.x.yaml")
    lines = new.splitlines()
    assert (
        lines[lines.index("  alicloud:region: cn-shanghai   # where it runs") + 1] == f"  ha-webapp:imageId: {IMAGE_SH}"
    )
    assert [line for line in lines if "imageId" not in line] == text.splitlines()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config:\n    alicloud:region: cn-hangzhou\n    ha-webapp:imageId: m-bp1olderimage0001\n", "reformat"),
        (
            "config:\n  alicloud:region: cn-hangzhou\n  ha-webapp:imageId: m-bp1olderimage0001\n  ha-webapp:network:\n"
            "    zones:\n    - id: cn-hangzhou-h\n",
            "reformat",
        ),
        ("config: [a, b]\n", "no 'config:' mapping"),
        ("config:\n  a: [\n", "is not valid YAML"),
    ],
)
def test_stack_files_it_cannot_edit_cleanly_are_refused(text: str, message: str) -> None:
    with pytest.raises(HandoffError, match=message):
        with_image(text, IMAGE_A, "Pulumi.x.yaml")


# --- `set` end to end -----------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory with the real stack files, and no `pulumi` on PATH."""
    directory = tmp_path / "project"
    directory.mkdir()
    for stack in ("dev", "preprod", "prod"):
        shutil.copy(ROOT / f"Pulumi.{stack}.yaml", directory)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git",):
        found = shutil.which(tool)
        assert found, f"{tool} is needed (scripts/setup-system.sh)"
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert shutil.which("pulumi") is None
    return directory


def run_cli(project: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = image_handoff.main(["--project-dir", str(project), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_set_from_the_manifest(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(manifest(build(f"cn-shanghai:{IMAGE_SH},cn-hangzhou:{IMAGE_A}")))
    before = (project / "Pulumi.dev.yaml").read_text()
    code, out, err = run_cli(project, "set", "--stack", "dev", "--manifest", str(path), capsys=capsys)
    assert (code, err) == (0, "")
    assert f"imageId {IMAGE_A}" in out and "edited Pulumi.dev.yaml" in out
    assert (project / "Pulumi.dev.yaml").read_text() == before.replace("m-bp1g7004ksh0oeuc1ne8", IMAGE_A)
    assert (project / "Pulumi.prod.yaml").read_bytes() == (ROOT / "Pulumi.prod.yaml").read_bytes()


BAD_SET = {
    **{f"manifest: {case}": (text, message) for case, (text, message) in BAD.items()},
    "manifest: no build for the stack's region": (
        manifest(build(f"cn-shanghai:{IMAGE_SH}")),
        "has no image for region cn-hangzhou (built for: cn-shanghai)",
    ),
    "manifest missing": (None, "does not exist (run `packer build` first)"),
}


@pytest.mark.parametrize("case", BAD_SET, ids=list(BAD_SET))
def test_set_refuses_and_leaves_the_stack_file_byte_identical(
    case: str, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = BAD_SET[case]
    path = tmp_path / "manifest.json"
    if text is not None:
        path.write_text(text)
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    code, out, err = run_cli(project, "set", "--stack", "dev", "--manifest", str(path), capsys=capsys)
    assert code == 2
    assert message in err and err.startswith("error: ") and "Traceback" not in err
    assert out == ""
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before


@pytest.mark.parametrize(
    ("stack", "message"),
    [("staging", "Pulumi.staging.yaml does not exist"), ("../dev", "is not a stack name")],
)
def test_set_refuses_unknown_stacks(
    stack: str, message: str, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(manifest(build(f"cn-hangzhou:{IMAGE_A}")))
    code, _, err = run_cli(project, "set", "--stack", stack, "--manifest", str(path), capsys=capsys)
    assert code == 2 and message in err


def test_set_refuses_a_stack_file_without_a_region(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("  alicloud:region: cn-hangzhou\n", ""))
    before = stack_file.read_bytes()
    path = tmp_path / "manifest.json"
    path.write_text(manifest(build(f"cn-hangzhou:{IMAGE_A}")))
    code, _, err = run_cli(project, "set", "--stack", "dev", "--manifest", str(path), capsys=capsys)
    assert code == 2 and "alicloud:region must be a region ID" in err
    assert stack_file.read_bytes() == before


def test_the_module_runs_as_a_command(project: Path, tmp_path: Path) -> None:
    """`python -m pipeline.image_handoff` in its own process: exit code 2 and a one-line message, no traceback."""
    path = tmp_path / "manifest.json"
    path.write_text(manifest(build("cn-hangzhou:m-TOOSHORT")))
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.image_handoff", "set", "--stack", "dev", "--manifest", str(path)],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "is not a custom image ID" in result.stderr


# --- `set` through a Pulumi CLI -------------------------------------------------------------------------------------


def fake_pulumi(bin_dir: Path, exit_code: int = 0) -> Path:
    """A `pulumi` that records its arguments and working directory, one JSON line per call."""
    log = bin_dir / "pulumi-calls.jsonl"
    script = bin_dir / "pulumi"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}) + '\\n')\n"
        f"if {exit_code}:\n"
        "    print('error: no stack named dev found', file=sys.stderr)\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return log


def test_set_uses_pulumi_config_set_when_the_cli_is_there(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = fake_pulumi(tmp_path / "bin")
    path = tmp_path / "manifest.json"
    path.write_text(manifest(build(f"cn-hangzhou:{IMAGE_A}")))
    before = (project / "Pulumi.preprod.yaml").read_bytes()
    code, out, err = run_cli(project, "set", "--stack", "preprod", "--manifest", str(path), capsys=capsys)
    assert (code, err) == (0, ""), err
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [
        {"argv": ["config", "set", "imageId", IMAGE_A, "--stack", "preprod"], "cwd": str(project)},
    ]
    assert "pulumi config set" in out
    # The CLI owns the file in that case (it may also encrypt or reformat); the tool does not touch it itself.
    assert (project / "Pulumi.preprod.yaml").read_bytes() == before


def test_a_failing_pulumi_is_an_error(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_pulumi(tmp_path / "bin", exit_code=255)
    path = tmp_path / "manifest.json"
    path.write_text(manifest(build(f"cn-hangzhou:{IMAGE_A}")))
    code, _, err = run_cli(project, "set", "--stack", "dev", "--manifest", str(path), capsys=capsys)
    assert code == 2
    assert "`pulumi config set imageId" in err and "no stack named dev found" in err


# --- publish and resolve: the catalog in OSS and promotion by merge -------------------------------------------------

BUCKET = "ha-webapp-state-test"


@pytest.fixture
def catalog(oss_env: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty bucket on the local S3 server, named by STATE_BUCKET; yields an S3 client for it."""
    from pipeline import oss

    s3 = oss.client()
    try:
        for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    except s3.exceptions.NoSuchBucket:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-hangzhou"})
    monkeypatch.setenv("STATE_BUCKET", BUCKET)
    return s3


class Repo:
    """A throwaway git repository with deterministic commit times (newest last)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = 1_767_225_600
        self.git("init", "--quiet", "--initial-branch=master")

    def git(self, *args: str) -> str:
        self.clock += 60
        date = f"@{self.clock} +0000"
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        result = subprocess.run(["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=True)
        return result.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(project: Path) -> Repo:
    return Repo(project)


def publish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project: Path, commit: str, image: str, version: str = "1.0.0"
) -> tuple[int, str, str]:
    path = tmp_path / f"manifest-{commit[:7]}.json"
    data = build(
        f"cn-hangzhou:{image},cn-shanghai:{IMAGE_SH}", custom_data={"app_version": version, "git_commit": commit}
    )
    path.write_text(manifest(data))
    return run_cli(project, "publish", "--manifest", str(path), "--commit", commit, "--version", version, capsys=capsys)


def test_publish_records_the_build(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = repo.commit("feature")
    code, out, err = publish(tmp_path, capsys, repo.path, sha, IMAGE_A, version="2.0.1")
    assert (code, err) == (0, "")
    assert f"images/{sha}.json" in out
    entry = json.loads(catalog.get_object(Bucket=BUCKET, Key=f"images/{sha}.json")["Body"].read())
    assert entry == {
        "commit": sha,
        "version": "2.0.1",
        "images": {"cn-hangzhou": IMAGE_A, "cn-shanghai": IMAGE_SH},
        "built_at": "2026-01-01T00:00:00Z",
    }


def test_publish_is_idempotent_but_never_replaces_an_image(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = repo.commit("feature")
    assert publish(tmp_path, capsys, repo.path, sha, IMAGE_A)[0] == 0
    code, out, _ = publish(tmp_path, capsys, repo.path, sha, IMAGE_A)
    assert code == 0 and "already records" in out
    code, _, err = publish(tmp_path, capsys, repo.path, sha, IMAGE_B)
    assert code == 2 and "built once per commit" in err
    entry = json.loads(catalog.get_object(Bucket=BUCKET, Key=f"images/{sha}.json")["Body"].read())
    assert entry["images"]["cn-hangzhou"] == IMAGE_A


def test_show_tells_whether_a_commit_is_built(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built, other = repo.commit("built"), repo.commit("not built")
    assert publish(tmp_path, capsys, repo.path, built, IMAGE_A, version="2.0.1")[0] == 0
    code, out, err = run_cli(repo.path, "show", "--commit", built, capsys=capsys)
    assert (code, err) == (0, "")
    assert f"images/{built}.json records version 2.0.1" in out and IMAGE_A in out
    code, out, err = run_cli(repo.path, "show", "--commit", other, capsys=capsys)
    assert (code, out.strip(), err) == (1, f"no image recorded for commit {other}", "")
    code, _, err = run_cli(repo.path, "show", "--commit", "HEAD", capsys=capsys)
    assert code == 2 and "full 40-character lowercase commit SHA" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--commit", "abc1234", "--version", "1.0.0"], "full 40-character lowercase commit SHA"),
        (["--commit", "f" * 40, "--version", "1.0.0"], f"built from commit {COMMIT}, not {'f' * 40}"),
        (["--commit", COMMIT, "--version", "9.9.9"], "is version 1.4.2, not 9.9.9"),
    ],
)
def test_publish_refuses_a_mismatch(
    args: list[str], message: str, catalog: Any, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(manifest(build(f"cn-hangzhou:{IMAGE_A}")))
    code, _, err = run_cli(project, "publish", "--manifest", str(path), *args, capsys=capsys)
    assert code == 2 and message in err
    assert "Contents" not in catalog.list_objects_v2(Bucket=BUCKET)


def test_publish_without_a_bucket(
    oss_env: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STATE_BUCKET", raising=False)
    path = tmp_path / "manifest.json"
    path.write_text(manifest(build(f"cn-hangzhou:{IMAGE_A}")))
    code, _, err = run_cli(
        project, "publish", "--manifest", str(path), "--commit", COMMIT, "--version", "1.4.2", capsys=capsys
    )
    assert code == 2 and "STATE_BUCKET is not set" in err
    monkeypatch.setenv("STATE_BUCKET", "no-such-bucket-here")
    code, _, err = run_cli(
        project, "publish", "--manifest", str(path), "--commit", COMMIT, "--version", "1.4.2", capsys=capsys
    )
    assert code == 2 and "OSS bucket no-such-bucket-here: NoSuchBucket" in err


def test_promotion_by_merge_reuses_masters_image(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """master builds; pre-production and production merge it and get the very same image ID, no rebuild."""
    first = repo.commit("first release")
    assert publish(tmp_path, capsys, repo.path, first, IMAGE_A, version="1.0.0")[0] == 0
    repo.git("branch", "pre-production")
    repo.git("branch", "production")
    second = repo.commit("second release")
    assert publish(tmp_path, capsys, repo.path, second, IMAGE_B, version="1.1.0")[0] == 0
    # dev ran both releases and preprod the second (what `record` writes after each successful `pulumi up`).
    put_record(catalog, "dev", 1, first)
    put_record(catalog, "dev", 2, second)
    put_record(catalog, "preprod", 1, second)
    repo.commit("docs only: the image job did not run")

    repo.git("checkout", "--quiet", "pre-production")
    repo.commit("a fix on pre-production itself, never built")
    repo.git("merge", "--quiet", "--no-ff", "-m", "promote master", "master")
    before = (repo.path / "Pulumi.preprod.yaml").read_text()
    code, out, err = run_cli(repo.path, "resolve", "--stack", "preprod", capsys=capsys)
    assert (code, err) == (0, "")
    assert f"promoted image {IMAGE_B} (version 1.1.0, commit {second}) to stack preprod" in out
    assert (repo.path / "Pulumi.preprod.yaml").read_text() == before.replace("m-bp1g7004ksh0oeuc1ne8", IMAGE_B)

    repo.git("checkout", "--quiet", "production")
    repo.git("merge", "--quiet", "--no-ff", "-m", "promote pre-production", "pre-production")
    code, out, _ = run_cli(repo.path, "resolve", "--stack", "prod", "--commit", "production", capsys=capsys)
    assert code == 0 and f"promoted image {IMAGE_B}" in out
    prod = (repo.path / "Pulumi.prod.yaml").read_text()
    assert f"ha-webapp:imageId: {IMAGE_B}\n" in prod

    # An older revision resolves to the image that was current then: that is a rollback.
    code, out, _ = run_cli(repo.path, "resolve", "--stack", "dev", "--commit", first, capsys=capsys)
    assert code == 0 and f"promoted image {IMAGE_A} (version 1.0.0" in out


def test_promotion_by_merge_follows_the_history_not_the_commit_dates(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A merge promotes master's newest build even when an older build carries a later commit date (a committer's clock
    ahead; or both in one second, as in the real pipeline run of tests/pipeline/test_deploy_on_localcloud.py, which
    reported the older one as a skipped "newer" build). `git rev-list` lists by date unless told otherwise, so preprod
    got the older image that dev had also run. Seen failing before `resolve` asked for --topo-order."""
    repo.clock += 3600  # the first release's committer's clock is an hour ahead
    first = repo.commit("first release")
    repo.git("branch", "pre-production")
    repo.clock -= 7200
    second = repo.commit("second release")
    assert publish(tmp_path, capsys, repo.path, first, IMAGE_A, version="1.0.0")[0] == 0
    assert publish(tmp_path, capsys, repo.path, second, IMAGE_B, version="1.1.0")[0] == 0
    put_record(catalog, "dev", 1, first)
    put_record(catalog, "dev", 2, second)
    repo.git("checkout", "--quiet", "pre-production")
    repo.clock += 7200
    repo.git("merge", "--quiet", "--no-ff", "-m", "promote master", "master")
    code, out, err = run_cli(repo.path, "resolve", "--stack", "preprod", capsys=capsys)
    assert (code, err) == (0, "")
    assert f"promoted image {IMAGE_B} (version 1.1.0, commit {second}) to stack preprod" in out
    assert "skipped" not in out


def test_resolve_without_an_image_among_the_ancestors(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before_any_image = repo.commit("before the image job existed")
    built = repo.commit("built")
    assert publish(tmp_path, capsys, repo.path, built, IMAGE_A)[0] == 0
    files = {p.name: p.read_bytes() for p in repo.path.glob("Pulumi.*.yaml")}
    code, out, err = run_cli(repo.path, "resolve", "--stack", "prod", "--commit", before_any_image, capsys=capsys)
    assert code == 2 and out == ""
    assert f"no image built for any ancestor of {before_any_image}" in err
    assert "run the image job on master first" in err
    assert {p.name: p.read_bytes() for p in repo.path.glob("Pulumi.*.yaml")} == files


@pytest.mark.parametrize(
    ("rev", "message"),
    [("no-such-branch", "git cannot list the ancestors of no-such-branch"), ("--all", "not a revision")],
)
def test_resolve_refuses_an_unknown_revision(
    rev: str, message: str, catalog: Any, repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.commit("only")
    code, _, err = run_cli(repo.path, "resolve", "--stack", "dev", f"--commit={rev}", capsys=capsys)
    assert code == 2 and message in err


def test_resolve_refuses_an_entry_without_the_stacks_region(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = repo.commit("built elsewhere")
    body = json.dumps({"commit": sha, "version": "1", "images": {"eu-central-1": IMAGE_A}, "built_at": "x"})
    catalog.put_object(Bucket=BUCKET, Key=f"images/{sha}.json", Body=body.encode())
    before = (repo.path / "Pulumi.dev.yaml").read_bytes()
    code, _, err = run_cli(repo.path, "resolve", "--stack", "dev", capsys=capsys)
    assert code == 2 and "has no image for region cn-hangzhou (built for: eu-central-1)" in err
    assert (repo.path / "Pulumi.dev.yaml").read_bytes() == before


# --- promote only what passed: deploy records, and promotion gated on them ------------------------------------------


def put_record(catalog: Any, stack: str, sequence: int, commit: str, image_commit: str | None = None) -> str:
    """A deploy record as `record` writes it (the key carries what resolve and check-forward read)."""
    key = f"deployments/{stack}/{sequence:08d}.{commit}.{image_commit or commit}.json"
    body = {"stack": stack, "sequence": sequence, "commit": commit, "image_commit": image_commit or commit}
    catalog.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())
    return key


# History on master: first (built: IMAGE_A) - second (built: IMAGE_B) - third (not built).
# Each case: the stack to resolve, the records per stack as (deployed commit, commit its image was built from), and
# the image promoted or the error expected.
PROMOTIONS: dict[str, tuple[str, dict[str, list[tuple[str, str]]], str]] = {
    "dev takes the newest build, deployed anywhere or not": ("dev", {}, IMAGE_B),
    "preprod takes the newest build that succeeded in dev": (
        "preprod",
        {"dev": [("first", "first"), ("second", "second")]},
        IMAGE_B,
    ),
    "preprod skips a build whose dev deploy never succeeded": ("preprod", {"dev": [("first", "first")]}, IMAGE_A),
    "preprod: what passed is the build, whichever commit dev deployed it with": (
        "preprod",
        {"dev": [("third", "first")]},
        IMAGE_A,
    ),
    "preprod: nothing succeeded in dev": (
        "preprod",
        {},
        "error: no image among the ancestors of HEAD succeeded in dev",
    ),
    "preprod: its own record does not qualify it": (
        "preprod",
        {"preprod": [("second", "second")]},
        "error: no image among the ancestors of HEAD succeeded in dev",
    ),
    "prod takes the newest build that succeeded in preprod": (
        "prod",
        {"dev": [("first", "first"), ("second", "second")], "preprod": [("first", "first")]},
        IMAGE_A,
    ),
    "prod: succeeded in dev only": (
        "prod",
        {"dev": [("first", "first"), ("second", "second")]},
        "error: no image among the ancestors of HEAD succeeded in preprod",
    ),
}


@pytest.mark.parametrize("case", PROMOTIONS, ids=list(PROMOTIONS))
def test_promotion_takes_only_images_that_passed_the_stack_before(
    case: str, catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, records, expected = PROMOTIONS[case]
    commits = {"first": repo.commit("first"), "second": repo.commit("second"), "third": repo.commit("third")}
    assert publish(tmp_path, capsys, repo.path, commits["first"], IMAGE_A, version="1.0.0")[0] == 0
    assert publish(tmp_path, capsys, repo.path, commits["second"], IMAGE_B, version="1.1.0")[0] == 0
    for on, deploys in records.items():
        for sequence, (deployed, built) in enumerate(deploys, start=1):
            put_record(catalog, on, sequence, commits[deployed], commits[built])
    before = (repo.path / f"Pulumi.{stack}.yaml").read_bytes()
    code, out, err = run_cli(repo.path, "resolve", "--stack", stack, capsys=capsys)
    if expected.startswith("error: "):
        assert (code, out) == (2, ""), out
        assert expected in err
        assert (repo.path / f"Pulumi.{stack}.yaml").read_bytes() == before
        return
    assert (code, err) == (0, ""), err
    assert f"promoted image {expected} " in out
    assert f"ha-webapp:imageId: {expected}\n" in (repo.path / f"Pulumi.{stack}.yaml").read_text()


def test_resolve_says_which_build_it_skipped_and_why(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = repo.commit("first"), repo.commit("second: its dev deploy failed the health gate")
    assert publish(tmp_path, capsys, repo.path, first, IMAGE_A)[0] == 0
    assert publish(tmp_path, capsys, repo.path, second, IMAGE_B)[0] == 0
    put_record(catalog, "dev", 7, first)
    code, out, _ = run_cli(repo.path, "resolve", "--stack", "preprod", capsys=capsys)
    assert code == 0
    assert f"succeeded in dev (deploy #7); skipped newer builds that never succeeded in dev: {second}" in out
    code, _, err = run_cli(repo.path, "resolve", "--stack", "prod", capsys=capsys)
    assert code == 2
    assert f"built but never deployed successfully to preprod: {second}, {first}" in err


def resolve_and_record(repo: Repo, capsys: pytest.CaptureFixture[str], stack: str, *extra: str) -> tuple[int, str, str]:
    saved = repo.path / "resolved.json"
    code, _, err = run_cli(repo.path, "resolve", "--stack", stack, "--save", str(saved), capsys=capsys)
    assert code == 0, err
    return run_cli(repo.path, "record", "--stack", stack, "--resolved", str(saved), *extra, capsys=capsys)


def test_record_writes_one_numbered_object_per_deploy_and_never_rewrites_one(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    built = repo.commit("built")
    assert publish(tmp_path, capsys, repo.path, built, IMAGE_A, version="2.0.0")[0] == 0
    monkeypatch.setenv("CI_JOB_URL", "https://gitlab.example.com/team/ha-webapp/-/jobs/42")
    code, out, err = resolve_and_record(repo, capsys, "dev")
    assert (code, err) == (0, ""), err
    first_key = f"deployments/dev/00000001.{built}.{built}.json"
    assert f"recorded deploy #1 of stack dev: commit {built}, image {IMAGE_A}" in out and first_key in out
    first = catalog.get_object(Bucket=BUCKET, Key=first_key)["Body"].read()
    entry = json.loads(first)
    assert {k: entry[k] for k in ("stack", "sequence", "commit", "image", "image_commit", "version", "rollback")} == {
        "stack": "dev",
        "sequence": 1,
        "commit": built,
        "image": IMAGE_A,
        "image_commit": built,
        "version": "2.0.0",
        "rollback": False,
    }
    assert entry["job"].endswith("/jobs/42")

    later = repo.commit("a change without a new image")
    code, out, _ = resolve_and_record(repo, capsys, "dev")
    assert code == 0 and f"deployments/dev/00000002.{later}.{built}.json" in out
    assert catalog.get_object(Bucket=BUCKET, Key=first_key)["Body"].read() == first
    # Another stack counts its own deploys.
    put_record(catalog, "preprod", 1, built)
    code, out, _ = resolve_and_record(repo, capsys, "preprod")
    assert code == 0 and "deploy #2 of stack preprod" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stack": "prod"}, "was resolved for stack prod, not dev"),
        ({"image": "ami-123"}, "'image' must be an image ID"),
        ({"image_commit": None}, "expected what `resolve --save` writes"),
        (None, "does not exist: run `resolve --stack dev --save"),
    ],
)
def test_record_refuses_what_resolve_did_not_write(
    change: dict[str, Any] | None, message: str, catalog: Any, repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = repo.commit("built")
    saved = repo.path / "resolved.json"
    if change is not None:
        body = {"stack": "dev", "region": "cn-hangzhou", "image": IMAGE_A, "image_commit": sha, "version": "1"}
        saved.write_text(json.dumps({**body, **change}))
    code, _, err = run_cli(repo.path, "record", "--stack", "dev", "--resolved", str(saved), capsys=capsys)
    assert code == 2 and message in err
    assert "Contents" not in catalog.list_objects_v2(Bucket=BUCKET, Prefix="deployments/")


# --- releases only move forward ---------------------------------------------------------------------------------------

# History: a - b - c on master, and x branched off a (never merged). Each case: the commits deployed to dev so far
# (oldest first), the commit to deploy, ROLLBACK_TO, and what check-forward says (an error starts with "error: ").
FORWARD: dict[str, tuple[list[str], str, str, str]] = {
    "first deploy": ([], "b", "", "has no recorded deploy: "),
    "the same commit again (a retried job)": (["c"], "c", "", "runs {c} already"),
    "a descendant": (["a", "b"], "c", "", "{c} descends from {b}"),
    "an older commit, late": (["b", "c"], "b", "", "error: refusing to deploy {b} to stack dev"),
    "a commit off another line": (["c"], "x", "", "error: refusing to deploy {x}"),
    "an older commit, on purpose": (["c"], "b", "{b}", "ROLLBACK: {b} does not descend from {c}"),
    "ROLLBACK_TO names another commit": (["c"], "b", "{a}", "error: refusing to deploy {b}"),
    "a stale ROLLBACK_TO on a forward deploy": (["b"], "c", "{b}", "ROLLBACK_TO={b} is ignored"),
    "ROLLBACK_TO not a full SHA": (["c"], "b", "b1a2", "error: ROLLBACK_TO 'b1a2' must be the full 40-character"),
    "the last deploy is unknown to git": (["gone"], "c", "", "error: cannot tell whether {c} descends from {gone}"),
}


@pytest.mark.parametrize("case", FORWARD, ids=list(FORWARD))
def test_releases_only_move_forward_unless_rolled_back_on_purpose(
    case: str, catalog: Any, repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed, deploy, rollback_to, expected = FORWARD[case]
    commits = {"a": repo.commit("a"), "b": repo.commit("b"), "c": repo.commit("c"), "gone": "f" * 40}
    repo.git("checkout", "--quiet", "-b", "side", commits["a"])
    commits["x"] = repo.commit("x")
    for sequence, name in enumerate(deployed, start=1):
        put_record(catalog, "dev", sequence, commits[name])
    args = ["check-forward", "--stack", "dev", "--commit", commits[deploy]]
    code, out, err = run_cli(repo.path, *args, "--rollback-to", rollback_to.format(**commits), capsys=capsys)
    expected = expected.format(**commits)
    if expected.startswith("error: "):
        assert (code, out) == (2, "")
        assert expected in err
    else:
        assert (code, err) == (0, ""), err
        assert expected in out


# --- the app pin: one image per pin and template (pipeline/app_pin.py) ----------------------------------------------

PIN_KEY = "a" * 64
OTHER_PIN_KEY = "b" * 64


def pin_file(tmp_path: Path, key: str = PIN_KEY, version: str = "1.4.2") -> Path:
    """What `python -m pipeline.app_pin fetch` writes next to the artifact."""
    artifact = tmp_path / "app.jar"
    artifact.write_bytes(b"PK\x03\x04 the app")
    fetched = app_pin.Fetched(
        key,
        "artifact",
        version,
        "c" * 64,
        artifact,
        app_pin.Runtime(
            file_name="app.jar",
            start_command="/usr/bin/java -jar /opt/app/app.jar",
            packages=["x1"],
            migrate_command="/opt/flyway/flyway migrate",
        ),
        "https://gitlab.example.com/app.jar",
    )
    path = tmp_path / f"pin-{key[:4]}.json"
    path.write_text(json.dumps(fetched.record()))
    return path


def publish_pinned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project: Path, commit: str, image: str, key: str = PIN_KEY
) -> tuple[int, str, str]:
    path = tmp_path / f"manifest-{commit[:7]}.json"
    path.write_text(manifest(build(f"cn-hangzhou:{image}", custom_data={"app_version": "1.4.2", "git_commit": commit})))
    pin = pin_file(tmp_path, key)
    return run_cli(project, "publish", "--manifest", str(path), "--commit", commit, "--pin", str(pin), capsys=capsys)


def test_publish_with_a_pin_records_it_and_indexes_the_image_by_its_key(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = repo.commit("first build of the pin")
    code, out, err = publish_pinned(tmp_path, capsys, repo.path, sha, IMAGE_A)
    assert (code, err) == (0, ""), err
    assert f"indexed as images/pins/{PIN_KEY}.json" in out
    entry = json.loads(catalog.get_object(Bucket=BUCKET, Key=f"images/{sha}.json")["Body"].read())
    # The version comes from the pin; the pin says which artifact the image runs.
    assert entry["version"] == "1.4.2"
    assert entry["pin"] == {"key": PIN_KEY, "source": "artifact", "version": "1.4.2", "sha256": "c" * 64}
    index = json.loads(catalog.get_object(Bucket=BUCKET, Key=f"images/pins/{PIN_KEY}.json")["Body"].read())
    assert index == entry


def test_the_same_pin_is_reused_for_a_new_commit_and_resolves_like_a_build(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = repo.commit("first build of the pin")
    code, out, _ = run_cli(repo.path, "reuse", "--pin-key", PIN_KEY, "--commit", first, capsys=capsys)
    assert (code, out.strip()) == (1, f"no image built for app pin {PIN_KEY}")
    assert publish_pinned(tmp_path, capsys, repo.path, first, IMAGE_A)[0] == 0

    second = repo.commit("an infra change: same app, same template")
    code, out, err = run_cli(repo.path, "reuse", "--pin-key", PIN_KEY, "--commit", second, capsys=capsys)
    assert (code, err) == (0, "")
    assert f"recorded images/{second}.json" in out and f"built for commit {first}" in out
    entry = json.loads(catalog.get_object(Bucket=BUCKET, Key=f"images/{second}.json")["Body"].read())
    assert (entry["commit"], entry["images"], entry["reused_from"]) == (second, {"cn-hangzhou": IMAGE_A}, first)
    # Again: nothing changes. A different pin has no image yet.
    assert run_cli(repo.path, "reuse", "--pin-key", PIN_KEY, "--commit", second, capsys=capsys)[0] == 0
    assert run_cli(repo.path, "reuse", "--pin-key", OTHER_PIN_KEY, "--commit", second, capsys=capsys)[0] == 1
    # `resolve` walks commits and finds the new commit's entry: deploys work unchanged.
    code, out, _ = run_cli(repo.path, "resolve", "--stack", "dev", capsys=capsys)
    assert code == 0 and f"promoted image {IMAGE_A} (version 1.4.2, commit {second})" in out


def test_a_second_build_of_the_same_pin_keeps_the_first_in_the_index(
    catalog: Any, repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two pipelines built the same pin at once: both commits keep their image; later commits reuse the first.
    first, second = repo.commit("one"), repo.commit("two")
    assert publish_pinned(tmp_path, capsys, repo.path, first, IMAGE_A)[0] == 0
    code, out, _ = publish_pinned(tmp_path, capsys, repo.path, second, IMAGE_B)
    assert code == 0 and "already names an image for this pin" in out
    index = json.loads(catalog.get_object(Bucket=BUCKET, Key=f"images/pins/{PIN_KEY}.json")["Body"].read())
    assert index["images"] == {"cn-hangzhou": IMAGE_A}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pin-key", "A" * 64, "--commit", COMMIT], "--pin-key 'AAAA"),
        (["--pin-key", PIN_KEY, "--commit", "HEAD"], "full 40-character lowercase commit SHA"),
    ],
)
def test_reuse_refuses_bad_input(
    catalog: Any, project: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(project, "reuse", *args, capsys=capsys)
    assert code == 2 and message in err


def test_reuse_cannot_tell_without_the_bucket(
    oss_env: str, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # "Cannot tell" must not read as "not built" (exit 1), which would start a build.
    monkeypatch.setenv("STATE_BUCKET", "no-such-bucket-here")
    code, _, err = run_cli(project, "reuse", "--pin-key", PIN_KEY, "--commit", COMMIT, capsys=capsys)
    assert code == 2 and "NoSuchBucket" in err


def test_publish_needs_a_version_or_a_pin(
    catalog: Any, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(manifest(build(f"cn-hangzhou:{IMAGE_A}")))
    code, _, err = run_cli(project, "publish", "--manifest", str(path), "--commit", COMMIT, capsys=capsys)
    assert code == 2 and "--version is required without --pin" in err
    bad = tmp_path / "pin.json"
    bad.write_text('{"key": "x"}')
    code, _, err = run_cli(
        project, "publish", "--manifest", str(path), "--commit", COMMIT, "--pin", str(bad), capsys=capsys
    )
    assert code == 2 and "expected what `fetch` writes" in err
