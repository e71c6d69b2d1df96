"""Settings changes `pulumi up` would apply in a harmful order are refused before anything is created, unless allowed:
on a protected stack those that replace the network or the database, on any deployed stack a new health-check path.
A new app port is not refused: it rolls out like an image, without touching the listener."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra import guard
from infra.config import parse_settings
from plan import offline
from plan.offline import Evaluation, Resource, stack_config
from tests.conftest import STACKS


def stack_settings(stack: str, **overrides: str) -> Any:
    config, _ = stack_config(stack)
    return parse_settings("ha-webapp", stack, {**config, **overrides})


def prod_settings(**overrides: str) -> Any:
    return stack_settings("prod", **overrides)


def with_app(stack: str, **app: Any) -> dict[str, str]:
    """A config override of the stack's `app` section with these keys changed."""
    section = json.loads(stack_config(stack)[0]["ha-webapp:app"])
    return {"ha-webapp:app": json.dumps({**section, **app})}


def deployed_pins(evaluations: dict[str, Evaluation], stack: str, **changes: Any) -> dict[str, Any]:
    """The pins a stack exported, as if they had been deployed with `changes`."""
    return {**evaluations[stack].exports[guard.PINS_OUTPUT], **changes}


@pytest.mark.parametrize(
    ("changed_key", "deployed_value", "what"),
    [
        ("network.zones[1].id", "cn-hangzhou-j", "network and the database in it"),
        ("network.zones[0].vswitchCidr", "10.30.9.0/24", "network and the database in it"),
        ("network.vpcCidr", "10.31.0.0/16", "network and the database in it"),
        ("database.name", "shop", "database of protected stack 'prod'"),
    ],
)
def test_a_change_that_replaces_the_network_or_database_of_prod_is_refused(
    changed_key: str, deployed_value: str, what: str
) -> None:
    settings = prod_settings()
    deployed = {**guard.pins(settings), changed_key: deployed_value}
    (problem,) = guard.guard_problems(settings, deployed)
    assert problem.key == f"ha-webapp:{changed_key}"
    assert f"is {deployed_value!r} in the deployed stack" in problem.message and what in problem.message
    assert "ha-webapp:allowReplacement" in problem.message


def test_unchanged_allowed_or_first_deployments_pass() -> None:
    settings = prod_settings()
    changed = {**guard.pins(settings), "network.zones[1].id": "cn-hangzhou-j"}
    assert guard.guard_problems(settings, guard.pins(settings)) == []
    assert guard.guard_problems(settings, None) == [], "a stack never deployed has nothing to protect yet"
    assert guard.guard_problems(prod_settings(**{"ha-webapp:allowReplacement": "true"}), changed) == []
    assert guard.guard_problems(prod_settings(**{"ha-webapp:protect": "false"}), changed) == []


def test_the_program_refuses_before_registering_anything(
    evaluations: dict[str, Evaluation], registrations: list[str]
) -> None:
    deployed = deployed_pins(evaluations, "prod", **{"network.zones[1].id": "cn-hangzhou-j"})
    with pytest.raises(pulumi.RunError, match=r"ha-webapp:network\.zones\[1\]\.id: is 'cn-hangzhou-j' in the deployed"):
        offline.evaluate("prod", deployed_outputs={guard.PINS_OUTPUT: deployed})
    assert registrations == ["pulumi:pulumi:Stack"]


def test_the_program_reads_its_own_deployed_pins(evaluations: dict[str, Evaluation]) -> None:
    deployed = deployed_pins(evaluations, "prod", **{"database.name": "shop"})
    allowed = offline.evaluate(
        "prod",
        overrides={"ha-webapp:allowReplacement": "true"},
        deployed_outputs={guard.PINS_OUTPUT: deployed},
    )
    assert allowed.exports[guard.PINS_OUTPUT]["database.name"] == "appdb"
    # dev is not protected: the same kind of change goes through.
    dev_deployed = deployed_pins(evaluations, "dev", **{"database.name": "shop"})
    assert offline.evaluate("dev", deployed_outputs={guard.PINS_OUTPUT: dev_deployed}).resources


def test_pins_are_plain_json() -> None:
    assert json.loads(json.dumps(guard.pins(prod_settings()))) == guard.pins(prod_settings())


# --- the health-check path, on every deployed stack ------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_a_new_health_check_path_on_a_deployed_stack_is_refused(stack: str) -> None:
    settings = stack_settings(stack, **with_app(stack, healthCheckPath="/ready"))
    (problem,) = guard.health_check_problems(settings, {"app.healthCheckPath": "/health"})
    assert problem.key == "ha-webapp:app.healthCheckPath"
    assert "is '/health' in the deployed stack" in problem.message
    assert "answers both '/health' and '/ready'" in problem.message
    assert "ha-webapp:allowHealthCheckChange" in problem.message


def test_an_unchanged_allowed_or_first_health_check_path_passes() -> None:
    deployed = {"app.healthCheckPath": "/health"}
    assert guard.health_check_problems(stack_settings("dev"), deployed) == []
    changed = stack_settings("dev", **with_app("dev", healthCheckPath="/ready"))
    assert guard.health_check_problems(changed, None) == [], "a stack never deployed has no servers to lose"
    allow = {"ha-webapp:allowHealthCheckChange": "true"}
    allowed = stack_settings("dev", **with_app("dev", healthCheckPath="/ready"), **allow)
    assert guard.health_check_problems(allowed, deployed) == []


def test_the_program_refuses_a_new_health_check_path_before_registering_anything(
    evaluations: dict[str, Evaluation], registrations: list[str]
) -> None:
    # dev is not protected: the replacement guard would let anything through, the health-check guard may not.
    deployed = evaluations["dev"].exports
    with pytest.raises(pulumi.RunError, match=r"ha-webapp:app\.healthCheckPath: is '/health' in the deployed stack"):
        offline.evaluate("dev", overrides=with_app("dev", healthCheckPath="/ready"), deployed_outputs=deployed)
    assert registrations == ["pulumi:pulumi:Stack"]


def test_an_allowed_health_check_path_reaches_the_listener_and_the_pins(evaluations: dict[str, Evaluation]) -> None:
    ev = offline.evaluate(
        "prod",
        overrides={**with_app("prod", healthCheckPath="/ready"), "ha-webapp:allowHealthCheckChange": "true"},
        deployed_outputs=evaluations["prod"].exports,
    )
    assert ev.exports[guard.HEALTH_CHECK_OUTPUT] == {"app.healthCheckPath": "/ready"}
    # The listener that serves (HTTPS on prod) carries the health check; the redirecting one on 80 has none.
    (serving,) = [r for r in ev.of_type("alicloud:slb/listener:Listener") if r.value("listenerForward") != "on"]
    assert serving.value("healthCheckUri") == "/ready"


# --- the app port: no guard, because nothing live changes ahead of the new servers -----------------------------------


def _by_name(ev: Evaluation) -> dict[str, Resource]:
    return {r.name: r for r in ev.resources}


@pytest.mark.parametrize("stack", STACKS)
def test_a_new_app_port_leaves_the_listener_alone_and_rolls_like_a_release(
    evaluations: dict[str, Evaluation], stack: str
) -> None:
    before = evaluations[stack]
    after = offline.evaluate(stack, overrides=with_app(stack, port=9090), deployed_outputs=before.exports)
    old, new = _by_name(before), _by_name(after)
    # Nothing the old servers are judged by changes in place at the start of the update...
    assert new["lb-http"].inputs == old["lb-http"].inputs, "the listener must not change with the app port"
    # ...the new port gets its own security-group rule, created before the old one goes...
    rule = new["network-sg-app-from-slb"]
    assert (rule.value("portRange"), rule.delete_before_replace) == ("9090/9090", False)
    # ...and every server is replaced (its boot settings name the port), joining on the new port next to the old one.
    for server in after.of_type("alicloud:ecs/instance:Instance"):
        assert server.value("userData") != old[server.name].value("userData"), f"{server.urn} would keep port 8080"
    members = after.of_type("alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment")
    assert members and {m.value("port") for m in members} == {9090}
    assert not any(m.delete_before_replace for m in members)
