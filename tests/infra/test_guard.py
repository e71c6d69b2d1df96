"""On a protected stack, settings that would replace the network or the database are refused unless allowed."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra import guard
from infra.config import parse_settings
from plan import offline
from plan.offline import Evaluation, stack_config


def prod_settings(**overrides: str) -> Any:
    config, _ = stack_config("prod")
    return parse_settings("ha-webapp", "prod", {**config, **overrides})


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
