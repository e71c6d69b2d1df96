"""How long prod takes to create from nothing and to release, under the real engine against the local cloud, in
simulated seconds, next to the floor of each (its longest unavoidable chain of the local cloud's durations).

    .venv/bin/python benchmarks/lifecycle.py [--scale 0.02] [--stack prod]

Floors, from the local cloud's durations (so they follow the cloud):
  * create: VPC → VSwitch → RDS → the database and the account → the privilege (the database objects), then the
    schema migration and zone A's membership, which must follow them;
  * release: per zone in turn, a server's creation, its boot and its membership, with the schema migration between
    zone A's boot and its membership; then the old memberships and servers leave (after the last gate).

The health gates and the migration step poll every 5 s of the cloud's simulated time, as they would a real cloud
(the local cloud hands them its scale: infra/cloud_api.py, HA_WEBAPP_REHEARSAL_TIME_SCALE). The scale is 0.02 by
default (1 simulated second = 20 ms): at smaller ones the engine's own work between two steps, tens of wall
milliseconds, starts to count as simulated seconds. This is a measurement, not a test: it prints and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localcloud import KINDS, LocalCloud, serve_ecs, serve_slb
from localcloud.ecs_api import MIGRATION_SECONDS
from tests.pulumi_cli import Workspace, toolchain_bin

SERVER = "alicloud:ecs/instance:Instance"
MEMBER = "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment"


def seconds(token: str, operation: int) -> float:
    return KINDS[token].durations[operation]


def create_floor() -> float:
    chain = ["alicloud:vpc/network:Network", "alicloud:vpc/switch:Switch", "alicloud:rds/instance:Instance"]
    objects = max(seconds("alicloud:rds/database:Database", 0), seconds("alicloud:rds/rdsAccount:RdsAccount", 0))
    privilege = seconds("alicloud:rds/accountPrivilege:AccountPrivilege", 0)
    return sum(seconds(t, 0) for t in chain) + objects + privilege + MIGRATION_SECONDS + seconds(MEMBER, 0)


def release_floor(boot: float) -> float:
    per_zone = seconds(SERVER, 0) + boot + seconds(MEMBER, 0)
    return 2 * per_zone + MIGRATION_SECONDS + seconds(MEMBER, 2) + seconds(SERVER, 2)


def span(cloud: LocalCloud, since_seq: int, stack: str) -> float:
    """Simulated seconds from the stack's first change after `since_seq` to its last change or poll (the last gate's
    passing poll may come after the last change). The benchmark's cloud holds this one stack, so every poll is its."""
    events = [e for e in cloud.timeline() if e["seq"] > since_seq]
    mine = [e for e in events if "record" in e and f"urn:pulumi:{stack}::" in e["record"].get("urn", "")]
    polls = [e["sim"] for e in events if e["event"] in ("describe-health", "migration-end")]
    return max([mine[-1]["sim"], *polls]) - mine[0]["sim"]


def report(name: str, simulated: float, floor: float) -> None:
    print(f"{name:8} {simulated:6.0f} s   floor {floor:6.0f} s   {simulated / floor:4.2f}x the floor")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.02, help="wall seconds per simulated second")
    parser.add_argument("--stack", default="prod")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lifecycle-benchmark-"))
    cloud = LocalCloud(root / "cloud").init(scale=args.scale)
    boot = float(cloud.store.snapshot()["bootSeconds"])
    with serve_slb(cloud) as slb, serve_ecs(cloud) as ecs:
        ws = Workspace(root / "ws", toolchain_bin(), cloud=cloud, slb_endpoint=slb, ecs_endpoint=ecs)
        ws.init_stack(args.stack)
        results: list[tuple[str, float, float]] = []
        seq = 0
        ws.run("up", "--stack", args.stack, "--yes", "--skip-preview", timeout=3600)
        results.append(("create", span(cloud, seq, args.stack), create_floor()))
        seq = cloud.timeline()[-1]["seq"]
        ws.run("config", "set", "imageId", "m-bp1benchmark000000002", "--stack", args.stack)
        ws.run("up", "--stack", args.stack, "--yes", "--skip-preview", timeout=3600)
        results.append(("release", span(cloud, seq, args.stack), release_floor(boot)))
    print(f"{args.stack} at scale {args.scale} (1 simulated second = {args.scale * 1000:g} ms wall), boot {boot:g} s")
    for name, simulated, floor in results:
        report(name, simulated, floor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
