"""What an interrupted `pulumi up` left behind, and the steps that recover the stack (docs/releases.md, "An interrupted
release").

    python -m pipeline.recover --stack prod                      # runs `pulumi stack export --stack prod`
    python -m pipeline.recover --stack prod --export state.json  # or reads an export saved before

Read-only: it lists the stack's pending operations and, for each create the engine never saw finish, what to look
for in the cloud (the name, tags and image the program gave it) and which IDs under the same URN the state already
holds (the server being replaced: keep it). Then it prints the commands that finish the recovery. It deletes nothing:
which object is the orphan is the operator's call, made in the console or with the aliyun CLI.

Why not `pulumi refresh --import-pending-creates URN ID`: under pulumi 3.260 the refresh turns the pending create into
an `importing` operation and then drops it without adding the resource (only `creating` operations are carried into
the new checkpoint, pkg/backend/snapshot.go), so the next `pulumi up` creates the resource again and the first one is
orphaned; tests/localcloud/test_lifecycle.py keeps that route as an expected failure. Releasing the half-finished
object and clearing the pending create costs one server's creation and leaves nothing behind.

Exit status 0 (with or without pending operations); 2 with a one-line reason when the export cannot be read.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Inputs that identify an object in the console or the aliyun CLI, in the order they are printed. A server's name is
# deterministic (<project>-<stack>-app-<zone label><n>) and shared with the server it replaces, so its image and the
# IDs already in the state tell the two apart.
_IDENTIFYING = (
    "instanceName",
    "imageId",
    "vswitchId",
    "serverGroupId",
    "serverId",
    "instanceId",
    "ramRoleName",
    "loadBalancerName",
    "dbInstanceDescription",
    "name",
)
_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"  # pragma: allowlist secret (pulumi's secret envelope marker)


class ExportError(Exception):
    """The export cannot be read; the message says why."""


@dataclass(frozen=True)
class PendingOperation:
    """One operation an interrupted update left in the checkpoint."""

    kind: str  # creating, updating, deleting, reading, importing
    urn: str
    resource_type: str
    identity: dict[str, str]
    # IDs the state already holds under this URN: for a create-before-delete replacement, the old object.
    ids_in_state: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


def _plain(value: Any) -> str | None:
    """An input as the console shows it; secrets and structured values are left out."""
    if isinstance(value, dict) and _SECRET_SIG_KEY in value:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    return None


def pending_operations(export: Any) -> list[PendingOperation]:
    """The pending operations of a `pulumi stack export` document."""
    if not isinstance(export, dict) or not isinstance(export.get("deployment"), dict):
        raise ExportError("not a `pulumi stack export` document: no `deployment` object")
    deployment = export["deployment"]
    in_state: dict[str, list[str]] = {}
    for resource in deployment.get("resources") or []:
        if resource.get("id"):
            in_state.setdefault(resource["urn"], []).append(str(resource["id"]))
    found = []
    for operation in deployment.get("pending_operations") or []:
        resource = operation.get("resource") or {}
        if "urn" not in resource or "type" not in operation:
            raise ExportError("a pending operation without `type` or `resource.urn`")
        inputs = resource.get("inputs") or {}
        identity = {k: v for k in _IDENTIFYING if (v := _plain(inputs.get(k))) is not None}
        tags = inputs.get("tags")
        if isinstance(tags, dict):
            identity.update({f"tag:{k}": v for k, raw in sorted(tags.items()) if (v := _plain(raw)) is not None})
        found.append(
            PendingOperation(
                kind=str(operation["type"]),
                urn=resource["urn"],
                resource_type=str(resource.get("type", "")),
                identity=identity,
                ids_in_state=tuple(in_state.get(resource["urn"], [])),
            )
        )
    return found


def runbook(stack: str, operations: Sequence[PendingOperation]) -> list[str]:
    """The lines to print: each pending operation, then the commands that recover the stack."""
    if not operations:
        return [f"{stack}: no pending operations; nothing to recover."]
    lines = [f"{stack}: {len(operations)} pending operation(s) left by an interrupted update"]
    creates = [op for op in operations if op.kind == "creating"]
    for op in operations:
        lines.append(f"  {op.kind:9} {op.resource_type} {op.name}")
        if op.kind != "creating":
            lines.append("            the refresh below reads it back from the cloud; nothing to do by hand")
            continue
        lines.append("            look for: " + ", ".join(f"{k}={v}" for k, v in op.identity.items()))
        if op.ids_in_state:
            kept = ", ".join(op.ids_in_state)
            lines.append(f"            keep {kept}: the state holds it (the object being replaced)")
    steps = []
    if creates:
        steps.append(
            "release every object found above that the state does not hold, memberships and role attachments before "
            "their server (console, or: aliyun ecs DescribeInstances --InstanceName NAME; aliyun ecs DeleteInstance "
            "--InstanceId ID --Force true)"
        )
    steps += [
        f"pulumi cancel --stack {stack} --yes   (only if the killed update's lock is still there)",
        f"pulumi refresh --stack {stack} --yes" + (" --clear-pending-creates" if creates else ""),
        f"pulumi up --stack {stack}   (the release again, from the start)",
    ]
    lines.append("Then:")
    lines += [f"  {number}. {step}" for number, step in enumerate(steps, start=1)]
    return lines


def _load(stack: str, export_file: str | None) -> Any:
    if export_file:
        try:
            with open(export_file, encoding="utf-8") as handle:
                return json.load(handle)
        except OSError as error:
            raise ExportError(f"--export {export_file}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            raise ExportError(f"--export {export_file}: not JSON ({error.msg} at line {error.lineno})") from None
    try:
        done = subprocess.run(
            ["pulumi", "stack", "export", "--stack", stack], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise ExportError("no `pulumi` on PATH; pass --export FILE from `pulumi stack export`") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ExportError(f"`pulumi stack export --stack {stack}` failed: {last}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        raise ExportError(f"`pulumi stack export --stack {stack}` did not print JSON") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.recover", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the stack an update was interrupted on")
    parser.add_argument("--export", metavar="FILE", help="a saved `pulumi stack export` (default: run it)")
    args = parser.parse_args(argv)
    try:
        operations = pending_operations(_load(args.stack, args.export))
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(runbook(args.stack, operations)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
