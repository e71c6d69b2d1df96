"""The ECS API of the local cloud on 127.0.0.1: Cloud Assistant's RunCommand and DescribeInvocationResults, the two
calls the schema migration step makes (infra/migration.py).

Signed requests only (ACS3-HMAC-SHA256, with the cloud's keys). It simulates what matters to a release, strictly:
- RunCommand on an instance the cloud does not hold is refused (InvalidInstanceId.NotFound), on one that is not
  Running yet or any more (being created or deleted) too (IncorrectInstanceStatus); on a Running instance whose Cloud
  Assistant agent is not up yet (the first third of its boot) the invocation is Aborted with ClientNotRunning,
  as DescribeInvocationResults reports a command that could not be sent.
- The only command it can run is the migration: `cloud-init status --wait` waits for the end of the first boot (the
  server's `healthyAt`), then `app-migrate` takes MIGRATION_SECONDS (or the cloud's duration for MIGRATION_DURATION).
  Run without the wait during the boot, it fails as the wrapper would without its settings file. It fails with the
  marked message for an image marked by `mark-bad-migration`, and when the user data's DB_HOST names no database of
  the cloud.
- It records in the timeline each run's begin (with the database, found from the user data's DB_HOST, the RDS
  connection string, and whether another run on that database was under way: `overlapped`) and its end.
"""

from __future__ import annotations

import base64
import copy
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from localcloud.acs import FakeAcsApi, serve
from localcloud.cloud import LocalCloud
from localcloud.resources import get, plain
from localcloud.store import Transaction

_SERVER = "alicloud:ecs/instance:Instance"
_RDS = "alicloud:rds/instance:Instance"
# When, in a server's first boot, its Cloud Assistant agent starts taking commands (a third in: 30 s of the default
# 90 s boot), and how many simulated seconds the migration tool runs (overridden like any duration, e.g.
# `python -m localcloud init --duration cloudassistant:migration:run=900`).
AGENT_SHARE_OF_BOOT = 1 / 3
MIGRATION_SECONDS = 45.0
MIGRATION_DURATION = ("cloudassistant:migration", "run")
MIGRATE_TOOL = "app-migrate"
ENV_FILE = "/etc/app/app.env"
_DB_HOST = re.compile(r'^DB_HOST="([^"]*)"$', re.M)


@dataclass
class EcsApi(FakeAcsApi):
    actions: ClassVar[frozenset[str]] = frozenset({"RunCommand", "DescribeInvocationResults"})

    cloud: LocalCloud | None = field(default=None, repr=False)

    def answer_action(self, action: str, query: dict[str, str]) -> tuple[int, dict[str, object]]:
        assert self.cloud is not None
        self.cloud.settle()
        request_id = str(uuid.uuid4()).upper()
        with self.cloud.store.transaction() as tx:
            now = self.cloud.now()
            if action == "RunCommand":
                status, body = _run_command(tx, now, query)
            else:
                status, body = _describe_invocation_results(tx, now, query)
        return status, {"RequestId": request_id, **body}


def _refusal(status: int, code: str, message: str) -> tuple[int, dict[str, object]]:
    return status, {"Code": code, "Message": message}


def _run_command(tx: Transaction, now: float, query: dict[str, str]) -> tuple[int, dict[str, object]]:
    instance_ids = [v for k, v in sorted(query.items()) if k.startswith("InstanceId.")]
    if len(instance_ids) != 1:
        # The migration step names exactly one server; more is not simulated.
        return _refusal(400, "InvalidParameter.InstanceId", "The local cloud runs a command on exactly one instance.")
    if query.get("Type") != "RunShellScript":
        return _refusal(400, "InvalidCommandType", f"The command type {query.get('Type')!r} is not simulated.")
    server = get(tx.cloud, _SERVER, instance_ids[0])
    if server is None:
        return _refusal(
            404, "InvalidInstanceId.NotFound", f"The specified InstanceId {instance_ids[0]} does not exist."
        )
    if server["state"] not in ("ready", "updating") or server.get("healthyAt") is None:
        return _refusal(
            403, "IncorrectInstanceStatus", "The current status of the resource does not support this operation."
        )
    content = query.get("CommandContent", "")
    if query.get("ContentEncoding") == "Base64":
        content = base64.b64decode(content).decode()
    invoke_id = f"t-{uuid.uuid4().hex[:14]}"
    invocations: dict[str, Any] = tx.cloud.setdefault("invocations", {})
    boot = float(tx.cloud["bootSeconds"])
    booted_at = float(server["healthyAt"])
    agent_up_at = booted_at - boot * (1 - AGENT_SHARE_OF_BOOT)
    invocation: dict[str, Any] = {"invokeId": invoke_id, "instanceId": server["id"], "created": now}
    if now < agent_up_at:
        invocation.update(
            status="Aborted",
            errorCode="ClientNotRunning",
            errorInfo="the aliyun service is not running on the instance",
            exitCode=None,
            output="",
        )
        invocations[invoke_id] = invocation
        tx.record("run-command-aborted", invokeId=invoke_id, instanceId=server["id"], errorCode="ClientNotRunning")
        return 200, {"CommandId": f"c-{uuid.uuid4().hex[:14]}", "InvokeId": invoke_id}

    database = _database_of(tx.cloud, server)
    waits_for_boot = "cloud-init status --wait" in content
    starts = max(now, booted_at) if waits_for_boot else now
    image = plain(server["inputs"].get("imageId"))
    bad = tx.cloud.get("badMigrations", {}).get(image)
    if MIGRATE_TOOL not in content:
        outcome = ("Failed", 127, "sh: the local cloud simulates only the migration tool\n")
    elif not waits_for_boot and now < booted_at:
        outcome = (
            "Failed",
            1,
            "app-migrate: /etc/app/app.env: No such file or directory (the first boot is not over)\n",
        )
    elif database is None:
        host = _db_host(server) or "(no DB_HOST)"
        outcome = ("Failed", 1, f"ERROR 2005 (HY000): Unknown MySQL server host '{host}'\n")
    elif bad is not None:
        outcome = ("Failed", 1, f"{bad}\n")
    else:
        applied: list[str] = tx.cloud.setdefault("schemas", {}).setdefault(database, [])
        if image in applied:
            outcome = ("Success", 0, f"No migrations to apply: the schema is already at release {image}.\n")
        else:
            applied.append(image)
            outcome = ("Success", 0, f"Applying migrations of release {image}... OK\nApplied 1 migration.\n")
    token, operation = MIGRATION_DURATION
    ends = starts + float(tx.cloud.get("durations", {}).get(token, {}).get(operation, MIGRATION_SECONDS))
    overlapped = any(
        other.get("database") == database and other.get("starts", 0) < ends and starts < other.get("ends", 0)
        for other in invocations.values()
        if database is not None and other.get("status") != "Aborted"
    )
    status, exit_code, output = outcome
    invocation.update(
        status=status,
        exitCode=exit_code,
        output=output,
        errorCode="" if exit_code == 0 else "ExitCodeNonzero",
        errorInfo="",
        database=database,
        image=image,
        starts=starts,
        ends=ends,
        ended=False,
    )
    invocations[invoke_id] = invocation
    tx.record(
        "migration-begin",
        invokeId=invoke_id,
        instanceId=server["id"],
        urn=server["urn"],
        zone=server.get("zone"),
        image=image,
        database=database,
        startsAt=round(starts, 3),
        endsAt=round(ends, 3),
        overlapped=overlapped,
    )
    return 200, {"CommandId": f"c-{uuid.uuid4().hex[:14]}", "InvokeId": invoke_id}


def _describe_invocation_results(tx: Transaction, now: float, query: dict[str, str]) -> tuple[int, dict[str, object]]:
    invocation = tx.cloud.get("invocations", {}).get(query.get("InvokeId", ""))
    if invocation is None or query.get("InstanceId", invocation["instanceId"]) != invocation["instanceId"]:
        return _refusal(
            404, "InvalidInvokeId.NotFound", f"The specified InvokeId {query.get('InvokeId')} does not exist."
        )
    status, exit_code, output = invocation["status"], invocation["exitCode"], invocation["output"]
    if status != "Aborted" and now < invocation["ends"]:
        status, exit_code, output = "Running", None, ""
    elif status != "Aborted" and not invocation["ended"]:
        invocation["ended"] = True
        tx.record(
            "migration-end",
            at=invocation["ends"],
            invokeId=invocation["invokeId"],
            instanceId=invocation["instanceId"],
            database=invocation["database"],
            status=status,
            exitCode=exit_code,
        )
    encoded = output if query.get("ContentEncoding") == "PlainText" else base64.b64encode(output.encode()).decode()
    result = {
        "InstanceId": invocation["instanceId"],
        "InvokeId": invocation["invokeId"],
        "InvocationStatus": status,
        "ExitCode": exit_code,
        "Output": encoded,
        "ErrorCode": invocation["errorCode"] if status not in ("Running",) else "",
        "ErrorInfo": invocation["errorInfo"],
        "Dropped": 0,
    }
    return 200, {"Invocation": {"InvocationResults": {"InvocationResult": [copy.deepcopy(result)]}}}


def _db_host(server: dict[str, Any]) -> str | None:
    """DB_HOST from the environment file the server's cloud-config writes (infra/user_data.py), as the wrapper reads."""
    try:
        document = yaml.safe_load(base64.b64decode(str(plain(server["inputs"].get("userData")) or "")).decode())
    except (ValueError, yaml.YAMLError):
        return None
    files = document.get("write_files", []) if isinstance(document, dict) else []
    for written in files:
        if isinstance(written, dict) and written.get("path") == ENV_FILE:
            match = _DB_HOST.search(str(written.get("content", "")))
            return match.group(1) if match else None
    return None


def _database_of(cloud: dict[str, Any], server: dict[str, Any]) -> str | None:
    """The RDS instance the server's user data points at (DB_HOST is its connection string), if the cloud holds it."""
    host = _db_host(server)
    for record in cloud["resources"].values():
        if record["type"] == _RDS and host and record["outputs"].get("connectionString") == host:
            return str(record["id"])
    return None


def migration_runs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The migration runs a timeline records (their begin events), in order."""
    return [e for e in events if e["event"] == "migration-begin"]


@contextmanager
def serve_ecs(cloud: LocalCloud) -> Iterator[str]:
    """Serve the cloud's ECS API for the duration of the block; yields its endpoint URL (http://127.0.0.1:port)."""
    credentials = cloud.store.snapshot()["credentials"]
    api = EcsApi(credentials["accessKeyId"], credentials["accessKeySecret"], cloud=cloud)
    with serve(api) as served:
        yield f"http://{served.endpoint}"
