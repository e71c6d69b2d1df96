"""SchemaMigration: a step of `pulumi up` that runs the new release's database migrations once, on zone A's first new
server, before any server of the new version joins the load balancer.

The database is private: only servers in the VPC reach it, through the security group RDS whitelists. The new server
already has the new version's code and migration files and the RAM role that may read the password from its OOS
encrypted parameter, so the step asks Cloud Assistant (ECS RunCommand) to run the image's `/usr/local/bin/app-migrate`
there and waits for the result (DescribeInvocationResults). No password leaves the secret store and no other machine
needs a way into the VPC. Every zone A membership depends on this step, so a failing migration stops the update before
any new server serves and before any old one is touched (docs/releases.md).

Like the health gate (infra/health_gate.py) it is a Pulumi dynamic resource: its provider runs inside the engine's
Python plugin process and calls the ECS API through the Alibaba Cloud Python SDK with the default credential chain.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic

from infra.cloud_api import (
    TransientApiError,
    backoff,
    describe_error,
    error_code,
    is_transient,
    poll_interval,
    rehearsal_endpoint,
    sdk_config,
    status_of,
)

MIGRATE_TOOL = "/usr/local/bin/app-migrate"
# What Cloud Assistant runs, as root. The server may still be in its first boot (cloud-init writes /etc/app/app.env
# from the user data), so wait for it first. `cloud-init status --wait` exits 1 when the boot failed, and 2 (since
# cloud-init 23.4) when it finished with recoverable errors such as a deprecated key, which still wrote the files.
# An image built before the step existed has no tool: say so, rather than let the shell's "not found" stand alone.
MIGRATE_SCRIPT = f"""set -u
cloud-init status --wait >/dev/null
if [ "$?" -eq 1 ]; then
  echo "{MIGRATE_TOOL} was not run: the server's first boot failed (cloud-init); see /var/log/cloud-init-output.log" >&2
  exit 1
fi
if [ ! -x {MIGRATE_TOOL} ]; then
  echo "{MIGRATE_TOOL} is not in this image: release an image built with it (docs/images.md)" >&2
  exit 127
fi
exec {MIGRATE_TOOL}
"""
# Where a rehearsal's ECS API is (see SchemaMigrationProvider.create); unset in real deployments.
ECS_ENDPOINT_VARIABLE = "HA_WEBAPP_ECS_ENDPOINT"

# Why an invocation ended without running the command on a server whose Cloud Assistant agent is not up yet: the
# invocation is Aborted ("the command fails to be sent", DescribeInvocationResults' InvocationStatus) with one of
# these ErrorCodes (DescribeInvocationResults, ErrorCode: "ClientNotRunning: The Cloud Assistant client is not
# running", ClientNotResponse, ClientIsUpgrading, "InstanceNotRunning: The instance was not running when the task was
# created", "DeliveryTimeout: The request to send the command timed out"). The command never started, so sending it
# again is safe.
AGENT_NOT_READY = frozenset(
    {"ClientNotRunning", "ClientNotResponse", "ClientIsUpgrading", "InstanceNotRunning", "DeliveryTimeout"}
)
# RunCommand's own refusals for a server that exists but is not Running yet ("The instances on which you want to run
# a command must be in the Running state", RunCommand's usage notes): ECS's IncorrectInstanceStatus, and the agent codes
# above should the API answer them at once rather than in the invocation.
_NOT_RUNNING_YET = AGENT_NOT_READY | {"IncorrectInstanceStatus", "InvalidInstance.NotRunning"}
# Invocation states in which the command is still on its way or running.
_IN_PROGRESS = frozenset({"Pending", "Scheduled", "Running", "Stopping"})
SUCCESS = "Success"
# How much of the tool's output a failure quotes: its last lines are where a migration tool names what went wrong.
_TAIL_LINES = 20
_TAIL_CHARS = 3000
_STOPPED = (
    "The release stopped before any server of the new version joined the load balancer; the servers in service, "
    "their memberships and zone B are untouched."
)


class MigrationError(Exception):
    """The migration failed, did not finish in time, or the ECS API refused to run it."""


class NotReadyYetError(Exception):
    """The server cannot take a command yet (not Running, or its Cloud Assistant agent not up); try again later."""


@dataclass(frozen=True)
class InvocationResult:
    """One invocation on one server, as DescribeInvocationResults reports it (Output already decoded)."""

    status: str
    exit_code: int | None
    output: str
    error_code: str = ""
    error_info: str = ""
    dropped_bytes: int = 0


class CloudAssistant:
    """Runs a shell script on one ECS instance through Cloud Assistant and reads its result (the ECS API)."""

    def __init__(self, region: str, endpoint: str | None = None, protocol: str | None = None) -> None:
        from alibabacloud_ecs20140526.client import Client

        self.region = region
        self._client = Client(sdk_config(region, endpoint, protocol))

    def run(self, instance_id: str, script: str, timeout_seconds: int) -> str:
        """Start the script; returns the invocation's ID."""
        from alibabacloud_ecs20140526 import models

        request = models.RunCommandRequest(
            region_id=self.region,
            instance_id=[instance_id],
            type="RunShellScript",
            command_content=script,
            content_encoding="PlainText",
            # The agent kills the command after this (RunCommand's Timeout, default 60 s), so a migration cut off by
            # the step's own deadline does not run on unobserved.
            timeout=timeout_seconds,
            name="ha-webapp-schema-migration",
            description="Database migrations of a release (ha-webapp SchemaMigration)",
            # A one-off: no command is kept in the region's command quota.
            keep_command=False,
        )
        try:
            response = self._client.run_command_with_options(request, _runtime())
        except Exception as exc:  # the SDK raises its own hierarchy, plus plain network errors
            raise _classify("RunCommand", instance_id, exc, _NOT_RUNNING_YET) from None
        return str(response.body.invoke_id)

    def result(self, invoke_id: str, instance_id: str) -> InvocationResult | None:
        """The invocation's state on the server, or None while the API does not list it yet."""
        from alibabacloud_ecs20140526 import models

        request = models.DescribeInvocationResultsRequest(
            region_id=self.region, invoke_id=invoke_id, instance_id=instance_id, content_encoding="Base64"
        )
        try:
            response = self._client.describe_invocation_results_with_options(request, _runtime())
        except Exception as exc:
            raise _classify("DescribeInvocationResults", invoke_id, exc, frozenset()) from None
        invocation = response.body.invocation
        results = (
            invocation.invocation_results.invocation_result if invocation and invocation.invocation_results else []
        )
        for entry in results or []:
            if entry.instance_id == instance_id:
                return InvocationResult(
                    status=str(entry.invocation_status or ""),
                    exit_code=int(entry.exit_code) if entry.exit_code is not None else None,
                    output=_decode(entry.output),
                    error_code=str(entry.error_code or ""),
                    error_info=str(entry.error_info or ""),
                    dropped_bytes=int(entry.dropped or 0),
                )
        return None


def _runtime() -> Any:
    from darabonba.runtime import RuntimeOptions

    return RuntimeOptions(connect_timeout=5000, read_timeout=10000)


def _classify(action: str, subject: str, exc: Exception, not_yet: frozenset[str]) -> Exception:
    described, status, code = describe_error(exc), status_of(exc), error_code(exc)
    if code in not_yet:
        return NotReadyYetError(f"{action} on {subject}: {described}")
    if is_transient(status, code):
        return TransientApiError(f"{action} on {subject}: {described}", answered=status is not None)
    return MigrationError(
        f"{action} on {subject} failed: {described}. Check that the deploy credentials may call ecs:RunCommand and "
        f"ecs:DescribeInvocationResults on the stack's app servers. {_STOPPED}"
    )


def _decode(output: Any) -> str:
    """Cloud Assistant returns Output base64-encoded; the tool may print anything, so undecodable bytes are shown."""
    if not output:
        return ""
    try:
        return base64.b64decode(str(output)).decode("utf-8", errors="replace")
    except ValueError:
        return str(output)


def tail(output: str) -> str:
    """The last lines of the tool's output, which is where it says what went wrong."""
    lines = output.rstrip().splitlines()[-_TAIL_LINES:]
    text = "\n".join(lines)
    return text[-_TAIL_CHARS:]


Runner = Callable[[str, str, int], str]
Reader = Callable[[str, str], "InvocationResult | None"]


def run_migration(
    run: Runner,
    read: Reader,
    instance_id: str,
    timeout_seconds: float,
    interval_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_consecutive_errors: int = 6,
    jitter: Callable[[], float] = random.random,
) -> InvocationResult:
    """Send the migration to the server and wait for its result; return it on success or raise MigrationError.

    A server that is not ready for commands yet is asked again every interval until the deadline. A "not now" from
    the API (throttled, busy) is retried after a backoff doubling up to a minute, with jitter; no answer at all
    `max_consecutive_errors` times in a row fails at once. The deadline is the whole step's: the agent is told to kill
    the command when it is reached.
    """
    deadline = clock() + timeout_seconds
    invoke_id: str | None = None
    last: InvocationResult | None = None
    waiting_for = "the server to take the command"
    unanswered_in_a_row = refused_in_a_row = 0
    while True:
        delay = interval_seconds
        try:
            if invoke_id is None:
                invoke_id = run(instance_id, MIGRATE_SCRIPT, max(10, int(deadline - clock())))
                waiting_for = f"invocation {invoke_id}"
            else:
                last = read(invoke_id, instance_id)
                if last is not None and last.status == SUCCESS:
                    return last
                if last is not None and last.status == "Aborted" and last.error_code in AGENT_NOT_READY:
                    # Never started on the server: its agent is not up yet. Send it again.
                    waiting_for = f"the server's Cloud Assistant agent ({last.error_code})"
                    invoke_id = None
                elif last is not None and last.status not in _IN_PROGRESS:
                    raise MigrationError(_failure(instance_id, invoke_id, last))
            unanswered_in_a_row = refused_in_a_row = 0
        except NotReadyYetError as exc:
            waiting_for = str(exc)
            unanswered_in_a_row = refused_in_a_row = 0
        except TransientApiError as exc:
            waiting_for = str(exc)
            if exc.answered:
                unanswered_in_a_row, refused_in_a_row = 0, refused_in_a_row + 1
                delay = backoff(interval_seconds, refused_in_a_row, jitter)
            else:
                unanswered_in_a_row += 1
                if unanswered_in_a_row >= max_consecutive_errors:
                    raise MigrationError(
                        f"the ECS API failed {unanswered_in_a_row} times in a row: {exc}. {_STOPPED}"
                    ) from None
        remaining = deadline - clock()
        if remaining <= 0:
            break
        sleep(min(delay, remaining))

    state = f"last state {last.status}" if last is not None and invoke_id else f"still waiting for {waiting_for}"
    raise MigrationError(
        f"the schema migration on {instance_id} did not finish within {timeout_seconds:g}s ({state}). Cloud "
        f"Assistant stops the command at that deadline; the tool is idempotent and locks the database while it runs, "
        f"so the next `pulumi up` may run it again. {_STOPPED}"
    )


def _failure(instance_id: str, invoke_id: str, result: InvocationResult) -> str:
    exit_code = f"exit code {result.exit_code}" if result.exit_code is not None else "no exit code"
    why = "".join(f", {part}" for part in (result.error_code, result.error_info) if part)
    dropped = f" ({result.dropped_bytes} bytes of earlier output dropped)" if result.dropped_bytes else ""
    output = tail(result.output)
    said = f"; the tool's last output{dropped}:\n{output}\n" if output else "; the tool printed nothing. "
    return (
        f"the schema migration on {instance_id} failed ({result.status}, {exit_code}{why}, invocation {invoke_id})"
        f"{said}{_STOPPED}"
    )


@dataclass(frozen=True)
class SchemaMigrationArgs:
    # Zone A's first server of the release: a new one runs the migration once; an unchanged one never again.
    instance_id: pulumi.Input[str]
    region: str
    timeout_seconds: int
    # Only for ordering: the step waits until the database exists and the account may use it.
    database_name: pulumi.Input[str]
    database_user: pulumi.Input[str]
    interval_seconds: float = 5.0


class SchemaMigrationProvider(pulumi.dynamic.ResourceProvider):
    """Creating runs the migration and waits for it; a new server replaces (re-runs) it; nothing else does."""

    def __init__(self, endpoint: str | None = None, protocol: str | None = None) -> None:
        super().__init__()
        # Only tests set these, to reach a local stand-in for the ECS API.
        self.endpoint = endpoint
        self.protocol = protocol

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        # In a release's preview the new server's ID is not known yet: an unknown value never equals the old ID, so it
        # counts as a new server (only compared, never sorted: sorting unknowns crashed the gate's diff once). Any other
        # input (the timeout, the region) changes nothing already done: the schema stays migrated.
        new_server = olds.get("instanceId") != news.get("instanceId")
        return pulumi.dynamic.DiffResult(
            changes=new_server, replaces=["instanceId"] if new_server else [], delete_before_replace=False
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        endpoint, protocol = self.endpoint, self.protocol
        if endpoint is None:  # a rehearsal against the local cloud (localcloud/) points the step at its ECS API
            endpoint, protocol = rehearsal_endpoint(ECS_ENDPOINT_VARIABLE)
        assistant = CloudAssistant(str(props["region"]), endpoint, protocol)
        result = run_migration(
            assistant.run,
            assistant.result,
            str(props["instanceId"]),
            float(props["timeoutSeconds"]),
            poll_interval(float(props["intervalSeconds"])),
        )
        return pulumi.dynamic.CreateResult(
            id_=f"migration-{props['instanceId']}", outs={**props, "output": tail(result.output)}
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        # Never reached (diff only ever replaces), and nothing to do: a migration is not re-run for a new timeout.
        return pulumi.dynamic.UpdateResult(outs=news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # Nothing to undo: the schema stays as migrated. Releases only ever add to it (expand); what an old version
        # needed is removed by a later release's own migration (contract), never by deleting this step.
        return None


class SchemaMigration(pulumi.dynamic.Resource, module="ecs", name="SchemaMigration"):
    """Runs the release's database migrations on one new server, through Cloud Assistant, during `pulumi up`."""

    output: pulumi.Output[str]

    def __init__(self, name: str, args: SchemaMigrationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: Mapping[str, Any] = {
            "instanceId": args.instance_id,
            "region": args.region,
            "timeoutSeconds": args.timeout_seconds,
            "intervalSeconds": args.interval_seconds,
            "databaseName": args.database_name,
            "databaseUser": args.database_user,
            "output": None,
        }
        super().__init__(SchemaMigrationProvider(), name, dict(props), opts)
