"""The schema migration step against a local stand-in for the ECS API (Cloud Assistant), and its waiting rules with a
fake clock.

Seen failing: with the agent-not-ready retry removed from run_migration (an Aborted invocation treated as a failure),
test_a_server_whose_agent_is_not_up_yet_is_asked_again failed; with the backoff replaced by the plain interval,
test_throttling_backs_off_and_never_fails_before_the_timeout failed; with the tool's output left out of the failure
message, test_a_failing_migration_stops_the_update_with_the_tools_message failed; with RunCommand's "not Running yet"
codes treated as refusals, test_a_server_whose_agent_is_not_up_yet_is_asked_again failed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi.output import Unknown

from infra.cloud_api import TransientApiError
from infra.migration import (
    MIGRATE_SCRIPT,
    MIGRATE_TOOL,
    InvocationResult,
    MigrationError,
    NotReadyYetError,
    SchemaMigrationProvider,
    run_migration,
)
from tests.fakes.acs import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import FakeEcs, State, serve

APPLIED = "Applying 0042_add_orders_index... OK\nApplied 1 migration."


@pytest.fixture
def ecs(acs_credentials: None) -> Iterator[FakeEcs]:
    with serve(FakeEcs(ACCESS_KEY_ID, ACCESS_KEY_SECRET)) as fake:
        yield fake


def props(fake: FakeEcs, timeout: float = 2.0) -> dict[str, Any]:
    return {
        "instanceId": fake.instance_id,
        "region": "cn-hangzhou",
        "timeoutSeconds": timeout,
        "intervalSeconds": 0.02,
        "databaseName": "appdb",
        "databaseUser": "app",
        "__provider": "serialized-provider",
    }


def provider(fake: FakeEcs) -> SchemaMigrationProvider:
    return SchemaMigrationProvider(endpoint=fake.endpoint, protocol="http")


def test_a_migration_runs_the_tool_after_the_first_boot_and_waits_for_success(ecs: FakeEcs) -> None:
    ecs.invocations = [[State("Pending"), State("Running"), State("Running"), State("Success", 0, APPLIED)]]
    result = provider(ecs).create(props(ecs))
    assert result.outs is not None and result.outs["output"] == APPLIED
    assert ecs.scripts_sent() == [MIGRATE_SCRIPT]
    # The first boot first (it writes the app's settings), then the image's wrapper, as the last command.
    assert MIGRATE_SCRIPT.index("cloud-init status --wait") < MIGRATE_SCRIPT.index(f"exec {MIGRATE_TOOL}")
    run = next(q for a, q in ecs.calls if a == "RunCommand")
    assert run["Type"] == "RunShellScript" and run["InstanceId.1"] == ecs.instance_id
    assert run["Timeout"] == "10", "the agent is given the time left, and at least 10 s"


def test_a_failing_migration_stops_the_update_with_the_tools_message(ecs: FakeEcs) -> None:
    noise = "\n".join(f"line {n}" for n in range(200))
    message = "django.db.utils.OperationalError: (1050, \"Table 'orders' already exists\")"
    ecs.invocations = [[State("Running"), State("Failed", 1, f"{noise}\n{message}\n", "ExitCodeNonzero")]]
    with pytest.raises(MigrationError) as raised:
        provider(ecs).create(props(ecs))
    text = str(raised.value)
    assert message in text and "exit code 1" in text and ecs.instance_id in text
    assert "line 0\n" not in text, "only the tail of a long output"
    assert "before any server of the new version joined the load balancer" in text
    assert ecs.started() == 1, "a migration that ran and failed is not run again"


def test_a_server_whose_agent_is_not_up_yet_is_asked_again(ecs: FakeEcs) -> None:
    # Not Running yet (the API refuses), then the agent not online (the invocation is Aborted, never started).
    ecs.errors = {"RunCommand": [(403, "IncorrectInstanceStatus", "The current status of the resource does not support "
                                                                  "this operation.")]}  # fmt: skip
    ecs.invocations = [
        [State("Aborted", None, "", "ClientNotRunning", "the aliyun service is not running on the instance")],
        [State("Running"), State("Success", 0, APPLIED)],
    ]
    result = provider(ecs).create(props(ecs))
    assert result.outs is not None and result.outs["output"] == APPLIED
    assert [a for a, _ in ecs.calls].count("RunCommand") == 3 and ecs.started() == 2


def test_throttling_is_retried(ecs: FakeEcs) -> None:
    throttled = (400, "Throttling.User", "Request was denied due to user flow control.")
    ecs.errors = {"RunCommand": [throttled], "DescribeInvocationResults": [throttled, (503, "", "Unavailable")]}
    ecs.invocations = [[State("Success", 0, APPLIED)]]
    result = provider(ecs).create(props(ecs))
    assert result.outs is not None and result.outs["output"] == APPLIED


def test_a_migration_that_does_not_finish_in_time_fails_naming_its_last_state(ecs: FakeEcs) -> None:
    ecs.invocations = [[State("Running")]]
    with pytest.raises(MigrationError, match=r"did not finish within 0\.3s \(last state Running\)"):
        provider(ecs).create(props(ecs, timeout=0.3))


@pytest.mark.parametrize(
    ("fake_changes", "expected"),
    [
        ({"errors": {"RunCommand": [(403, "Forbidden.RAM", "User not authorized.")]}}, r"HTTP 403 Forbidden\.RAM"),
        ({"instance_id": "i-other"}, "InvalidInstanceId.NotFound"),
        ({"access_key_secret": "the-api-knows-another-secret"}, "SignatureDoesNotMatch"),  # pragma: allowlist secret
    ],
    ids=["not-authorized", "unknown-instance", "wrong-secret"],
)
def test_api_refusals_fail_at_once(ecs: FakeEcs, fake_changes: dict[str, Any], expected: str) -> None:
    migration_props = props(ecs)
    for key, value in fake_changes.items():
        setattr(ecs, key, value)
    with pytest.raises(MigrationError) as raised:
        provider(ecs).create(migration_props)
    assert re.search(expected, str(raised.value)), str(raised.value)
    assert "ecs:RunCommand" in str(raised.value)
    assert len(ecs.raw_requests) == 1, "a refusal is not retried"


def test_credentials_are_used_but_never_logged(
    ecs: FakeEcs, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    ecs.invocations = [[State("Failed", 2, "boom")]]
    with pytest.raises(MigrationError) as raised:
        provider(ecs).create(props(ecs))
    out, err = capfd.readouterr()
    seen = "\n".join([str(raised.value), caplog.text, out, err])
    assert ACCESS_KEY_SECRET not in seen and ACCESS_KEY_ID not in seen
    assert all(f"Credential={ACCESS_KEY_ID}" in r for r in ecs.raw_requests)


def test_diff_replaces_only_for_a_new_server() -> None:
    step = SchemaMigrationProvider()
    old = {"instanceId": "i-1", "region": "cn-hangzhou", "timeoutSeconds": 1800, "databaseName": "appdb"}
    assert step.diff("id", old, {**old, "timeoutSeconds": 3600}).changes is False
    replaced = step.diff("id", old, {**old, "instanceId": "i-2"})
    assert replaced.changes is True and replaced.replaces == ["instanceId"] and not replaced.delete_before_replace
    # A release's preview: the new server's ID is not known yet.
    previewed = step.diff("id", old, {**old, "instanceId": Unknown()})
    assert previewed.changes is True and previewed.replaces == ["instanceId"]


def test_deleting_the_step_touches_nothing() -> None:
    # No endpoint: any call would fail. Nothing to undo: the schema stays migrated.
    SchemaMigrationProvider(endpoint="127.0.0.1:9", protocol="http").delete("id", {"instanceId": "i-1"})


# --- the waiting rules, with a fake clock -----------------------------------------------------------------------------


def test_throttling_backs_off_and_never_fails_before_the_timeout() -> None:
    clock = FakeClock()

    def throttled(*_: Any) -> str:
        raise TransientApiError("RunCommand on i-1: HTTP 400 Throttling.User", answered=True)

    with pytest.raises(MigrationError, match=r"within 600s .*Throttling\.User"):
        run_migration(throttled, lambda *_: None, "i-1", 600, 5, clock, clock.sleep, jitter=lambda: 1.0)
    assert clock.sleeps[:5] == [5, 10, 20, 40, 60] and max(clock.sleeps) == 60
    assert clock.now == 600


def test_an_unreachable_api_fails_without_waiting_the_whole_timeout() -> None:
    clock = FakeClock()

    def unreachable(*_: Any) -> str:
        raise TransientApiError("RunCommand on i-1: ConnectionRefusedError")

    with pytest.raises(MigrationError, match=r"failed 6 times in a row"):
        run_migration(unreachable, lambda *_: None, "i-1", 1800, 5, clock, clock.sleep)
    assert clock.now == 25


def test_a_server_never_ready_times_out_saying_what_it_waited_for() -> None:
    clock = FakeClock()

    def not_running(*_: Any) -> str:
        raise NotReadyYetError("RunCommand on i-1: HTTP 403 IncorrectInstanceStatus")

    with pytest.raises(MigrationError, match=r"within 120s \(still waiting for RunCommand on i-1: .*IncorrectInstance"):
        run_migration(not_running, lambda *_: None, "i-1", 120, 5, clock, clock.sleep)


def test_the_agent_is_told_the_time_left() -> None:
    clock = FakeClock()
    timeouts: list[int] = []

    def run(_instance: str, _script: str, timeout: int) -> str:
        timeouts.append(timeout)
        return f"t-{len(timeouts)}"

    def read(invoke_id: str, _instance: str) -> InvocationResult:
        if invoke_id == "t-1":
            return InvocationResult("Aborted", None, "", "ClientNotResponse")
        return InvocationResult("Success", 0, APPLIED)

    run_migration(run, read, "i-1", 600, 5, clock, clock.sleep)
    assert timeouts == [600, 590]
