"""HealthGate: a step of `pulumi up` that waits until the load balancer reports given servers healthy.

A release replaces app servers zone by zone. The gate of a zone depends on the zone's new SLB memberships, and the next
zone's servers depend on the gate, so the next zone is not touched until the load balancer itself has seen every new
server of this zone answer its health check. If that does not happen within the timeout, the gate fails the update and
names each server with its last status; the old servers, whose removal Pulumi defers to the end of a successful update,
stay in service.

The gate is a Pulumi dynamic resource: its provider runs inside the Pulumi engine's Python plugin process and calls the
SLB API (DescribeHealthStatus) through the Alibaba Cloud Python SDK, with the default credential chain (environment
variables, OIDC role assumption in CI, or an ECS RAM role).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic
from pulumi.output import Unknown

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

# Statuses DescribeHealthStatus reports for a backend server on a listener.
HEALTHY = "normal"
NOT_A_MEMBER = "not attached"
# Inputs whose change means a different set of servers to wait for.
_WATCHED_INPUTS = ("loadBalancerId", "listenerPort", "serverIds", "region")
# The SLB's own "not now": the load balancer is busy with another change (it is being configured), which a later poll
# outlives. The "not now" answers of every API are in infra/cloud_api.py.
_BUSY_CODES = frozenset({"IncorrectLoadBalancerStatus"})
# Where a rehearsal's SLB API is (see HealthGateProvider._wait); unset in real deployments.
SLB_ENDPOINT_VARIABLE = "HA_WEBAPP_SLB_ENDPOINT"


class HealthGateError(Exception):
    """The servers did not become healthy in time, or the SLB API refused to say."""


@dataclass(frozen=True)
class HealthGateArgs:
    load_balancer_id: pulumi.Input[str]
    listener_port: int
    server_ids: Sequence[pulumi.Input[str]]
    region: str
    timeout_seconds: int
    interval_seconds: float = 5.0


StatusReader = Callable[[str, int], dict[str, str]]


def wait_until_healthy(
    read_statuses: Callable[[], dict[str, str]],
    server_ids: Sequence[str],
    timeout_seconds: float,
    interval_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_consecutive_errors: int = 6,
    jitter: Callable[[], float] = random.random,
) -> dict[str, str]:
    """Poll until every server in `server_ids` is healthy; return their statuses or raise HealthGateError.

    When the API answers "not now" (throttled, busy, unavailable), the next poll waits twice as long as the last,
    up to MAX_BACKOFF_SECONDS, with jitter (half to all of it, so that the gates of several stacks do not poll in
    step), and never past the timeout: throttling alone never fails a release before its timeout. A poll that got
    no answer at all is retried at the normal interval, but not forever: `max_consecutive_errors` in a row mean the
    API is unreachable from here, which waiting out the whole timeout would not change.
    """
    deadline = clock() + timeout_seconds
    statuses: dict[str, str] = {}
    last_error: TransientApiError | None = None
    unanswered_in_a_row = 0
    refused_in_a_row = 0
    while True:
        delay = interval_seconds
        try:
            reported = read_statuses()
            statuses = {server: reported.get(server, NOT_A_MEMBER) for server in server_ids}
            last_error, unanswered_in_a_row, refused_in_a_row = None, 0, 0
            if all(status == HEALTHY for status in statuses.values()):
                return statuses
        except TransientApiError as exc:
            last_error = exc
            if exc.answered:
                unanswered_in_a_row, refused_in_a_row = 0, refused_in_a_row + 1
                delay = backoff(interval_seconds, refused_in_a_row, jitter)
            else:
                unanswered_in_a_row += 1
                if unanswered_in_a_row >= max_consecutive_errors:
                    raise HealthGateError(
                        f"the SLB API failed {unanswered_in_a_row} times in a row: {exc}. The update stops here; "
                        "the servers it was replacing stay in service."
                    ) from None
        remaining = deadline - clock()
        if last_error is not None and last_error.answered:
            # A throttled gate still gets its last look just before the deadline.
            delay = min(delay, remaining)
            if delay <= 0:
                break
        elif clock() + interval_seconds > deadline:
            break
        sleep(delay)

    lagging = ", ".join(f"{s} is {v!r}" for s, v in sorted(statuses.items()) if v != HEALTHY)
    detail = f"; the last poll failed: {last_error}" if last_error else ""
    raise HealthGateError(
        f"not every server became healthy within {timeout_seconds:g}s: {lagging or 'no status was read'}{detail}. "
        "The update stops here; the servers it was replacing stay in service."
    )


class SlbHealthReader:
    """Reads the health of a CLB listener's backends with the Alibaba Cloud SDK (DescribeHealthStatus)."""

    def __init__(self, region: str, endpoint: str | None = None, protocol: str | None = None) -> None:
        from alibabacloud_slb20140515.client import Client

        self.region = region
        self._client = Client(sdk_config(region, endpoint, protocol))

    def __call__(self, load_balancer_id: str, listener_port: int) -> dict[str, str]:
        from alibabacloud_slb20140515 import models
        from darabonba.runtime import RuntimeOptions

        request = models.DescribeHealthStatusRequest(
            region_id=self.region, load_balancer_id=load_balancer_id, listener_port=listener_port
        )
        runtime = RuntimeOptions(connect_timeout=5000, read_timeout=10000)
        try:
            response = self._client.describe_health_status_with_options(request, runtime)
        except Exception as exc:  # the SDK raises its own hierarchy, plus plain network errors
            described = describe_error(exc)
            status = status_of(exc)
            if is_transient(status, error_code(exc), _BUSY_CODES):
                raise TransientApiError(
                    f"DescribeHealthStatus on {load_balancer_id}: {described}", answered=status is not None
                ) from None
            raise HealthGateError(
                f"DescribeHealthStatus on {load_balancer_id} failed: {described}. Check that the deploy "
                "credentials may call slb:DescribeHealthStatus on this load balancer."
            ) from None
        return _merge(response.body.backend_servers.backend_server if response.body.backend_servers else [])


def _merge(entries: Sequence[Any]) -> dict[str, str]:
    """One status per server: a server behind several ports is healthy only if every port is."""
    statuses: dict[str, str] = {}
    for entry in entries:
        previous = statuses.get(entry.server_id)
        if previous is None or previous == HEALTHY:
            statuses[entry.server_id] = entry.server_health_status
    return statuses


class HealthGateProvider(pulumi.dynamic.ResourceProvider):
    """Creating or updating a gate waits for health; deleting one has nothing to undo."""

    def __init__(self, endpoint: str | None = None, protocol: str | None = None) -> None:
        super().__init__()
        # Only tests override these, to reach a local stand-in for the SLB API.
        self.endpoint = endpoint
        self.protocol = protocol

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        # In a release's preview the new servers' IDs are not known yet: a value that is not known counts as changed.
        changed = [
            key
            for key in _WATCHED_INPUTS
            if _is_unknown(news.get(key)) or _comparable(olds.get(key)) != _comparable(news.get(key))
        ]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(id_=uuid.uuid4().hex, outs=self._wait(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs=self._wait(news))

    def _wait(self, props: dict[str, Any]) -> dict[str, Any]:
        endpoint, protocol = self.endpoint, self.protocol
        if endpoint is None:  # a rehearsal against the local cloud (localcloud/) points the gate at its SLB API
            endpoint, protocol = rehearsal_endpoint(SLB_ENDPOINT_VARIABLE)
        reader = SlbHealthReader(str(props["region"]), endpoint, protocol)
        load_balancer_id, listener_port = str(props["loadBalancerId"]), int(props["listenerPort"])
        statuses = wait_until_healthy(
            lambda: reader(load_balancer_id, listener_port),
            [str(s) for s in props["serverIds"]],
            float(props["timeoutSeconds"]),
            poll_interval(float(props["intervalSeconds"])),
        )
        return {**props, "statuses": statuses}


def _comparable(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


def _is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown) or (isinstance(value, list) and any(isinstance(v, Unknown) for v in value))


class HealthGate(pulumi.dynamic.Resource, module="slb", name="HealthGate"):
    """Waits, during `pulumi up`, until the SLB reports every given server healthy on the listener."""

    statuses: pulumi.Output[Mapping[str, str]]

    def __init__(self, name: str, args: HealthGateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "loadBalancerId": args.load_balancer_id,
            "listenerPort": args.listener_port,
            "serverIds": list(args.server_ids),
            "region": args.region,
            "timeoutSeconds": args.timeout_seconds,
            "intervalSeconds": args.interval_seconds,
            "statuses": None,
        }
        super().__init__(HealthGateProvider(), name, props, opts)
