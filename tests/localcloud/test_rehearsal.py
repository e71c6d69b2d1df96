"""End to end: the real CLI, language host and engine deploy the dev stack into the local cloud, then destroy it; and
the one-command rehearsal (`python -m localcloud rehearse`, `make rehearse`) does the same from a user's shell.

The real alicloud provider checks the inputs and decides the diffs (the local cloud's plugin forwards to it); the local
cloud creates the resources and serves the SLB API the real health gates poll.

The rehearsal test was seen failing with `pulumi stack init` run in the working tree (the passphrase salt landed in the
repository's Pulumi.dev.yaml). Keeping the salt of the copy's stack file across runs turned out not to matter (the
file backend keeps it in the checkpoint too): without it the second run passed, so the command does not keep it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud import LocalCloud, serve_ecs, serve_slb
from plan.offline import PROJECT_DIR, evaluate
from tests.pulumi_cli import Workspace, toolchain_bin


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    cloud = LocalCloud(tmp_path / "cloud").init()
    with serve_slb(cloud) as slb, serve_ecs(cloud) as ecs:
        yield Workspace(tmp_path / "ws", toolchain_bin(), cloud=cloud, slb_endpoint=slb, ecs_endpoint=ecs)


def test_dev_deploys_into_the_local_cloud_and_destroys_to_nothing(workspace: Workspace) -> None:
    cloud = workspace.cloud
    assert cloud is not None
    workspace.init_stack("dev")
    workspace.run("up", "--stack", "dev", "--yes", "--skip-preview", timeout=900)

    state = workspace.cloud_resources("dev")
    planned = sorted(r.type for r in evaluate("dev", preview=True).resources if r.type.startswith("alicloud:"))
    assert sorted(kind for kind, _ in state) == planned
    inventory = {(r["type"], r["id"]) for r in cloud.inventory()}
    assert inventory == state, "the local cloud holds exactly what the state says: nothing orphaned"
    slb_id = next(rid for kind, rid in state if kind.endswith(":ApplicationLoadBalancer"))
    # Both zones' gates passed, so both servers were healthy behind the HTTPS listener when `up` finished.
    assert cloud.healthy_backends_over_time(slb_id, 443)[-1][1] == 2

    # The real provider's diff of the local cloud's outputs against the program: nothing to change.
    workspace.run("preview", "--stack", "dev", "--expect-no-changes")

    workspace.run("destroy", "--stack", "dev", "--yes", "--skip-preview", timeout=900)
    assert cloud.inventory() == []


def test_one_command_rehearses_dev_and_a_second_run_previews_the_working_tree_against_it(tmp_path: Path) -> None:
    stack_file = PROJECT_DIR / "Pulumi.dev.yaml"
    committed = stack_file.read_text()
    command = [sys.executable, "-m", "localcloud", "rehearse", "--stack", "dev", "--root", str(tmp_path)]
    first = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=900, check=False)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert stack_file.read_text() == committed, "the rehearsal wrote to the repository's stack file"

    # The file backend's checkpoint, read directly rather than through the command under test.
    checkpoint = json.loads((tmp_path / "state/.pulumi/stacks/ha-webapp/dev.json").read_text())
    resources = checkpoint["checkpoint"]["latest"]["resources"]
    state = {(r["type"], r["id"]) for r in resources if r["type"].startswith("alicloud:")}
    cloud = LocalCloud(tmp_path / "cloud")
    assert state and {(r["type"], r["id"]) for r in cloud.inventory()} == state, "the cloud holds what the state says"
    assert f"the cloud holds {len(state)} resources of dev, the state {len(state)}\n" in first.stdout
    assert f"--dir {tmp_path / 'cloud'} inventory" in first.stdout, "it says where to look"

    # Again, on the stack rehearsed before: a preview of the (unchanged) working tree, which changes nothing.
    events = len(cloud.timeline())
    again = subprocess.run([*command, "--preview-only"], cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert "dev was rehearsed before" in again.stdout
    assert len(cloud.timeline()) == events, "a preview changed the cloud"


def test_a_rehearsal_of_an_unknown_stack_exits_2_naming_the_stacks() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "localcloud", "rehearse", "--stack", "qa"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--stack 'qa'" in done.stderr and "dev, preprod, prod" in done.stderr
