"""How long prod takes to create from nothing and to release, under the real engine against the local cloud, in
simulated seconds, next to the floor of each (its longest unavoidable chain of the local cloud's durations).

    .venv/bin/python benchmarks/lifecycle.py [--scale 0.002] [--stack prod]

Floors, from localcloud/resources.py's durations (so they follow the cloud):
  * create: VPC → VSwitch → RDS → the database and the account → the privilege (the database objects);
  * release: per zone in turn, a server's creation, its boot and its membership; then the old memberships and servers
    leave (which a release must do after the last gate).

The health gate polls every 5 s of WALL time (infra/health_gate.py, `interval_seconds`): at a scale of 0.002 one poll
is 2,500 simulated seconds, so the raw span would mostly measure the poll. What is reported instead: the span with each
gate's overshoot (from the moment its last server turned healthy to the first poll that saw it, read from the SLB
API's `describe-health` events in the timeline) replaced by one real poll interval, 5 s, the most a real gate adds.
Both numbers are printed. This is a measurement, not a test: it prints and exits 0 either way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localcloud import KINDS, LocalCloud, serve_ecs, serve_slb
from tests.pulumi_cli import Workspace, toolchain_bin

SERVER = "alicloud:ecs/instance:Instance"
MEMBER = "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment"
POLL_SECONDS = 5.0


def seconds(token: str, operation: int) -> float:
    return KINDS[token].durations[operation]


def create_floor() -> float:
    chain = ["alicloud:vpc/network:Network", "alicloud:vpc/switch:Switch", "alicloud:rds/instance:Instance"]
    objects = max(seconds("alicloud:rds/database:Database", 0), seconds("alicloud:rds/rdsAccount:RdsAccount", 0))
    return sum(seconds(t, 0) for t in chain) + objects + seconds("alicloud:rds/accountPrivilege:AccountPrivilege", 0)


def release_floor(boot: float) -> float:
    per_zone = seconds(SERVER, 0) + boot + seconds(MEMBER, 0)
    return 2 * per_zone + seconds(MEMBER, 2) + seconds(SERVER, 2)


def measure(cloud: LocalCloud, since_seq: int, stack: str) -> tuple[float, float, int]:
    """(raw simulated span of the stack's changes, the gates' poll overshoot in it, number of gates)."""
    events = [e for e in cloud.timeline() if e["seq"] > since_seq]
    mine = [e for e in events if "record" in e and f"urn:pulumi:{stack}::" in e["record"].get("urn", "")]
    start, end = mine[0]["sim"], mine[-1]["sim"]
    new_servers = {e["record"]["id"]: e["record"] for e in mine if e["event"] == "create-end"
                   and e["record"]["type"] == SERVER}  # fmt: skip
    overshoot, gates = 0.0, 0
    for zone in sorted({r["zone"] for r in new_servers.values()}):
        ids = {i for i, r in new_servers.items() if r["zone"] == zone}
        healthy_at = max(new_servers[i]["healthyAt"] for i in ids)
        seen = [e["sim"] for e in events if e["event"] == "describe-health" and ids <= set(e["healthy"])]
        if seen:
            overshoot += max(0.0, min(seen) - healthy_at)
            gates += 1
            end = max(end, min(seen))
    return end - start, overshoot, gates


def report(name: str, raw: float, overshoot: float, gates: int, floor: float) -> None:
    adjusted = raw - overshoot + gates * POLL_SECONDS
    print(
        f"{name:8} raw {raw:9.0f} s (of which gate polls {overshoot:7.0f} s)   adjusted {adjusted:6.0f} s   "
        f"floor {floor:6.0f} s   adjusted/floor {adjusted / floor:4.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.002, help="wall seconds per simulated second")
    parser.add_argument("--stack", default="prod")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lifecycle-benchmark-"))
    cloud = LocalCloud(root / "cloud").init(scale=args.scale)
    boot = float(cloud.store.snapshot()["bootSeconds"])
    with serve_slb(cloud) as slb, serve_ecs(cloud) as ecs:
        ws = Workspace(root / "ws", toolchain_bin(), cloud=cloud, slb_endpoint=slb, ecs_endpoint=ecs)
        ws.init_stack(args.stack)
        results: list[tuple[str, Any, float]] = []
        seq = 0
        ws.run("up", "--stack", args.stack, "--yes", "--skip-preview", timeout=3600)
        results.append(("create", measure(cloud, seq, args.stack), create_floor()))
        seq = cloud.timeline()[-1]["seq"]
        ws.run("config", "set", "imageId", "m-bp1benchmark000000002", "--stack", args.stack)
        ws.run("up", "--stack", args.stack, "--yes", "--skip-preview", timeout=3600)
        results.append(("release", measure(cloud, seq, args.stack), release_floor(boot)))
    print(f"{args.stack} at scale {args.scale} (1 simulated second = {args.scale * 1000:g} ms wall), boot {boot:g} s")
    for name, (raw, overshoot, gates), floor in results:
        report(name, raw, overshoot, gates, floor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
