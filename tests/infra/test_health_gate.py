"""The health gate against a local stand-in for the SLB API, and its polling rules with a fake clock."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi.output import Unknown

from infra.cloud_api import MAX_BACKOFF_SECONDS, TransientApiError
from infra.health_gate import HEALTHY, HealthGateError, HealthGateProvider, wait_until_healthy
from plan.offline import Evaluation
from tests.fakes.acs import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from tests.fakes.clock import FakeClock
from tests.fakes.slb import FakeSlb, serve
from tests.invariants import HEALTH_GATE


@pytest.fixture
def slb(acs_credentials: None) -> Iterator[FakeSlb]:
    with serve(FakeSlb(ACCESS_KEY_ID, ACCESS_KEY_SECRET)) as fake:
        yield fake


def props(fake: FakeSlb, servers: list[str], timeout: float = 2.0) -> dict[str, Any]:
    return {
        "loadBalancerId": fake.load_balancer_id,
        "listenerPort": fake.listener_port,
        "serverIds": servers,
        "region": "cn-hangzhou",
        "timeoutSeconds": timeout,
        "intervalSeconds": 0.02,
        "__provider": "serialized-provider",
    }


def provider(fake: FakeSlb) -> HealthGateProvider:
    return HealthGateProvider(endpoint=fake.endpoint, protocol="http")


def test_waits_until_every_new_server_is_healthy(slb: FakeSlb) -> None:
    slb.scripts = {
        "i-new1": ["unavailable", "abnormal", "normal"],
        "i-new2": ["abnormal", "abnormal", "abnormal", "normal"],
        "i-old": ["normal"],
    }
    result = provider(slb).create(props(slb, ["i-new1", "i-new2"]))
    assert result.outs is not None
    assert result.outs["statuses"] == {"i-new1": "normal", "i-new2": "normal"}
    assert len(slb.requests) == 4, "returned before both new servers were healthy"
    assert slb.requests[0] == {"LoadBalancerId": "lb-test", "ListenerPort": "80", "RegionId": "cn-hangzhou"}


def test_a_server_that_never_becomes_healthy_fails_the_update_naming_it(slb: FakeSlb) -> None:
    slb.scripts = {"i-good": ["normal"], "i-bad": ["unavailable", "abnormal"]}
    with pytest.raises(HealthGateError) as raised:
        provider(slb).update("gate-id", {}, props(slb, ["i-good", "i-bad"], timeout=0.3))
    message = str(raised.value)
    assert "i-bad is 'abnormal'" in message and "i-good" not in message
    assert "within 0.3s" in message and "stay in service" in message
    assert len(slb.requests) > 2


def test_a_server_not_yet_behind_the_listener_is_reported_as_such(slb: FakeSlb) -> None:
    slb.scripts = {"i-other": ["normal"]}
    with pytest.raises(HealthGateError, match="i-missing is 'not attached'"):
        provider(slb).create(props(slb, ["i-missing"], timeout=0.1))


@pytest.mark.parametrize(
    ("fake_changes", "expected"),
    [
        (
            {"errors": [(403, "Forbidden.RAM", "User not authorized to operate on the specified resource.")]},
            r"HTTP 403 Forbidden\.RAM .*User not authorized",
        ),
        ({"load_balancer_id": "lb-other"}, "InvalidLoadBalancerId.NotFound"),
        ({"access_key_secret": "the-api-knows-another-secret"}, "SignatureDoesNotMatch"),  # pragma: allowlist secret
    ],
    ids=["not-authorized", "unknown-load-balancer", "wrong-secret"],
)
def test_api_errors_fail_at_once_with_a_clear_message(
    slb: FakeSlb, fake_changes: dict[str, Any], expected: str
) -> None:
    slb.scripts = {"i-1": ["normal"]}
    gate_props = props(slb, ["i-1"])
    for key, value in fake_changes.items():
        setattr(slb, key, value)
    with pytest.raises(HealthGateError) as raised:
        provider(slb).create(gate_props)
    assert re.search(expected, str(raised.value)), str(raised.value)
    assert "DescribeHealthStatus" in str(raised.value)
    assert len(slb.raw_requests) == 1, "a refusal is not retried"


def test_a_busy_api_is_polled_again(slb: FakeSlb) -> None:
    slb.scripts = {"i-1": ["normal"]}
    slb.errors = [
        (503, "ServiceUnavailable", "The request has failed due to a temporary failure."),
        (400, "Throttling.User", "Request was denied due to user flow control."),
    ]
    result = provider(slb).create(props(slb, ["i-1"]))
    assert result.outs is not None and result.outs["statuses"] == {"i-1": "normal"}
    assert len(slb.requests) == 3


def test_credentials_are_used_but_never_logged(
    slb: FakeSlb, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    slb.scripts = {"i-1": ["abnormal"]}
    slb.errors = [(403, "Forbidden.RAM", "denied")]
    messages = []
    for timeout in (0.1, 0.1):  # one refusal, then one timeout
        with pytest.raises(HealthGateError) as raised:
            provider(slb).create(props(slb, ["i-1"], timeout=timeout))
        messages.append(str(raised.value))
    out, err = capfd.readouterr()
    seen = "\n".join([*messages, caplog.text, out, err])
    assert ACCESS_KEY_SECRET not in seen and ACCESS_KEY_ID not in seen
    # ...while the requests were signed with exactly those keys (the stand-in checks the signature).
    assert all(f"Credential={ACCESS_KEY_ID}" in r for r in slb.raw_requests)


def test_the_timeout_is_kept_without_sleeping_past_it() -> None:
    clock = FakeClock()
    with pytest.raises(HealthGateError, match="within 600s: i-1 is 'abnormal'"):
        wait_until_healthy(lambda: {"i-1": "abnormal"}, ["i-1"], 600, 5, clock, clock.sleep)
    assert clock.now <= 600 and len(clock.sleeps) == 120


def test_an_unreachable_api_stops_the_gate_without_waiting_the_whole_timeout() -> None:
    clock = FakeClock()

    def unreachable() -> dict[str, str]:
        raise TransientApiError("DescribeHealthStatus on lb-1: ConnectionRefusedError")

    with pytest.raises(HealthGateError, match=r"failed 6 times in a row: .*ConnectionRefusedError"):
        wait_until_healthy(unreachable, ["i-1"], 600, 5, clock, clock.sleep)
    assert clock.now == 25


def test_diff_waits_again_only_for_another_set_of_servers() -> None:
    gate = HealthGateProvider()
    old = {
        "loadBalancerId": "lb-1",
        "listenerPort": 80,
        "serverIds": ["i-1", "i-2"],
        "region": "cn-hangzhou",
        "timeoutSeconds": 600,
    }
    assert gate.diff("id", old, {**old, "serverIds": ["i-2", "i-1"]}).changes is False
    assert gate.diff("id", old, {**old, "timeoutSeconds": 900}).changes is False
    replaced = gate.diff("id", old, {**old, "serverIds": ["i-1", "i-3"]})
    assert replaced.changes is True and replaced.replaces == []
    # A release's preview: the new servers' IDs are not known yet (the real engine showed this; sorting them failed).
    previewed = gate.diff("id", old, {**old, "serverIds": [Unknown(), Unknown()]})
    assert previewed.changes is True and previewed.replaces == []
    assert gate.diff("id", old, {**old, "loadBalancerId": Unknown()}).changes is True


def test_the_engine_can_load_the_gate_provider_from_any_directory(
    evaluations: dict[str, Evaluation], tmp_path: Path
) -> None:
    """The engine unpickles the provider in its own Python process; `infra` must import without the project dir."""
    (gate, *_) = evaluations["dev"].of_type(HEALTH_GATE)
    load = "import base64, sys, dill; p = dill.loads(base64.b64decode(sys.stdin.read())); print(type(p).__name__)"
    result = subprocess.run(
        [sys.executable, "-I", "-c", load],
        input=gate.value("__provider"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "HealthGateProvider", result.stderr[-2000:]


# --- throttling and busy answers: back off with jitter, within the timeout -------------------------------------------

# (id, HTTP status, error code ("" = none in the body), message): every documented "not now" answer.
NOT_NOW = [
    ("429-without-code", 429, "", "Too Many Requests"),
    ("503-without-code", 503, "", "Service Unavailable"),
    ("load-balancer-busy", 400, "IncorrectLoadBalancerStatus", "The specified load balancer is being configured."),
    ("throttling-user", 400, "Throttling.User", "Request was denied due to user flow control."),
    ("throttling-api", 400, "Throttling.Api", "Request was denied due to api flow control."),
    ("throttling", 400, "Throttling", "Request was denied due to flow control."),
    ("system-busy", 400, "SystemBusy", "The system is busy."),
    ("service-unavailable", 503, "ServiceUnavailable", "The request has failed due to a temporary failure."),
]


@pytest.mark.parametrize(("status", "code", "message"), [c[1:] for c in NOT_NOW], ids=[c[0] for c in NOT_NOW])
def test_a_not_now_answer_is_polled_again(slb: FakeSlb, status: int, code: str, message: str) -> None:
    slb.scripts = {"i-1": ["normal"]}
    slb.errors = [(status, code, message)] * 2
    result = provider(slb).create(props(slb, ["i-1"]))
    assert result.outs is not None and result.outs["statuses"] == {"i-1": "normal"}
    assert len(slb.requests) == 3


def throttled_for(polls: int) -> Callable[[], dict[str, str]]:
    answers = iter(range(polls))

    def read() -> dict[str, str]:
        if next(answers, None) is not None:
            raise TransientApiError("DescribeHealthStatus on lb-1: HTTP 400 Throttling.User", answered=True)
        return {"i-1": HEALTHY}

    return read


def test_throttling_backs_off_exponentially_and_never_fails_before_the_timeout() -> None:
    clock = FakeClock()
    statuses = wait_until_healthy(throttled_for(12), ["i-1"], 600, 5, clock, clock.sleep, jitter=lambda: 1.0)
    assert statuses == {"i-1": HEALTHY}, "twelve throttled polls in a row are not a failure"
    assert clock.sleeps[:5] == [5, 10, 20, 40, 60], "doubling from the interval, up to the cap"
    assert max(clock.sleeps) == MAX_BACKOFF_SECONDS and clock.now <= 600


@pytest.mark.parametrize(("draw", "first_sleeps"), [(0.0, [2.5, 5.0, 10.0]), (0.5, [3.75, 7.5, 15.0])])
def test_the_backoff_is_jittered_between_half_and_all_of_it(draw: float, first_sleeps: list[float]) -> None:
    clock = FakeClock()
    wait_until_healthy(throttled_for(3), ["i-1"], 600, 5, clock, clock.sleep, jitter=lambda: draw)
    assert clock.sleeps == first_sleeps


def test_throttled_until_the_deadline_fails_at_the_deadline_naming_the_answer() -> None:
    clock = FakeClock()
    with pytest.raises(HealthGateError, match=r"within 300s: no status was read; the last poll failed: .*Throttling"):
        wait_until_healthy(throttled_for(10**6), ["i-1"], 300, 5, clock, clock.sleep, jitter=lambda: 1.0)
    assert clock.now == 300, "the last poll is at the deadline, not before it and never after"


def test_the_default_jitter_is_random() -> None:
    runs = []
    for _ in range(2):
        clock = FakeClock()
        wait_until_healthy(throttled_for(4), ["i-1"], 600, 5, clock, clock.sleep)
        runs.append(clock.sleeps)
    assert all(5 * 2**i * 0.5 <= s <= 5 * 2**i for run in runs for i, s in enumerate(run))
    assert runs[0] != runs[1], "two gates throttled together must not poll again in step"


# --- a server behind two back-end ports is healthy only when both are ----------------------------------------------

TWO_PORTS = [
    ("normal-then-abnormal", ["normal"], ["abnormal"]),
    ("abnormal-then-normal", ["abnormal"], ["normal"]),
    ("unavailable-then-normal", ["unavailable"], ["normal"]),
]


@pytest.mark.parametrize(("first", "second"), [c[1:] for c in TWO_PORTS], ids=[c[0] for c in TWO_PORTS])
def test_a_server_abnormal_on_one_of_two_ports_does_not_pass(slb: FakeSlb, first: list[str], second: list[str]) -> None:
    slb.scripts = {"i-1": first, "i-2": ["normal"]}
    slb.second_port_scripts = {"i-1": second}
    with pytest.raises(HealthGateError, match=r"i-1 is '(abnormal|unavailable)'"):
        provider(slb).create(props(slb, ["i-1", "i-2"], timeout=0.1))


def test_a_server_normal_on_both_ports_passes(slb: FakeSlb) -> None:
    slb.scripts = {"i-1": ["abnormal", "normal"]}
    slb.second_port_scripts = {"i-1": ["normal"]}
    result = provider(slb).create(props(slb, ["i-1"]))
    assert result.outs is not None and result.outs["statuses"] == {"i-1": "normal"}
