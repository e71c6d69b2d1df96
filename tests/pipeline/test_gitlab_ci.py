""".gitlab-ci.yml checked against GitLab's schema, listed over the branch matrix and run, with a real local GitLab CI
runner (gitlab-ci-local, pinned in package.json), against recording stand-ins for `pulumi` and `packer`.

The runs use a throwaway git repository with the three deploy branches, the local S3 server as the state bucket with
its image catalog, and a local STS that exchanges the job's OIDC token: everything the jobs do up to the two external
tools is the real thing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import oss
from plan.offline import PROJECT_DIR
from tests.conftest import STACKS, local_state_bucket
from tests.fakes.registry import Served, registry_servers
from tests.fakes.sts import FakeSts, job_token, serve
from tests.project_files import project_files
from tests.pulumi_cli import PROVIDER_OFFLINE, toolchain_bin

CI_FILE = PROJECT_DIR / ".gitlab-ci.yml"
GITLAB_CI_LOCAL = PROJECT_DIR / "node_modules" / ".bin" / "gitlab-ci-local"

ACCOUNT = "1234567890123456"
PROVIDER_ARN = f"acs:ram::{ACCOUNT}:oidc-provider/gitlab"
ISSUER = "https://gitlab.example.com"
PROJECT_PATH = "team/ha-webapp"  # from the test repository's remote, as gitlab-ci-local reads it
DEPLOY_BRANCHES = ("master", "pre-production", "production")
STATE_BUCKET = "ha-webapp-state-pipeline-test"
# The images in the catalog: built on master for the first and the third commit (see `ci_repo`).
IMAGE_A = "m-bp1aaaaaaaaaaaaaaaaa"
IMAGE_C = "m-bp1ccccccccccccccccc"
FRESH_IMAGE = "m-bp1ffffffffffffffffff"


def load_ci() -> dict[str, Any]:
    with CI_FILE.open() as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


# ----------------------------------------------------------------------------------------------------------------------
# The schema


def check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_pipeline_matches_gitlabs_schema() -> None:
    result = check_schema(CI_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_refuses_a_broken_pipeline(tmp_path: Path) -> None:
    broken = load_ci()
    broken["deploy:prod"]["when"] = "sometimes"
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(yaml.safe_dump(broken))
    assert check_schema(path).returncode != 0


# ----------------------------------------------------------------------------------------------------------------------
# The one stack map


def test_one_map_names_each_stacks_branch_environment_and_sub_domain_as_its_stack_file_does() -> None:
    ci = load_ci()
    branches = set()
    for stack in STACKS:
        mapping = ci[f".stack:{stack}"]
        with (PROJECT_DIR / f"Pulumi.{stack}.yaml").open() as f:
            dns = yaml.safe_load(f)["config"]["ha-webapp:dns"]
        assert mapping["variables"]["STACK"] == stack
        assert mapping["environment"]["name"] == stack
        assert mapping["environment"]["url"] == f"https://{dns['subDomain']}.{dns['domain']}"
        assert mapping["resource_group"] == stack
        branches.add(mapping["variables"]["STACK_BRANCH"])
        for kind in ("preview", "deploy", "drift"):
            assert ci[f"{kind}:{stack}"]["extends"] == [f".{kind}", f".stack:{stack}"]
    assert branches == {"master", "pre-production", "production"}
    # The workflow's list of deploy branches is the map's.
    branch_rule = next(r["if"] for r in ci["workflow"]["rules"] if "CI_COMMIT_BRANCH =~" in r["if"])
    pattern = re.search(r"=~ /(.+?)/", branch_rule)
    assert pattern is not None
    assert {b for b in ("master", "pre-production", "production", "feature-x") if re.match(pattern[1], b)} == branches


def test_the_pulumi_image_runs_the_cli_version_of_the_pinned_sdk() -> None:
    image = load_ci()[".pulumi"]["image"]
    pinned = re.search(r"^pulumi==(\S+)$", (PROJECT_DIR / "requirements.txt").read_text(), re.M)
    assert pinned is not None
    assert image == f"pulumi/pulumi-python-3.11:{pinned[1]}"


def test_no_secret_or_credential_is_written_in_the_pipeline() -> None:
    text = CI_FILE.read_text()
    for name in ("PULUMI_CONFIG_PASSPHRASE", "ACCESS_KEY_SECRET", "SECRET_ACCESS_KEY", "SECURITY_TOKEN"):
        assert not re.search(rf"^\s*{name}\s*:", text, re.M), f"{name} is set in .gitlab-ci.yml"
    assert "id_tokens" in text


# ----------------------------------------------------------------------------------------------------------------------
# gitlab-ci-local over the branch matrix


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=CI Test", "-c", "user.email=ci@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@dataclass
class CiRepo:
    path: Path
    commits: dict[str, str]  # "A", "B", "C" -> SHA


@pytest.fixture(scope="module")
def ci_repo(tmp_path_factory: pytest.TempPathFactory) -> CiRepo:
    """A copy of the project as a git repository: master at A-B-C, pre-production at B, production at A."""
    if not GITLAB_CI_LOCAL.exists():
        pytest.fail("gitlab-ci-local is not installed: run `make setup` (npm ci installs it from package-lock.json)")
    repo = tmp_path_factory.mktemp("ci-repo")
    for name in project_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_DIR / name, repo / name)
    git(repo, "init", "-q", "-b", "master")
    git(repo, "remote", "add", "origin", "git@gitlab.example.com:team/ha-webapp.git")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "A: first release")
    commits = {"A": git(repo, "rev-parse", "HEAD")}
    git(repo, "commit", "-q", "--allow-empty", "-m", "B: a change without a new image")
    commits["B"] = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--allow-empty", "-m", "C: the next release")
    commits["C"] = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "pre-production", commits["B"])
    git(repo, "branch", "production", commits["A"])
    # gitlab-ci-local 4.60.1 does not apply `workflow:rules`; a probe job carrying them lets its own rules engine say
    # whether the pipeline would start at all.
    probed = load_ci()
    probed["zz-workflow-probe"] = {"stage": "test", "script": ["true"], "rules": probed["workflow"]["rules"]}
    (repo / ".gitlab-ci-probe.yml").write_text(yaml.safe_dump(probed, sort_keys=False))
    return CiRepo(repo, commits)


def gitlab_ci_local(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GITLAB_CI_LOCAL), "--no-color", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env or {"PATH": os.environ["PATH"], "HOME": str(repo)},
        timeout=300,
    )


def variables(values: dict[str, str]) -> list[str]:
    return [arg for name, value in values.items() for arg in ("--variable", f"{name}={value}")]


PUSH = {"CI_PIPELINE_SOURCE": "push"}
# In a merge-request pipeline GitLab sets no CI_COMMIT_BRANCH.
MR_UNSET = ["--unset-variable", "CI_COMMIT_BRANCH"]


def merge_request(source: str, target: str, protected: bool) -> dict[str, str]:
    return {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": source,
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": target,
        "CI_MERGE_REQUEST_SOURCE_BRANCH_PROTECTED": str(protected).lower(),
        "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH": PROJECT_PATH,
        "CI_COMMIT_REF_NAME": source,
    }


MATRIX: dict[str, tuple[dict[str, str], list[str], list[tuple[str, str]]]] = {
    "push to master": (
        {**PUSH, "CI_COMMIT_BRANCH": "master"},
        [],
        [
            ("test", "on_success"),
            ("app:build", "on_success"),
            ("image:build", "on_success"),
            ("deploy:dev", "on_success"),
        ],
    ),
    "push to pre-production": (
        {**PUSH, "CI_COMMIT_BRANCH": "pre-production"},
        [],
        [("test", "on_success"), ("deploy:preprod", "on_success")],
    ),
    "push to production": (
        {**PUSH, "CI_COMMIT_BRANCH": "production"},
        [],
        [("test", "on_success"), ("deploy:prod", "manual")],
    ),
    "production run by hand": (
        {"CI_PIPELINE_SOURCE": "web", "CI_COMMIT_BRANCH": "production"},
        [],
        [("test", "on_success"), ("deploy:prod", "manual")],
    ),
    "push to a feature branch": ({**PUSH, "CI_COMMIT_BRANCH": "feature/login"}, [], []),
    "merge request feature → master": (
        merge_request("feature/login", "master", protected=False),
        MR_UNSET,
        [("test", "on_success")],
    ),
    "merge request master → pre-production": (
        merge_request("master", "pre-production", protected=True),
        MR_UNSET,
        [("test", "on_success"), ("preview:preprod", "on_success")],
    ),
    "merge request pre-production → production": (
        merge_request("pre-production", "production", protected=True),
        MR_UNSET,
        [("test", "on_success"), ("preview:prod", "on_success")],
    ),
    "merge request pre-production → master (a back-merge)": (
        merge_request("pre-production", "master", protected=True),
        MR_UNSET,
        [("test", "on_success"), ("preview:dev", "on_success")],
    ),
    "merge request from another protected branch → master": (
        merge_request("release-fix", "master", protected=True),
        MR_UNSET,
        [("test", "on_success")],
    ),
    "merge request from a fork's master → pre-production": (
        {
            **merge_request("master", "pre-production", protected=True),
            "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH": "mallory/ha-webapp",
        },
        MR_UNSET,
        [("test", "on_success")],
    ),
    "schedule": (
        {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "master"},
        [],
        [("drift:dev", "on_success"), ("drift:preprod", "on_success"), ("drift:prod", "on_success")],
    ),
}


def pipeline(repo: Path, values: dict[str, str], extra: list[str]) -> list[tuple[str, str]]:
    """The jobs of the pipeline GitLab would create for these predefined variables: (name, when), in stage order."""
    result = gitlab_ci_local(repo, "--file", ".gitlab-ci-probe.yml", "--list-json", *variables(values), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = json.loads(result.stdout[result.stdout.index("\n[") :])  # after the warning about overridden variables
    jobs = [(job["name"], job["when"]) for job in listed if job["when"] != "never"]
    if ("zz-workflow-probe", "on_success") not in jobs:
        return []  # workflow:rules start no pipeline
    return [job for job in jobs if job[0] != "zz-workflow-probe"]


@pytest.mark.parametrize("case", MATRIX)
def test_each_event_gets_exactly_its_jobs(ci_repo: CiRepo, case: str) -> None:
    values, extra, expected = MATRIX[case]
    assert pipeline(ci_repo.path, values, extra) == expected


def test_an_app_built_elsewhere_gets_no_build_job(ci_repo: CiRepo, tmp_path: Path) -> None:
    """app.yaml in artifact mode and no app/: a push to master builds the image from the download alone."""
    repo = tmp_path / "artifact-mode"
    shutil.copytree(ci_repo.path, repo, symlinks=True, ignore=shutil.ignore_patterns(".gitlab-ci-local"))
    git(repo, "checkout", "-q", "-f", "master")
    git(repo, "rm", "-q", "-r", "app")
    git(repo, "commit", "-q", "-m", "the app moved to its own project")
    values, extra, expected = MATRIX["push to master"]
    assert pipeline(repo, values, extra) == [job for job in expected if job[0] != "app:build"]


def test_the_build_job_is_the_one_the_shipped_pin_describes() -> None:
    """app:build exists when the pin's folder holds a Go module and leaves what the image job reads."""
    build = load_ci()["app:build"]
    pin = yaml.safe_load((PROJECT_DIR / "app.yaml").read_text())
    assert build["rules"][0]["exists"] == [f"{pin['build']['path']}/go.mod"]
    assert build["artifacts"]["paths"] == [f"dist/{pin['runtime']['file_name']}"]
    assert build["script"] == [f"bash {pin['build']['path']}/build.sh dist/{pin['runtime']['file_name']}"]
    needs = {need["job"]: need for need in load_ci()["image:build"]["needs"]}
    assert needs["app:build"] == {"job": "app:build", "artifacts": True, "optional": True}
    assert needs["test"]["artifacts"] is False, "the image job still waits for the tests"


def test_only_the_deploy_branches_deploy_and_only_prod_waits_for_a_person() -> None:
    deploys = {
        case: [job for job in expected if job[0].startswith("deploy:")] for case, (_, _, expected) in MATRIX.items()
    }
    assert {case for case, jobs in deploys.items() if jobs} == {
        "push to master",
        "push to pre-production",
        "push to production",
        "production run by hand",
    }
    assert all("merge request" not in case for case, jobs in deploys.items() if jobs)
    manual = {job for jobs in deploys.values() for job in jobs if job[1] == "manual"}
    assert manual == {("deploy:prod", "manual")}


# ----------------------------------------------------------------------------------------------------------------------
# One RAM role per environment, each trusted only by its branch's OIDC subject (docs/pipeline.md)


def subject(branch: str, project_path: str = PROJECT_PATH) -> str:
    """The `sub` claim of a GitLab ID token for a job on `branch` (GitLab's default sub format)."""
    return f"project_path:{project_path}:ref_type:branch:ref:{branch}"


def trust_policy(subjects: list[str], provider_arn: str = PROVIDER_ARN, issuer: str = ISSUER) -> dict[str, Any]:
    """The trust policy docs/pipeline.md gives each role: RAM's three OIDC condition keys, StringEquals only."""
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Federated": [provider_arn]},
                "Condition": {
                    "StringEquals": {"oidc:iss": issuer, "oidc:aud": "sts.aliyuncs.com", "oidc:sub": subjects}
                },
            }
        ],
    }


# CI/CD variable -> (role name, the branches whose subject its trust policy admits).
ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ALIBABA_CLOUD_ROLE_ARN_IMAGE": ("ha-webapp-image", ("master",)),
    "ALIBABA_CLOUD_ROLE_ARN_DEV": ("ha-webapp-deploy-dev", ("master",)),
    "ALIBABA_CLOUD_ROLE_ARN_PREPROD": ("ha-webapp-deploy-preprod", ("pre-production",)),
    "ALIBABA_CLOUD_ROLE_ARN_PROD": ("ha-webapp-deploy-prod", ("production",)),
    **{
        f"ALIBABA_CLOUD_READ_ROLE_ARN_{stack.upper()}": (f"ha-webapp-read-{stack}", DEPLOY_BRANCHES) for stack in STACKS
    },
}


def role_arn(variable: str) -> str:
    return f"acs:ram::{ACCOUNT}:role/{ROLES[variable][0]}"


def test_each_stack_map_names_its_own_deploy_and_read_roles() -> None:
    ci = load_ci()
    for stack in STACKS:
        mapped = ci[f".stack:{stack}"]["variables"]
        assert mapped["DEPLOY_ROLE_ARN"] == f"$ALIBABA_CLOUD_ROLE_ARN_{stack.upper()}"
        assert mapped["READ_ROLE_ARN"] == f"$ALIBABA_CLOUD_READ_ROLE_ARN_{stack.upper()}"
        # The deploy role of a stack is trusted by exactly the branch that deploys it.
        assert ROLES[f"ALIBABA_CLOUD_ROLE_ARN_{stack.upper()}"][1] == (mapped["STACK_BRANCH"],)
    for kind, role in (("deploy", "$DEPLOY_ROLE_ARN"), ("preview", "$READ_ROLE_ARN"), ("drift", "$READ_ROLE_ARN")):
        for stack in STACKS:
            assert resolved(ci, f"{kind}:{stack}")["variables"]["PIPELINE_ROLE_ARN"] == role, f"{kind}:{stack}"
    assert resolved(ci, "image:build")["variables"]["PIPELINE_ROLE_ARN"] == "$ALIBABA_CLOUD_ROLE_ARN_IMAGE"


def test_the_trust_policy_in_the_docs_is_the_one_tested() -> None:
    text = (PROJECT_DIR / "docs" / "pipeline.md").read_text()
    block = re.search(r"```json\n(\{.*?\})\n\s*```", text, re.S)
    assert block is not None, "docs/pipeline.md shows no trust policy"
    documented = json.loads(block[1])
    assert documented == trust_policy(
        ["project_path:<group>/ha-webapp:ref_type:branch:ref:<branch>"],
        provider_arn="acs:ram::<account-id>:oidc-provider/gitlab",
        issuer="https://gitlab.com",
    )


# ----------------------------------------------------------------------------------------------------------------------
# Running the jobs with recording stand-ins for pulumi and packer

RECORDED_ENV = (
    "PULUMI_BACKEND_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SESSION_TOKEN",
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "AWS_REQUEST_CHECKSUM_CALCULATION",
    "AWS_RESPONSE_CHECKSUM_VALIDATION",
)

FAKE_PULUMI = """#!{python}
# Records how it was called (argv and the environment the state backend and the provider read) and succeeds.
import json, os, sys
with open(os.environ["FAKE_TOOLS_LOG"], "a") as log:
    env = {{name: os.environ.get(name) for name in {recorded!r}}}
    log.write(json.dumps({{"tool": "pulumi", "argv": sys.argv[1:], "env": env}}) + "\\n")
if sys.argv[1:2] == ["preview"]:
    print("Previewing update (" + sys.argv[-1] + "): recorded by the fake pulumi")
    if os.environ.get("FAKE_PULUMI_PREVIEW_FAILS"):
        print("error: preview failed: a policy violation, as the real CLI would report it")
        sys.exit(1)
if sys.argv[1:2] == ["up"] and os.environ.get("FAKE_PULUMI_UP_FAILS"):
    print("error: the health gate of zone A timed out: 0 of 2 servers healthy")
    sys.exit(255)
"""

FAKE_PACKER = """#!{python}
# Records how it was called, with the variables of its -var-file and the SHA-256 of the artifact they name as Packer
# would upload it; `build` writes the manifest Packer's manifest post-processor would write.
import hashlib, json, os, sys
var_files = [arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("-var-file=")]
variables = {{}}
for name in var_files:
    with open(name) as handle:
        variables.update(json.load(handle))
artifact = variables.get("app_artifact")
uploaded = hashlib.sha256(open(artifact, "rb").read()).hexdigest() if artifact and os.path.isfile(artifact) else None
with open(os.environ["FAKE_TOOLS_LOG"], "a") as log:
    call = {{"tool": "packer", "argv": sys.argv[1:], "env": {{}}, "vars": variables, "artifact_sha256": uploaded}}
    log.write(json.dumps(call) + "\\n")
if sys.argv[1:2] == ["build"]:
    build = {{"name": "app", "builder_type": "alicloud-ecs", "build_time": 1700000000, "files": None,
             "artifact_id": "cn-hangzhou:{image}", "packer_run_uuid": "run-2", "custom_data": None}}
    os.makedirs("packer", exist_ok=True)
    with open("packer/manifest.json", "w") as manifest:
        json.dump({{"builds": [build], "last_run_uuid": "run-2"}}, manifest)
"""


@dataclass
class Runner:
    repo: CiRepo
    env: dict[str, str]
    base_variables: dict[str, str]
    log: Path
    sts: FakeSts

    def run(self, branch: str, values: dict[str, str], *jobs: str) -> list[dict[str, Any]]:
        """Run `jobs` on `branch`'s head with the shell executor; return what pulumi and packer were asked to do."""
        result, calls = self.attempt(branch, values, *jobs)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
        return calls

    def attempt(
        self, branch: str, values: dict[str, str], *args: str
    ) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
        """Like `run`, for a run that may fail: gitlab-ci-local's result and the recorded calls."""
        git(self.repo.path, "checkout", "-q", "-f", branch)
        self.log.write_text("")
        self.sts.requests.clear()
        # The job's ID token, as GitLab would mint it: its subject names the branch the pipeline runs for (in a
        # merge request pipeline, the source branch).
        ref = values.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or values.get("CI_COMMIT_BRANCH", branch)
        token = job_token(iss=ISSUER, aud="sts.aliyuncs.com", sub=subject(ref))
        result = gitlab_ci_local(
            self.repo.path,
            "--force-shell-executor",
            *variables({**self.base_variables, "ALIBABA_CLOUD_OIDC_TOKEN": token, **values}),
            *args,
            env=self.env,
        )
        return result, [json.loads(line) for line in self.log.read_text().splitlines()]

    def roles_assumed(self) -> list[str]:
        return [request["RoleArn"] for request in self.sts.requests]


@pytest.fixture(scope="module")
def runner(ci_repo: CiRepo, s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    tools = tmp_path_factory.mktemp("fake-tools")
    log = tools / "calls.jsonl"
    (tools / "pulumi").write_text(FAKE_PULUMI.format(python=sys.executable, recorded=RECORDED_ENV))
    (tools / "packer").write_text(FAKE_PACKER.format(python=sys.executable, image=FRESH_IMAGE))
    for tool in ("pulumi", "packer"):
        (tools / tool).chmod(0o755)
    # The state bucket with the image catalog: images built on master for commits A and C; dev deployed A then C,
    # preprod deployed A (the records `image_handoff record` writes after each successful deploy).
    s3 = catalog_client(s3_server)
    s3.create_bucket(Bucket=STATE_BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-hangzhou"})
    for name, image, version in (("A", IMAGE_A, "1.0.0"), ("C", IMAGE_C, "1.1.0")):
        sha = ci_repo.commits[name]
        entry = {"commit": sha, "version": version, "images": {"cn-hangzhou": image}, "built_at": "2026-01-01T00:00Z"}
        s3.put_object(Bucket=STATE_BUCKET, Key=f"images/{sha}.json", Body=json.dumps(entry).encode())
    for stack, sequence, name in (("dev", 1, "A"), ("dev", 2, "C"), ("preprod", 1, "A")):
        sha = ci_repo.commits[name]
        key = f"deployments/{stack}/{sequence:08d}.{sha}.{sha}.json"
        s3.put_object(Bucket=STATE_BUCKET, Key=key, Body=json.dumps({"stack": stack, "commit": sha}).encode())

    policies = {
        role_arn(variable): trust_policy([subject(b) for b in branches]) for variable, (_, branches) in ROLES.items()
    }
    fake = FakeSts(trusted_token="", role_arn="", provider_arn=PROVIDER_ARN, roles=policies)
    with serve(fake):
        yield Runner(
            sts=fake,
            repo=ci_repo,
            env={
                "PATH": f"{tools}:{os.environ['PATH']}",
                "HOME": str(tools),
                "FAKE_TOOLS_LOG": str(log),
            },
            base_variables={
                # What GitLab provides: the project's CI/CD variables (the job's OIDC token: see Runner.attempt).
                **{variable: role_arn(variable) for variable in ROLES},
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER_ARN,
                "STATE_BUCKET": STATE_BUCKET,
                "OSS_REGION": "cn-hangzhou",
                # app:build with this machine's Go module cache and nothing else: no test talks to the module proxy.
                **{name: go_env(name) for name in ("GOMODCACHE", "GOCACHE")},
                "GOPROXY": "off",
                "GOTOOLCHAIN": "local",
                # The local stand-ins for STS and OSS, and the test's ready virtualenv (see ci-pulumi-setup.sh).
                "ALIBABA_CLOUD_STS_ENDPOINT": fake.endpoint,
                "ALIBABA_CLOUD_STS_PROTOCOL": "HTTP",
                "OSS_ENDPOINT": s3_server,
                "CI_REUSE_VENV": str(Path(sys.executable).parent.parent),
            },
            log=log,
        )


def go_env(name: str) -> str:
    return subprocess.run(["go", "env", name], capture_output=True, text=True, check=True).stdout.strip()


def kept_bytes(runner: Runner, path: str) -> bytes:
    """A file the last run kept as an artifact (gitlab-ci-local keeps them per job, under a name of its own)."""
    (kept,) = (runner.repo.path / ".gitlab-ci-local" / "artifacts").glob(f"*/{path}")
    return kept.read_bytes()


def kept_artifact(runner: Runner, path: str) -> str:
    return kept_bytes(runner, path).decode()


def catalog_client(s3_server: str) -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "test-key-id")
        patch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-key-secret")
        return oss.client(region="cn-hangzhou", endpoint=s3_server)


def pulumi_calls(calls: list[dict[str, Any]]) -> list[list[str]]:
    return [call["argv"] for call in calls if call["tool"] == "pulumi"]


def assert_backend_and_credentials(calls: list[dict[str, Any]], s3_server: str) -> None:
    for call in calls:
        if call["tool"] != "pulumi":
            continue
        env = call["env"]
        assert env["PULUMI_BACKEND_URL"] == (
            # path-style only because the test's S3 server is on 127.0.0.1 (scripts/ci-pulumi-setup.sh)
            f"s3://{STATE_BUCKET}?region=cn-hangzhou&endpoint={s3_server}&awssdk=v2&use_path_style=true"
        ), env
        # The temporary credentials from the local STS, for the provider and for the state backend alike.
        assert env["ALIBABA_CLOUD_ACCESS_KEY_ID"] == env["AWS_ACCESS_KEY_ID"] == FakeSts.issued_key_id
        assert env["ALIBABA_CLOUD_SECURITY_TOKEN"] == env["AWS_SESSION_TOKEN"] == FakeSts.issued_token
        assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == env["AWS_RESPONSE_CHECKSUM_VALIDATION"] == "when_required"


@pytest.fixture
def deploy_records(runner: Runner, s3_server: str) -> Iterator[Any]:
    """The catalog's deploy records, put back as they were after the test (which may add or delete some)."""
    catalog = catalog_client(s3_server)

    def records() -> dict[str, bytes]:
        listed = catalog.list_objects_v2(Bucket=STATE_BUCKET, Prefix="deployments/").get("Contents", [])
        return {item["Key"]: catalog.get_object(Bucket=STATE_BUCKET, Key=item["Key"])["Body"].read() for item in listed}

    before = records()
    yield catalog
    for key in set(records()) - set(before):
        catalog.delete_object(Bucket=STATE_BUCKET, Key=key)
    for key, body in before.items():
        catalog.put_object(Bucket=STATE_BUCKET, Key=key, Body=body)


def test_a_merge_request_previews_the_target_branchs_stack_and_keeps_the_preview(
    runner: Runner, s3_server: str
) -> None:
    calls = runner.run(
        "master", merge_request("master", "pre-production", protected=True), "preview:preprod", *MR_UNSET
    )
    # The preview shows what merging would deploy: master's head (C) has its own image, which the merge promotes.
    assert pulumi_calls(calls) == [
        ["stack", "select", "--create", "preprod"],
        ["config", "set", "imageId", IMAGE_C, "--stack", "preprod"],
        ["preview", "--diff", "--policy-pack", "policy", "--stack", "preprod"],
    ]
    assert_backend_and_credentials(calls, s3_server)
    preview = kept_artifact(runner, "preview.txt")
    assert "Previewing update (preprod)" in preview
    # Which image, and why: the one built for C, which dev deployed successfully.
    assert f"promoted image {IMAGE_C} " in preview and "succeeded in dev (deploy #2)" in preview


def test_the_preview_job_runs_the_real_cli_with_the_policy_pack_against_the_state_bucket(
    runner: Runner, tmp_path: Path
) -> None:
    """The preview job as the pipeline runs it, with the real CLI, host and providers (toolchain/) instead of the
    recording stand-in: the stack in the S3 backend (moto), the temporary credentials from the local STS."""
    tool_bin = toolchain_bin()
    venv_bin = Path(sys.executable).parent
    system_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != str(runner.log.parent))
    env = {
        **{k: v for k, v in runner.env.items() if k != "PATH"},
        **PROVIDER_OFFLINE,
        "PATH": os.pathsep.join([str(tool_bin), str(venv_bin), system_path]),
        "PULUMI_HOME": str(tmp_path / "pulumi-home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The stop-gap language host ignores Pulumi.yaml's virtualenv option (toolchain/README.md).
        "PULUMI_PYTHON_CMD": sys.executable,
    }
    values = {**merge_request("master", "pre-production", protected=True), "PULUMI_CONFIG_PASSPHRASE": "job-passphrase"}
    # A state bucket of its own, on a server of its own: moto files a bucket created through a V2-signed request (as
    # pipeline.oss signs for OSS) under another partition than the one the CLI's V4-signed requests for cn-hangzhou
    # reach, and then recurses without end; so this bucket is created V4-signed, and the shared one stays untouched.
    shared = catalog_client(runner.base_variables["OSS_ENDPOINT"])
    with local_state_bucket(STATE_BUCKET) as endpoint:
        own = catalog_client(endpoint)
        for item in shared.list_objects_v2(Bucket=STATE_BUCKET).get("Contents", []):
            body = shared.get_object(Bucket=STATE_BUCKET, Key=item["Key"])["Body"].read()
            own.put_object(Bucket=STATE_BUCKET, Key=item["Key"], Body=body)
        real = Runner(runner.repo, env, {**runner.base_variables, "OSS_ENDPOINT": endpoint}, runner.log, runner.sts)
        result, _ = real.attempt("master", values, "preview:preprod", *MR_UNSET)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        preview = kept_artifact(runner, "preview.txt")
        assert re.search(r"\+ \d+ to create", preview), preview[-3000:]
        assert re.search(r"Policy Packs run:\s*\n.*\n\s*ha-webapp\|local\|policy\s", preview), preview[-3000:]
        # The stack lives in the state bucket, where `stack select --create` put it.
        listed = own.list_objects_v2(Bucket=STATE_BUCKET, Prefix=".pulumi/stacks/")
        assert any(item["Key"].endswith("preprod.json") for item in listed.get("Contents", [])), listed


def test_the_preview_says_why_it_skips_an_image_or_has_none(runner: Runner, deploy_records: Any) -> None:
    values = merge_request("master", "pre-production", protected=True)
    c = runner.repo.commits["C"]
    deploy_records.delete_object(Bucket=STATE_BUCKET, Key=f"deployments/dev/00000002.{c}.{c}.json")
    calls = runner.run("master", values, "preview:preprod", *MR_UNSET)
    assert ["config", "set", "imageId", IMAGE_A, "--stack", "preprod"] in pulumi_calls(calls)
    assert f"skipped newer builds that never succeeded in dev: {c}" in kept_artifact(runner, "preview.txt")

    a = runner.repo.commits["A"]
    deploy_records.delete_object(Bucket=STATE_BUCKET, Key=f"deployments/dev/00000001.{a}.{a}.json")
    result, calls = runner.attempt("master", values, "preview:preprod", *MR_UNSET)
    assert result.returncode != 0
    assert not [argv for argv in pulumi_calls(calls) if argv[0] == "preview"]
    assert "no image among the ancestors of HEAD succeeded in dev" in kept_artifact(runner, "preview.txt")


def test_a_failing_preview_fails_its_job_and_still_keeps_the_output(runner: Runner) -> None:
    # The preview is piped into tee for the artifact: the job must fail with pulumi, not succeed with tee.
    values = {**merge_request("master", "pre-production", protected=True), "FAKE_PULUMI_PREVIEW_FAILS": "1"}
    result, _ = runner.attempt("master", values, "preview:preprod", *MR_UNSET)
    assert result.returncode != 0, result.stdout[-3000:]
    assert "a policy violation" in kept_artifact(runner, "preview.txt")


def test_a_schedule_checks_every_stack_for_drift(runner: Runner, s3_server: str) -> None:
    calls = runner.run(
        "master",
        {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "master"},
        "drift:dev",
        "drift:preprod",
        "drift:prod",
    )
    assert sorted(pulumi_calls(calls)) == [
        [
            "refresh",
            "--preview-only",
            "--expect-no-changes",
            "--stack",
            stack,
            "--exclude",
            f"urn:pulumi:{stack}::ha-webapp::pulumi:pulumi:StackReference::*",
        ]
        for stack in ("dev", "preprod", "prod")
    ]
    assert_backend_and_credentials(calls, s3_server)


def test_a_job_without_its_oidc_role_fails_before_pulumi_runs(runner: Runner) -> None:
    result, calls = runner.attempt(
        "master", {"ALIBABA_CLOUD_READ_ROLE_ARN_DEV": "", "CI_PIPELINE_SOURCE": "schedule"}, "drift:dev"
    )
    assert result.returncode != 0
    assert "PIPELINE_ROLE_ARN is not set" in result.stdout + result.stderr
    assert calls == []


# Each job assumes the role of its own stack (and the image job its own): (branch, event, job, role variable).
JOB_ROLES = {
    "deploy:dev": ("master", {**PUSH, "CI_COMMIT_BRANCH": "master"}, [], "ALIBABA_CLOUD_ROLE_ARN_DEV"),
    "deploy:preprod": (
        "pre-production",
        {**PUSH, "CI_COMMIT_BRANCH": "pre-production"},
        [],
        "ALIBABA_CLOUD_ROLE_ARN_PREPROD",
    ),
    "deploy:prod": (
        "production",
        {**PUSH, "CI_COMMIT_BRANCH": "production"},
        ["--manual", "deploy:prod"],
        "ALIBABA_CLOUD_ROLE_ARN_PROD",
    ),
    "preview:prod": (
        "pre-production",
        merge_request("pre-production", "production", protected=True),
        MR_UNSET,
        "ALIBABA_CLOUD_READ_ROLE_ARN_PROD",
    ),
    "drift:prod": (
        "master",
        {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "master"},
        [],
        "ALIBABA_CLOUD_READ_ROLE_ARN_PROD",
    ),
    "image:build": ("master", {**PUSH, "CI_COMMIT_BRANCH": "master"}, [], "ALIBABA_CLOUD_ROLE_ARN_IMAGE"),
}


@pytest.mark.parametrize("job", JOB_ROLES)
def test_each_job_assumes_the_role_of_its_stack(runner: Runner, deploy_records: Any, job: str) -> None:
    branch, values, extra, variable = JOB_ROLES[job]
    runner.run(branch, values, job, *extra)
    assert runner.roles_assumed() == [role_arn(variable)]


def test_a_deploy_roles_trust_admits_only_its_branch(runner: Runner) -> None:
    # deploy:prod asking for the prod role with the token of a job on master (say, a master pipeline edited to run
    # it), or of a fork's merge request run in this project (whose project_path is the fork's since GitLab 18.2.2).
    production = {**PUSH, "CI_COMMIT_BRANCH": "production"}
    for token in (
        job_token(iss=ISSUER, aud="sts.aliyuncs.com", sub=subject("master")),
        job_token(iss=ISSUER, aud="sts.aliyuncs.com", sub=subject("production", project_path="mallory/ha-webapp")),
    ):
        values = {**production, "ALIBABA_CLOUD_OIDC_TOKEN": token}
        result, calls = runner.attempt("production", values, "deploy:prod", "--manual", "deploy:prod")
        assert result.returncode != 0
        assert f"STS refused AssumeRoleWithOIDC for {role_arn('ALIBABA_CLOUD_ROLE_ARN_PROD')}" in result.stdout
        assert "NoPermission.AssumeRole" in result.stdout
        assert calls == []


def test_a_leftover_single_role_variable_is_refused(runner: Runner) -> None:
    # A project-level variable outranks the job's: the old one role of every stack would win quietly.
    values = {"CI_PIPELINE_SOURCE": "schedule", "ALIBABA_CLOUD_ROLE_ARN": role_arn("ALIBABA_CLOUD_ROLE_ARN_PROD")}
    result, calls = runner.attempt("master", values, "drift:dev")
    assert result.returncode != 0
    assert "ALIBABA_CLOUD_ROLE_ARN is set: that is the one role of every stack" in result.stdout
    assert calls == [] and runner.roles_assumed() == []


DEPLOYS = {
    # branch: (job, stack, the image promoted to it: built on master for the newest ancestor that has one)
    "master": ("deploy:dev", "dev", IMAGE_C),
    "pre-production": ("deploy:preprod", "preprod", IMAGE_A),
    "production": ("deploy:prod", "prod", IMAGE_A),
}


@pytest.mark.parametrize("branch", DEPLOYS)
def test_each_deploy_branch_deploys_exactly_its_stack_with_the_promoted_image(
    runner: Runner, s3_server: str, branch: str, deploy_records: Any
) -> None:
    job, stack, image = DEPLOYS[branch]
    extra = ["--manual", job] if job == "deploy:prod" else []
    before = set(record_keys(deploy_records))
    calls = runner.run(branch, {**PUSH, "CI_COMMIT_BRANCH": branch}, job, *extra)
    argvs = pulumi_calls(calls)
    assert argvs[0] == ["stack", "select", "--create", stack]
    assert argvs[-1] == ["up", "--yes", "--policy-pack", "policy", "--stack", stack]
    config_sets = [a for a in argvs if a[:2] == ["config", "set"]]
    assert len(config_sets) == 1, argvs
    assert "imageId" in config_sets[0][2] and image in config_sets[0], config_sets
    assert config_sets[0][config_sets[0].index("--stack") + 1] == stack
    # Nothing touches another stack.
    assert all(a[a.index("--stack") + 1] == stack for a in argvs if "--stack" in a)
    assert_backend_and_credentials(calls, s3_server)
    # The success is recorded after `pulumi up`, with the image it deployed: what lets the next stack take that image.
    head = git(runner.repo.path, "rev-parse", branch)
    (recorded,) = set(record_keys(deploy_records)) - before
    assert recorded.startswith(f"deployments/{stack}/") and f".{head}." in recorded
    entry = json.loads(deploy_records.get_object(Bucket=STATE_BUCKET, Key=recorded)["Body"].read())
    assert (entry["commit"], entry["image"], entry["rollback"]) == (head, image, False)


def record_keys(catalog: Any) -> list[str]:
    listed = catalog.list_objects_v2(Bucket=STATE_BUCKET, Prefix="deployments/").get("Contents", [])
    return [item["Key"] for item in listed]


def test_a_failed_deploy_records_nothing(runner: Runner, deploy_records: Any) -> None:
    values = {**PUSH, "CI_COMMIT_BRANCH": "pre-production", "FAKE_PULUMI_UP_FAILS": "1"}
    before = record_keys(deploy_records)
    result, calls = runner.attempt("pre-production", values, "deploy:preprod")
    assert result.returncode != 0
    assert ["up", "--yes", "--policy-pack", "policy", "--stack", "preprod"] in pulumi_calls(calls)
    assert record_keys(deploy_records) == before


def test_an_older_pipelines_deploy_is_refused_unless_rolled_back_on_purpose(
    runner: Runner, deploy_records: Any
) -> None:
    # dev runs C (deploy #2); the deploy job of an older pipeline, for B, starts late.
    b = runner.repo.commits["B"]
    git(runner.repo.path, "branch", "-f", "late-pipeline", b)
    values = {**PUSH, "CI_COMMIT_BRANCH": "master"}
    result, calls = runner.attempt("late-pipeline", values, "deploy:dev")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"refusing to deploy {b} to stack dev: it does not descend from {runner.repo.commits['C']}" in output
    assert not [argv for argv in pulumi_calls(calls) if argv[0] == "up"]

    # A person rolls dev back to B on purpose: the same job with ROLLBACK_TO naming B.
    calls = runner.run("late-pipeline", {**values, "ROLLBACK_TO": b}, "deploy:dev")
    assert ["up", "--yes", "--policy-pack", "policy", "--stack", "dev"] in pulumi_calls(calls)
    key = f"deployments/dev/00000003.{b}.{runner.repo.commits['A']}.json"
    entry = json.loads(deploy_records.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read())
    assert (entry["commit"], entry["image"], entry["rollback"]) == (b, IMAGE_A, True)


def test_app_build_hands_its_binary_to_the_image_job_which_builds_once_per_pin(runner: Runner, s3_server: str) -> None:
    """A push to master: app:build really builds app/ (Go, with this machine's module cache), image:build takes its
    binary through `needs`, checks it, gives Packer the pin's variables and records the image under the commit and
    the pin's key; run again without the commit's entry, it finds the key and builds nothing."""
    head = runner.repo.commits["C"]
    key = f"images/{head}.json"
    catalog = catalog_client(s3_server)
    recorded = catalog.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read()
    catalog.delete_object(Bucket=STATE_BUCKET, Key=key)  # as before master's pipeline built C
    pin = yaml.safe_load((runner.repo.path / "app.yaml").read_text())
    try:
        calls = runner.run("master", {**PUSH, "CI_COMMIT_BRANCH": "master"}, "app:build", "image:build")
        built = hashlib.sha256(kept_bytes(runner, "dist/app")).hexdigest()
        packer = [call for call in calls if call["tool"] == "packer"]
        assert [call["argv"][0] for call in packer] == ["init", "build"]
        assert packer[1]["argv"][-1] == "packer/"
        # What Packer uploads is app:build's binary, byte for byte, with the pin's runtime.
        assert packer[1]["artifact_sha256"] == built
        variables = packer[1]["vars"]
        assert variables["git_commit"] == head and variables["app_version"] == head[:8]
        runtime = pin["runtime"]
        assert (variables["app_file_name"], variables["start_command"], variables["migrate_command"]) == (
            runtime["file_name"],
            runtime["start_command"],
            runtime["migrate_command"],
        )
        assert variables["runtime_packages"] == runtime["packages"]
        entry = json.loads(catalog.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read())
        assert entry["commit"] == head and entry["images"] == {"cn-hangzhou": FRESH_IMAGE}
        assert (entry["pin"]["source"], entry["pin"]["sha256"]) == ("build", built)
        pin_key = entry["pin"]["key"]
        assert catalog.get_object(Bucket=STATE_BUCKET, Key=f"images/pins/{pin_key}.json")
        assert FRESH_IMAGE in kept_artifact(runner, "packer/manifest.json")

        # The same pin and template again (here: the commit's entry gone, as for a new commit that changes neither):
        # app:build gives the same bytes, and the image job records the known image without running Packer.
        catalog.delete_object(Bucket=STATE_BUCKET, Key=key)
        calls = runner.run("master", {**PUSH, "CI_COMMIT_BRANCH": "master"}, "app:build", "image:build")
        assert hashlib.sha256(kept_bytes(runner, "dist/app")).hexdigest() == built, "app/build.sh is not reproducible"
        assert [call for call in calls if call["tool"] == "packer"] == []
        again = json.loads(catalog.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read())
        assert again["images"] == {"cn-hangzhou": FRESH_IMAGE} and again["pin"]["key"] == pin_key
    finally:
        catalog.put_object(Bucket=STATE_BUCKET, Key=key, Body=recorded)
        for item in catalog.list_objects_v2(Bucket=STATE_BUCKET, Prefix="images/pins/").get("Contents", []):
            catalog.delete_object(Bucket=STATE_BUCKET, Key=item["Key"])


def test_a_failing_app_build_builds_no_image(runner: Runner, s3_server: str, tmp_path: Path) -> None:
    """The app's tests fail: app:build fails, and image:build, which `needs` it, never runs: no Packer, no catalog
    entry (so nothing can be deployed from this commit)."""
    repo = tmp_path / "failing-build"
    shutil.copytree(runner.repo.path, repo, symlinks=True, ignore=shutil.ignore_patterns(".gitlab-ci-local"))
    git(repo, "checkout", "-q", "-f", "master")
    (repo / "app" / "broken_test.go").write_text(
        'package main\n\nimport "testing"\n\nfunc TestBroken(t *testing.T) { t.Fatal("a failing app test") }\n'
    )
    git(repo, "add", "app/broken_test.go")
    git(repo, "commit", "-q", "-m", "a change whose tests fail")
    head = git(repo, "rev-parse", "HEAD")
    failing = Runner(CiRepo(repo, {}), runner.env, runner.base_variables, runner.log, runner.sts)
    result, calls = failing.attempt("master", {**PUSH, "CI_COMMIT_BRANCH": "master"}, "app:build", "image:build")
    assert result.returncode != 0
    assert "a failing app test" in result.stdout + result.stderr
    assert [call for call in calls if call["tool"] in ("packer", "pulumi")] == []
    listed = catalog_client(s3_server).list_objects_v2(Bucket=STATE_BUCKET, Prefix=f"images/{head}")
    assert listed.get("KeyCount", 0) == 0


@pytest.fixture
def servers() -> Iterator[tuple[Served, Served]]:
    with registry_servers() as started:
        yield started


def test_an_app_built_elsewhere_is_downloaded_with_the_job_token_and_checked(
    runner: Runner, s3_server: str, servers: tuple[Served, Served], tmp_path: Path
) -> None:
    """Artifact mode: no app/, app.yaml pins a download (here from a local server); the image job sends its job token,
    gives Packer the downloaded file, and refuses one whose SHA-256 is not the pin's, before Packer runs."""
    registry, _ = servers
    jar = b"PK\x03\x04 the app's jar"
    registry.routes["/app.jar"] = (200, jar, {})
    repo = tmp_path / "artifact-mode"
    shutil.copytree(runner.repo.path, repo, symlinks=True, ignore=shutil.ignore_patterns(".gitlab-ci-local"))
    git(repo, "checkout", "-q", "-f", "master")
    git(repo, "rm", "-q", "-r", "app")
    pin = yaml.safe_load((repo / "app.yaml").read_text())
    pin["artifact"] = {"version": "1.4.2", "url": f"{registry.url}/app.jar", "sha256": hashlib.sha256(jar).hexdigest()}
    del pin["build"]
    (repo / "app.yaml").write_text(yaml.safe_dump(pin))
    git(repo, "commit", "-q", "-am", "the app moved to its own project")
    head = git(repo, "rev-parse", "HEAD")
    elsewhere = Runner(CiRepo(repo, {}), runner.env, runner.base_variables, runner.log, runner.sts)
    values = {**PUSH, "CI_COMMIT_BRANCH": "master", "CI_JOB_TOKEN": "job-token-of-the-image-job"}
    catalog = catalog_client(s3_server)
    try:
        calls = elsewhere.run("master", values, "image:build")
        assert registry.requests[0][1].get("job-token") == "job-token-of-the-image-job"
        (build,) = [call for call in calls if call["tool"] == "packer" and call["argv"][0] == "build"]
        assert build["artifact_sha256"] == hashlib.sha256(jar).hexdigest()
        assert build["vars"]["app_version"] == "1.4.2"
        entry = json.loads(catalog.get_object(Bucket=STATE_BUCKET, Key=f"images/{head}.json")["Body"].read())
        assert entry["pin"]["source"] == "artifact" and entry["version"] == "1.4.2"

        # The same pin with the file changed behind it: refused before Packer, saying expected and got.
        catalog.delete_object(Bucket=STATE_BUCKET, Key=f"images/{head}.json")
        for item in catalog.list_objects_v2(Bucket=STATE_BUCKET, Prefix="images/pins/").get("Contents", []):
            catalog.delete_object(Bucket=STATE_BUCKET, Key=item["Key"])
        registry.routes["/app.jar"] = (200, jar + b" changed", {})
        result, calls = elsewhere.attempt("master", values, "image:build")
        assert result.returncode != 0
        assert f"has SHA-256 {hashlib.sha256(jar + b' changed').hexdigest()}, expected" in result.stdout
        assert [call for call in calls if call["tool"] == "packer"] == []
    finally:
        for prefix in (f"images/{head}.json", "images/pins/"):
            for item in catalog.list_objects_v2(Bucket=STATE_BUCKET, Prefix=prefix).get("Contents", []):
                catalog.delete_object(Bucket=STATE_BUCKET, Key=item["Key"])


def test_a_rerun_of_the_image_job_builds_nothing_for_a_commit_already_built(runner: Runner, s3_server: str) -> None:
    # An image is built once per commit: a retried job or a re-run pipeline keeps the one preprod may already run.
    key = f"images/{runner.repo.commits['C']}.json"
    catalog = catalog_client(s3_server)
    before = catalog.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read()
    calls = runner.run("master", {**PUSH, "CI_COMMIT_BRANCH": "master"}, "image:build")
    assert [call for call in calls if call["tool"] == "packer"] == []
    assert catalog.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read() == before


def test_the_image_job_stops_when_it_cannot_read_the_catalog(runner: Runner) -> None:
    # "Cannot tell whether this commit is built" must not build: publish would fail after a paid build at best.
    values = {**PUSH, "CI_COMMIT_BRANCH": "master", "STATE_BUCKET": "ha-webapp-no-such-bucket"}
    result, calls = runner.attempt("master", values, "image:build")
    assert result.returncode != 0
    assert "NoSuchBucket" in result.stdout + result.stderr
    assert [call for call in calls if call["tool"] == "packer"] == []


# ----------------------------------------------------------------------------------------------------------------------
# Deploys are never cancelled half-way


def resolved(ci: dict[str, Any], name: str) -> dict[str, Any]:
    """A job with its `extends` applied as GitLab does: hashes merged in order, the job's own keys last."""
    job = ci[name]
    parents = job.get("extends", [])
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged = _deep_merge(merged, resolved(ci, parent))
    return _deep_merge(merged, {k: v for k, v in job.items() if k != "extends"})


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def deploy_problems(ci: dict[str, Any]) -> list[str]:
    """Deploy jobs a newer pipeline could cancel half-way through `pulumi up`, or that could run two at once."""
    problems = []
    for name in [n for n in ci if n.startswith("deploy:")]:
        job = resolved(ci, name)
        if job.get("interruptible") is not False:
            problems.append(f"{name}: interruptible must be false (got {job.get('interruptible')!r})")
        if not job.get("resource_group"):
            problems.append(f"{name}: needs a resource_group so that two deploys of a stack never overlap")
    return problems


def test_no_deploy_can_be_interrupted_or_overlap() -> None:
    ci = load_ci()
    assert [n for n in ci if n.startswith("deploy:")] == ["deploy:dev", "deploy:preprod", "deploy:prod"]
    assert deploy_problems(ci) == []


@pytest.mark.parametrize(
    ("job", "change"),
    [
        ("deploy:dev", {"interruptible": True}),
        ("deploy:prod", {"interruptible": True}),
        (".deploy", {"interruptible": True}),
        ("deploy:preprod", {"resource_group": ""}),
    ],
    ids=["dev-interruptible", "prod-interruptible", "template-interruptible", "preprod-without-resource-group"],
)
def test_the_deploy_check_refuses_a_cancellable_deploy(job: str, change: dict[str, Any]) -> None:
    ci = load_ci()
    ci[job] = {**ci[job], **change}
    assert deploy_problems(ci), f"{job} with {change} was not refused"
