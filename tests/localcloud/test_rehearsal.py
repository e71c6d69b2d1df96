"""End to end: the real CLI, language host and engine deploy the dev stack into the local cloud, then destroy it.

The real alicloud provider checks the inputs and decides the diffs (the local cloud's plugin forwards to it); the local
cloud creates the resources and serves the SLB API the real health gates poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud import LocalCloud, serve_ecs, serve_slb
from plan.offline import evaluate
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
