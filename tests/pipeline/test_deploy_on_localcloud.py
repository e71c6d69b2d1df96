"""The pipeline's deploy and drift jobs for real: gitlab-ci-local runs them with the shell executor, the real Pulumi
CLI, language host, providers and policy pack (toolchain/), the stack's state in the S3 backend on moto, credentials
from the local STS, against the local cloud (localcloud/): its provider first on PATH, its endpoints in the jobs'
variables. Only the OIDC exchange (a local STS), Packer (the catalog is written by the test) and GitLab itself
(gitlab-ci-local) are stand-ins.

One cloud, one state bucket and one test repository for the module, and the tests take turns on them in file order:
a push to master deploys dev, a merge to pre-production deploys preprod with master's image, a schedule's drift jobs
pass and then catch a change made by hand, and a deploy whose health gate fails records nothing. Assertions are on the
local cloud's inventory, timeline and health, the state and the deploy records (and on which jobs pass), not on log
text, except that the failing drift check must name the rule changed by hand.

Seen failing, each break applied to .gitlab-ci.yml or this module once: with a `record` step before `pulumi up` in
.deploy, the failed deploy's test fails (a record appears); with the stack file checked out again between `resolve`
and `pulumi up`, dev's servers run the stack file's image and the first test fails; with the drift job's
--expect-no-changes dropped, drift:dev passes on the tampered rule; with the local cloud's environment left out of the
job variables, its provider plugin cannot start and deploy:dev fails; with `resolve` listing ancestors by date again
(no --topo-order), preprod gets A's image. The first real runs found that the policy pack refused every `pulumi up`,
and that ordering (docs/pipeline.md, "What the tests run for real").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localcloud import LocalCloud, bin_dir, serve_ecs, serve_slb
from localcloud.health import HEALTHY
from plan.offline import PROJECT_DIR
from tests.conftest import local_state_bucket
from tests.fakes.sts import FakeSts, serve
from tests.pipeline.test_gitlab_ci import (
    GITLAB_CI_LOCAL,
    PROVIDER_ARN,
    PUSH,
    ROLES,
    STATE_BUCKET,
    CiRepo,
    Runner,
    catalog_client,
    git,
    record_keys,
    role_arn,
    subject,
    trust_policy,
)
from tests.project_files import project_files
from tests.pulumi_cli import PROVIDER_OFFLINE, toolchain_bin

SERVER = "alicloud:ecs/instance:Instance"
RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
HTTPS_PORT = 443
ZONE_A = "cn-hangzhou-h"
SERVERS_PER_ZONE = {"dev": 1, "preprod": 1}
# Images master's image job built (written into the catalog by the test, as `image_handoff publish` would).
IMAGE_A = "m-bp1realaaaaaaaaaaaaa"
IMAGE_B = "m-bp1realbbbbbbbbbbbbb"
BAD_IMAGE = "m-bp1realbad000000000c"
PASSPHRASE = "job-passphrase"  # pragma: allowlist secret
# The gate of a bad image fails after this (the settings' minimum) instead of the default ten minutes.
GATE_TIMEOUT = 60
SCHEDULE = {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "master"}


def stack_of(record: dict[str, Any]) -> str:
    return str(record.get("urn", "")).split("::")[0].removeprefix("urn:pulumi:")


@dataclass
class Deployment:
    """What the module's tests share: the runner of real jobs, the cloud and the state bucket."""

    runner: Runner
    cloud: LocalCloud
    bucket: Any  # a boto3 S3 client of the state bucket's server

    @property
    def repo(self) -> Path:
        return self.runner.repo.path

    def checkpoint(self, stack: str) -> dict[str, Any]:
        """The stack's latest deployment as the S3 backend keeps it (.pulumi/stacks/<project>/<stack>.json)."""
        body = self.bucket.get_object(Bucket=STATE_BUCKET, Key=f".pulumi/stacks/ha-webapp/{stack}.json")["Body"]
        latest: dict[str, Any] = json.loads(body.read())["checkpoint"]["latest"]
        return latest

    def state_resources(self, stack: str) -> set[tuple[str, str]]:
        return {(r["type"], r["id"]) for r in self.checkpoint(stack)["resources"] if r["type"].startswith("alicloud:")}

    def outputs(self, stack: str) -> dict[str, Any]:
        resources = self.checkpoint(stack)["resources"]
        found: dict[str, Any] = next(r["outputs"] for r in resources if r["type"] == "pulumi:pulumi:Stack")
        return found

    def inventory(self, stack: str) -> set[tuple[str, str]]:
        return {(r["type"], r["id"]) for r in self.cloud.inventory() if stack_of(r) == stack}

    def servers(self, stack: str) -> list[dict[str, Any]]:
        return [r for r in self.cloud.inventory() if r["type"] == SERVER and stack_of(r) == stack]

    def records(self, stack: str) -> list[dict[str, Any]]:
        keys = [key for key in record_keys(self.bucket) if key.startswith(f"deployments/{stack}/")]
        return [json.loads(self.bucket.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read()) for key in keys]

    def publish(self, commit: str, image: str, version: str) -> None:
        """The catalog entry master's image job writes for a commit (pipeline/image_handoff.py, `publish`)."""
        entry = {
            "commit": commit,
            "version": version,
            "images": {"cn-hangzhou": image},
            "built_at": "2026-01-01T00:00Z",
        }
        self.bucket.put_object(Bucket=STATE_BUCKET, Key=f"images/{commit}.json", Body=json.dumps(entry).encode())

    def job(self, branch: str, values: dict[str, str], job: str) -> subprocess.CompletedProcess[str]:
        result, _ = self.runner.attempt(branch, values, job)
        return result


def failed(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout[-8000:] + result.stderr[-3000:]


def with_short_gate(text: str) -> str:
    """A stack file whose health gates give up after GATE_TIMEOUT seconds."""
    marker = "  ha-webapp:app:\n"
    assert marker in text, "the stack file no longer has an app: block to add the gate timeout to"
    return text.replace(marker, f"{marker}    healthGateTimeoutSeconds: {GATE_TIMEOUT}\n")


@pytest.fixture(scope="module")
def ci_repo(tmp_path_factory: pytest.TempPathFactory) -> CiRepo:
    """The project as a git repository: master at A-B (an image built for each), pre-production and production at A.

    A and B carry one commit date, as two commits pushed within a second do: the order of the history must come from
    the history itself (image_handoff resolve once listed A, the older build, first)."""
    if not GITLAB_CI_LOCAL.exists():
        pytest.fail("gitlab-ci-local is not installed: run `make setup` (npm ci installs it from package-lock.json)")
    repo = tmp_path_factory.mktemp("deploy-repo")
    for name in project_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_DIR / name, repo / name)
    for stack in SERVERS_PER_ZONE:
        stack_file = repo / f"Pulumi.{stack}.yaml"
        stack_file.write_text(with_short_gate(stack_file.read_text()))
    git(repo, "init", "-q", "-b", "master")
    git(repo, "remote", "add", "origin", "git@gitlab.example.com:team/ha-webapp.git")
    git(repo, "add", "-A")
    same_second = {**os.environ, "GIT_AUTHOR_DATE": "@1767225600 +0000", "GIT_COMMITTER_DATE": "@1767225600 +0000"}
    for message in ("A: first release", "B: the next release"):
        subprocess.run(
            ["git", "-c", "user.name=CI Test", "-c", "user.email=ci@example.com", "commit", "-q", "--allow-empty",
             "-m", message],
            cwd=repo, env=same_second, check=True,
        )  # fmt: skip
    commits = {"A": git(repo, "rev-parse", "HEAD~1"), "B": git(repo, "rev-parse", "HEAD")}
    git(repo, "branch", "pre-production", commits["A"])
    git(repo, "branch", "production", commits["A"])
    return CiRepo(repo, commits)


@pytest.fixture(scope="module")
def deployment(ci_repo: CiRepo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    cloud = LocalCloud(tmp_path_factory.mktemp("deploy-cloud") / "cloud").init()
    tool_bin = toolchain_bin()
    keys = cloud.store.snapshot()["credentials"]
    # The STS hands out the local cloud's keys: the provider, the health gate and the state backend all get them from
    # the OIDC exchange, as in a real job, and the cloud's SLB API checks the gate's signature with them.
    sts = FakeSts(
        trusted_token="",
        role_arn="",
        provider_arn=PROVIDER_ARN,
        roles={
            role_arn(variable): trust_policy([subject(b) for b in branches])
            for variable, (_, branches) in ROLES.items()
        },
        issued_key_id=keys["accessKeyId"],
        issued_secret=keys["accessKeySecret"],
    )
    home = tmp_path_factory.mktemp("deploy-home")
    env = {
        "HOME": str(home),
        **PROVIDER_OFFLINE,
        # The local cloud's provider first (it starts the real one, named in the job's variables, for checks and
        # diffs), then the real CLI and plugins, then the test's virtualenv.
        "PATH": os.pathsep.join([str(bin_dir()), str(tool_bin), str(Path(sys.executable).parent), os.environ["PATH"]]),
        "PULUMI_HOME": str(home / "pulumi-home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The stop-gap language host ignores Pulumi.yaml's virtualenv option (toolchain/README.md).
        "PULUMI_PYTHON_CMD": sys.executable,
    }
    # A state bucket created V4-signed on a server of its own: see the real-CLI preview test in test_gitlab_ci.py.
    with (
        local_state_bucket(STATE_BUCKET) as endpoint,
        serve(sts),
        serve_slb(cloud) as slb_endpoint,
        serve_ecs(cloud) as ecs_endpoint,
    ):
        # The local cloud's environment as the lifecycle tests get it (LocalCloud.env), as the project's CI/CD
        # variables: whatever endpoint the cloud adds later reaches the jobs too. Its keys are left out: the jobs'
        # credentials come from the OIDC exchange only.
        cloud_variables = {
            name: value
            for name, value in cloud.env(slb_endpoint, str(tool_bin / "pulumi-resource-alicloud"), ecs_endpoint).items()
            if name not in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        }
        log = home / "no-fake-tools.jsonl"  # Runner reads the fake tools' log; none runs here, so it stays empty
        log.write_text("")
        runner = Runner(
            repo=ci_repo,
            env=env,
            base_variables={
                **{variable: role_arn(variable) for variable in ROLES},
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER_ARN,
                "STATE_BUCKET": STATE_BUCKET,
                "OSS_REGION": "cn-hangzhou",
                "ALIBABA_CLOUD_STS_ENDPOINT": sts.endpoint,
                "ALIBABA_CLOUD_STS_PROTOCOL": "HTTP",
                "OSS_ENDPOINT": endpoint,
                "CI_REUSE_VENV": str(Path(sys.executable).parent.parent),
                # The protected variable of each environment in GitLab.
                "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
                **cloud_variables,
            },
            log=log,
            sts=sts,
        )
        deployment = Deployment(runner, cloud, catalog_client(endpoint))
        deployment.publish(ci_repo.commits["A"], IMAGE_A, "1.0.0")
        deployment.publish(ci_repo.commits["B"], IMAGE_B, "1.1.0")
        # dev ran A in an earlier pipeline (the record its deploy job wrote): preprod may take A or B, and must take B.
        a = ci_repo.commits["A"]
        deployment.bucket.put_object(
            Bucket=STATE_BUCKET,
            Key=f"deployments/dev/00000001.{a}.{a}.json",
            Body=json.dumps({"stack": "dev", "sequence": 1, "commit": a, "image": IMAGE_A, "image_commit": a}).encode(),
        )
        yield deployment


def assert_deployed(deployment: Deployment, stack: str, image: str) -> None:
    """The cloud holds the stack as its state says, every server from `image` and healthy behind the SLB."""
    assert deployment.inventory(stack) == deployment.state_resources(stack), (
        f"{stack}: the cloud is what the state says"
    )
    servers = deployment.servers(stack)
    assert len(servers) == 2 * SERVERS_PER_ZONE[stack], servers
    assert {s["inputs"]["imageId"] for s in servers} == {image}, f"{stack}: servers not built from {image}"
    health = deployment.cloud.health(deployment.outputs(stack)["slb_id"], HTTPS_PORT)
    assert health == {s["id"]: HEALTHY for s in servers}, health


def test_a_push_to_master_deploys_dev_with_the_image_built_for_the_commit_and_records_it(
    deployment: Deployment,
) -> None:
    b = deployment.runner.repo.commits["B"]
    result = deployment.job("master", {**PUSH, "CI_COMMIT_BRANCH": "master"}, "deploy:dev")
    assert result.returncode == 0, failed(result)
    assert_deployed(deployment, "dev", IMAGE_B)
    # Recorded after `pulumi up`, with the image it deployed: what preprod may take.
    records = deployment.records("dev")
    assert [r["sequence"] for r in records] == [1, 2], records
    recorded = records[-1]
    assert (recorded["commit"], recorded["image"], recorded["image_commit"]) == (b, IMAGE_B, b)
    assert deployment.records("preprod") == []


def test_a_merge_to_pre_production_deploys_preprod_with_the_image_that_succeeded_in_dev(
    deployment: Deployment,
) -> None:
    repo, b = deployment.repo, deployment.runner.repo.commits["B"]
    git(repo, "checkout", "-q", "-f", "pre-production")  # -f: a job's `pulumi config set` leaves a stack file edited
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'master' into 'pre-production'", "master")
    merge = git(repo, "rev-parse", "HEAD")
    committed = git(repo, "show", "pre-production:Pulumi.preprod.yaml")
    assert IMAGE_B not in committed, "the stack file must name another image for this test to mean anything"

    result = deployment.job("pre-production", {**PUSH, "CI_COMMIT_BRANCH": "pre-production"}, "deploy:preprod")
    assert result.returncode == 0, failed(result)
    assert_deployed(deployment, "preprod", IMAGE_B)
    (recorded,) = deployment.records("preprod")
    assert (recorded["commit"], recorded["image"], recorded["image_commit"]) == (merge, IMAGE_B, b)
    # dev is left as it was.
    assert_deployed(deployment, "dev", IMAGE_B)


def test_a_scheduled_drift_check_passes_right_after_the_deploys_and_changes_nothing(deployment: Deployment) -> None:
    before = len(deployment.cloud.timeline())
    for job in ("drift:dev", "drift:preprod"):
        result = deployment.job("master", SCHEDULE, job)
        assert result.returncode == 0, f"{job}\n{failed(result)}"
    changes = [e for e in deployment.cloud.timeline()[before:] if e["event"] != "describe-health"]
    assert changes == [], "a drift check must not change the cloud"


def test_drift_dev_fails_after_a_rule_is_changed_by_hand_and_the_other_stacks_still_pass(
    deployment: Deployment,
) -> None:
    cloud = deployment.cloud
    rule = next(r for r in cloud.inventory() if r["type"] == RULE and stack_of(r) == "dev")
    original = rule["inputs"]["cidrIp"]
    cloud.tamper(rule["id"], {"cidrIp": "0.0.0.0/0"})  # someone opens the app port to the world in the console
    try:
        result = deployment.job("master", SCHEDULE, "drift:dev")
        assert result.returncode != 0, "a rule opened by hand is drift"
        assert rule["urn"].split("::")[-1] in result.stdout, f"drift:dev must name the changed rule\n{failed(result)}"
        result = deployment.job("master", SCHEDULE, "drift:preprod")
        assert result.returncode == 0, failed(result)
    finally:
        cloud.tamper(rule["id"], {"cidrIp": original})
    result = deployment.job("master", SCHEDULE, "drift:dev")
    assert result.returncode == 0, f"drift:dev once the rule is back\n{failed(result)}"


def test_a_deploy_whose_health_gate_fails_fails_the_job_and_records_nothing(deployment: Deployment) -> None:
    repo, cloud = deployment.repo, deployment.cloud
    git(repo, "checkout", "-q", "-f", "master")
    git(repo, "commit", "-q", "--allow-empty", "-m", "C: a release whose image never turns healthy")
    c = git(repo, "rev-parse", "HEAD")
    deployment.publish(c, BAD_IMAGE, "1.2.0")
    cloud.mark_bad_image(BAD_IMAGE)
    old = {s["id"] for s in deployment.servers("dev")}
    records_before = deployment.records("dev")

    result = deployment.job("master", {**PUSH, "CI_COMMIT_BRANCH": "master"}, "deploy:dev")
    assert result.returncode != 0, failed(result)
    assert deployment.records("dev") == records_before, "a failed deploy must record nothing"
    # It failed in `pulumi up`, at zone A's gate: zone A got servers from the bad image, zone B none, nothing left.
    tried = [s for s in deployment.servers("dev") if s["inputs"]["imageId"] == BAD_IMAGE]
    assert tried and {s["zone"] for s in tried} == {ZONE_A}, tried
    health = cloud.health(deployment.outputs("dev")["slb_id"], HTTPS_PORT)
    assert all(health[server] == HEALTHY for server in old), f"the old servers must still serve: {health}"
