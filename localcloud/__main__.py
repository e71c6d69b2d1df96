"""python -m localcloud [--dir DIR] COMMAND: run and inspect a local Alibaba Cloud (folder default: $LOCALCLOUD_DIR).

rehearse --stack STACK [--root DIR] [--preview-only]   the one-command rehearsal of the working tree (make rehearse)
init [--scale S] [--boot-seconds B] [--duration TOKEN:OPERATION=SECONDS ...]   an empty cloud
run -- pulumi up ...          serve the SLB and ECS APIs, run a command against this cloud
serve                         serve the SLB and ECS APIs until interrupted; prints their endpoints
env --slb-endpoint URL --ecs-endpoint URL   the shell exports for a pulumi run against this cloud
inventory [--json]            every resource the cloud holds
timeline [--json]             every change, with simulated and wall times
health LOAD_BALANCER_ID [--port 80]
mark-bad-image IMAGE_ID | zone-down ZONE | zone-up ZONE
mark-bad-migration IMAGE_ID [--message TEXT]    the migrations of servers from this image fail, printing TEXT
tamper RESOURCE_ID [KEY=JSON ...] [--delete]      an out-of-band change, for drift checks
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from localcloud.cloud import LocalCloud, bin_dir
from localcloud.ecs_api import serve_ecs
from localcloud.provider import ENV_REAL_PROVIDER
from localcloud.rehearse import DEFAULT_ROOT, RehearsalError, rehearse
from localcloud.resources import CloudError
from localcloud.slb_api import serve_slb


def real_provider() -> str:
    """The real provider binary: $LOCALCLOUD_REAL_PROVIDER, else the first pulumi-resource-alicloud on PATH but ours."""
    named = os.environ.get(ENV_REAL_PROVIDER)
    if named:
        return named
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != str(bin_dir()))
    found = shutil.which("pulumi-resource-alicloud", path=path)
    if not found:
        raise SystemExit(f"no real pulumi-resource-alicloud on PATH; set {ENV_REAL_PROVIDER}")
    return found


def rehearsal_env(cloud: LocalCloud, slb_endpoint: str, ecs_endpoint: str) -> dict[str, str]:
    env = cloud.env(slb_endpoint, real_provider(), ecs_endpoint)
    env["PATH"] = os.pathsep.join([str(bin_dir()), os.environ.get("PATH", "")])
    return env


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=os.environ.get("LOCALCLOUD_DIR"), help="the cloud's folder")
    commands = parser.add_subparsers(dest="command", required=True)
    rehearsal = commands.add_parser("rehearse", help="the working tree on a stack, in a throwaway copy")
    rehearsal.add_argument("--stack", required=True)
    rehearsal.add_argument("--root", type=Path, help=f"the rehearsal's folder (default: {DEFAULT_ROOT}/<stack>)")
    rehearsal.add_argument("--preview-only", action="store_true", help="stop after the preview")
    init = commands.add_parser("init")
    init.add_argument("--scale", type=float)
    init.add_argument("--boot-seconds", type=float, default=90.0)
    init.add_argument("--duration", action="append", default=[], metavar="TOKEN:OPERATION=SECONDS")
    run = commands.add_parser("run")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    commands.add_parser("serve")
    env = commands.add_parser("env")
    env.add_argument("--slb-endpoint", required=True)
    env.add_argument("--ecs-endpoint", required=True)
    for name in ("inventory", "timeline"):
        commands.add_parser(name).add_argument("--json", action="store_true")
    health = commands.add_parser("health")
    health.add_argument("load_balancer_id")
    health.add_argument("--port", type=int, default=80)
    commands.add_parser("mark-bad-image").add_argument("image_id")
    bad_migration = commands.add_parser("mark-bad-migration")
    bad_migration.add_argument("image_id")
    bad_migration.add_argument("--message", help="what the migration tool prints (default: a generic failure)")
    commands.add_parser("zone-down").add_argument("zone")
    commands.add_parser("zone-up").add_argument("zone")
    tamper = commands.add_parser("tamper")
    tamper.add_argument("resource_id")
    tamper.add_argument("changes", nargs="*", metavar="KEY=JSON")
    tamper.add_argument("--delete", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "rehearse":
        # Its own cloud, under the rehearsal's folder: --dir and $LOCALCLOUD_DIR are for the other commands.
        try:
            return rehearse(args.stack, args.root or DEFAULT_ROOT / args.stack, preview_only=args.preview_only)
        except RehearsalError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if not args.dir:
        parser.error("no cloud folder: pass --dir or set LOCALCLOUD_DIR")
    cloud = LocalCloud(args.dir)

    try:
        return _run(args, cloud)
    except CloudError as error:
        print(f"{error.code}: {error.message}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, cloud: LocalCloud) -> int:
    if args.command == "init":
        durations: dict[str, dict[str, float]] = {}
        for item in args.duration:
            target, _, seconds = item.partition("=")
            token, _, operation = target.rpartition(":")
            durations.setdefault(token, {})[operation] = float(seconds)
        cloud.init(scale=args.scale, boot_seconds=args.boot_seconds, durations=durations)
        print(f"local cloud in {cloud.root}")
    elif args.command == "run":
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        with serve_slb(cloud) as slb, serve_ecs(cloud) as ecs:
            return subprocess.call(command, env={**os.environ, **rehearsal_env(cloud, slb, ecs)})
    elif args.command == "serve":
        with serve_slb(cloud) as slb, serve_ecs(cloud) as ecs:
            (cloud.root / "slb-endpoint").write_text(slb + "\n")
            (cloud.root / "ecs-endpoint").write_text(ecs + "\n")
            print(f"slb {slb}\necs {ecs}", flush=True)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    elif args.command == "env":
        for key, value in rehearsal_env(cloud, args.slb_endpoint, args.ecs_endpoint).items():
            print(f"export {key}={shlex_quote(value)}")
    elif args.command == "inventory":
        records = cloud.inventory()
        if args.json:
            print(json.dumps(records, indent=1))
        for record in [] if args.json else records:
            print(f"{record['type']:70} {record['id']:45} {record['state']:9} {record['urn'].split('::')[-1]}")
    elif args.command == "timeline":
        events = cloud.timeline()
        if args.json:
            print(json.dumps(events, indent=1))
        for event in [] if args.json else events:
            subject = event.get("record", {}).get("id") or event.get("image") or event.get("zone") or ""
            print(f"{event['sim']:10.1f}s  {event['event']:15} {subject}")
    elif args.command == "health":
        for server, status in sorted(cloud.health(args.load_balancer_id, args.port).items()):
            print(f"{server} {status}")
    elif args.command == "mark-bad-image":
        cloud.mark_bad_image(args.image_id)
    elif args.command == "mark-bad-migration":
        cloud.mark_bad_migration(args.image_id, args.message)
    elif args.command == "zone-down":
        cloud.zone_down(args.zone)
    elif args.command == "zone-up":
        cloud.zone_up(args.zone)
    elif args.command == "tamper":
        changes = dict(item.split("=", 1) for item in args.changes)
        cloud.tamper(args.resource_id, {k: _parse_value(v) for k, v in changes.items()}, delete=args.delete)
    return 0


def shlex_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


if __name__ == "__main__":
    sys.exit(main())
