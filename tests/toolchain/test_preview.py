"""Every stack previewed by the real engine: the CLI, language host and alicloud/random providers built from source
(toolchain/), the policy pack under the engine, and the engine's resources equal to the offline plan's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from plan.offline import evaluate
from tests.conftest import STACKS
from tests.pulumi_cli import Preview, Workspace, resources_of_urns, toolchain_bin


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = Workspace(tmp_path_factory.mktemp("engine"), toolchain_bin())
    for stack in STACKS:
        ws.init_stack(stack)
    yield ws


@pytest.fixture(scope="module")
def previews(workspace: Workspace) -> dict[str, Preview]:
    return {stack: workspace.preview(stack, check=False) for stack in STACKS}


def offline_resources(stack: str) -> set[tuple[str, str]]:
    """(type, name) of what the offline plan says the stack consists of."""
    return {(r.type, r.name) for r in evaluate(stack, preview=True).resources}


def mismatch(engine: set[tuple[str, str]], offline: set[tuple[str, str]]) -> list[str]:
    """How the engine's resources differ from the offline plan's, one line per resource."""
    return [f"only the engine registers {t} {n}" for t, n in sorted(engine - offline)] + [
        f"only the offline plan registers {t} {n}" for t, n in sorted(offline - engine)
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_the_real_preview_of_each_stack_passes(previews: dict[str, Preview], stack: str) -> None:
    preview = previews[stack]
    assert preview.returncode == 0, preview.output[-6000:]
    assert re.search(r"\+ \d+ to create", preview.output), preview.output[-2000:]


@pytest.mark.parametrize("stack", STACKS)
def test_the_policy_pack_ran_under_the_engine(previews: dict[str, Preview], stack: str) -> None:
    output = previews[stack].output
    assert re.search(r"Policy Packs run:\s*\n.*\n\s*ha-webapp\|local\|policy\s", output), output[-3000:]


@pytest.mark.parametrize("stack", STACKS)
def test_the_engine_and_the_offline_plan_agree(previews: dict[str, Preview], stack: str) -> None:
    engine = previews[stack].resources()
    assert engine, "the saved plan lists no resource"
    assert mismatch(engine, offline_resources(stack)) == []


def test_the_comparison_fails_when_they_disagree(previews: dict[str, Preview]) -> None:
    engine = previews["prod"].resources()
    offline = offline_resources("prod")
    server = next(r for r in offline if r[0] == "alicloud:ecs/instance:Instance")
    assert mismatch(engine, offline - {server}) == [f"only the engine registers {server[0]} {server[1]}"]
    assert mismatch(engine - {server}, offline) == [f"only the offline plan registers {server[0]} {server[1]}"]
    # dev has one server per zone, prod two: the plans of different stacks never agree.
    assert mismatch(previews["dev"].resources(), offline) != []


def test_urns_name_the_innermost_type() -> None:
    urns = [
        "urn:pulumi:prod::ha-webapp::pulumi:pulumi:Stack::ha-webapp-prod",
        "urn:pulumi:prod::ha-webapp::pulumi:providers:alicloud::default_4_0_0",
        "urn:pulumi:prod::ha-webapp::ha-webapp:index:AppTier$alicloud:ecs/instance:Instance::app-a1",
    ]
    assert resources_of_urns(urns) == [("alicloud:ecs/instance:Instance", "app-a1")]


# Provider settings a stack file may carry (infra/config.py lets the provider judge their values) that the real
# provider refuses when it checks its configuration, with the validators of terraform-provider-alicloud v1.285.0
# alicloud/provider.go: `protocol` StringInSlice([HTTP HTTPS], case-sensitive), `configuration_source`
# StringLenBetween(0, 1024), `assume_role.session_expiration` IntBetween(900, 43200).
PROVIDER_REFUSES = [
    ("protocol", ["alicloud:protocol", "https"], r"expected protocol to be one of \[HTTP HTTPS\], got https"),
    (
        "configuration-source",
        ["alicloud:configurationSource", "x" * 1025],
        r"expected length of configuration_source to be in the range \(0 - 1024\)",
    ),
    (
        "session-expiration",
        ["--path", "alicloud:assumeRole.sessionExpiration", "60"],
        r"expected .*session_expiration to be in the range \(900 - 43200\), got 60",
    ),
]


@pytest.mark.parametrize(("setting", "config_set", "message"), PROVIDER_REFUSES, ids=[p[0] for p in PROVIDER_REFUSES])
def test_the_real_provider_refuses_a_setting_at_preview(
    workspace: Workspace, tmp_path: Path, setting: str, config_set: list[str], message: str
) -> None:
    stack_file = workspace.stack_file("dev")
    committed = stack_file.read_text()
    try:
        workspace.run("config", "set", "--stack", "dev", *config_set[:-1], "--", config_set[-1])
        preview = workspace.preview("dev", check=False)
    finally:
        stack_file.write_text(committed)
    assert preview.returncode != 0
    assert re.search(message, preview.output), preview.output[-3000:]


def test_a_policy_violation_fails_the_preview_with_the_policy_message(workspace: Workspace) -> None:
    # An app server with a public address: the program never builds one, so a copy of it is edited to.
    app_tier = workspace.project / "infra" / "app_tier.py"
    original = app_tier.read_text()
    assert "internet_max_bandwidth_out=0," in original
    try:
        app_tier.write_text(original.replace("internet_max_bandwidth_out=0,", "internet_max_bandwidth_out=5,"))
        preview = workspace.preview("dev", check=False)
    finally:
        app_tier.write_text(original)
    assert preview.returncode != 0
    assert "app-servers-private" in preview.output, preview.output[-3000:]
