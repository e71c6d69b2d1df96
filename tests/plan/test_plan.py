"""`python -m plan`: the tree, the JSON plan against its committed schema, exit codes, and what is never shown."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from plan import offline, plan_of
from plan.__main__ import main
from plan.model import Plan
from plan.offline import PROJECT_DIR, Evaluation
from plan.schema import SCHEMA_PATH, schema_text
from plan.text import Style, render
from tests.mutations import changed

SECRET_VALUES = (offline.SECRET_PLACEHOLDER, "Offline-Pa55word")


def plan_text(*evaluations: Evaluation, colour: bool = False) -> str:
    return render(plan_of(list(evaluations), "ha-webapp"), Style(colour))


def committed_schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text()))


# ---- the text tree


def test_tree_shows_what_a_reviewer_checks(previews: dict[str, Evaluation]) -> None:
    text = plan_text(previews["prod"])
    resources = previews["prod"].resources
    cloud = sum(1 for r in resources if r.custom)
    assert f"Stack prod: {len(resources)} resources to create ({cloud} cloud resources)" in text
    assert "+ pulumi:pulumi:Stack  ha-webapp-prod" in text
    for line in (
        "─ + ha-webapp:index:Network  network",
        "├─ + alicloud:vpc/switch:Switch  network-vsw-a",
        "zoneId     cn-hangzhou-h",
        "cidrBlock  10.30.1.0/24",
        "imageId                  m-bp1g7004ksh0oeuc1ne8",
        "instanceType             ecs.g7.large",
        "vswitchId                (known after deploy) <- network-vsw-b",
        "value                [secret] <- database-password",
        "+ pulumi-python:dynamic/slb:HealthGate  app-a-healthy",
        # The release's schema migration, on zone A's first server, with its timeout.
        "+ pulumi-python:dynamic/ecs:SchemaMigration  app-a-migration",
        "instanceId      (known after deploy) <- app-a1",
        "healthCheckUri       /health",
        "frontendPort         443",
        "tlsCipherPolicy      tls_cipher_policy_1_2_strict",
        "listenerForward  on",
        "Entry: HTTPS on 443 (tls_cipher_policy_1_2_strict, certificate cas); HTTP on 80 redirects to HTTPS",
        "    ha-webapp-prod-rds-cpu  acs_rds_dashboard CpuUsage Average > 80 for 3 periods of 300 s [critical]",
        "  prod: HTTPS on 443 (tls_cipher_policy_1_2_strict, certificate cas); HTTP on 80 redirects to HTTPS",
        "alicloud:rds/instance:Instance  database-rds  [protected]",
        "zoneIdSlaveA           cn-hangzhou-i",
        "masterZoneId      cn-hangzhou-h",
        "accountPassword  [secret] <- database-password",
        "    4  alicloud:ecs/instance:Instance",
    ):
        assert line in text, line
    for output in (
        r"db_password +\[secret\]",
        r"eip_address +\(known after deploy\)",
        r"url +https://www\.my-sample-domain\.xyz",
    ):
        assert re.search(rf"^    {output}$", text, re.MULTILINE), output
    # Not every input: tags and descriptions are in the JSON plan only.
    assert "managed-by" not in text and "description" not in text


def test_children_follow_their_parent_in_creation_order(previews: dict[str, Evaluation]) -> None:
    lines = plan_text(previews["dev"]).splitlines()
    # "│  ├─ + <type>  <name>  [options]": the name is the word after the type.
    names = [line.split("+ ", 1)[1].split()[1] for line in lines if "+ alicloud:" in line or "+ random:" in line]
    order = {name: index for index, name in enumerate(names)}
    for before, after in [
        ("network-vpc", "network-vsw-a"),
        ("network-sg", "network-sg-app-from-slb"),
        ("lb-slb", "lb-servers"),
        ("lb-servers", "lb-https"),
        ("lb-https", "lb-http"),
        ("database-rds", "database-db"),
        ("app-a1", "app-a1-member"),
    ]:
        assert order[before] < order[after], (before, after)


def test_resource_options_are_shown(previews: dict[str, Evaluation]) -> None:
    ev = changed(previews["dev"], "app-a1", replace_on_changes=("imageId",), delete_before_replace=True)
    assert "app-a1  [replace on changes to imageId; delete before replace]" in plan_text(ev)
    assert "[protected]" not in plan_text(previews["dev"])


def test_no_secret_value_is_ever_written(evaluations: dict[str, Evaluation]) -> None:
    # Deploy mode: the secrets have values here, so a leak would show.
    text = plan_text(*evaluations.values())
    document = plan_of(list(evaluations.values()), "ha-webapp").model_dump_json(by_alias=True)
    assert "Offline-Pa55word" in json.dumps(evaluations["prod"].exports["db_password"]), "the test needs a secret"
    for secret in SECRET_VALUES:
        assert secret not in text and secret not in document


def test_dynamic_provider_internals_are_never_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    program = tmp_path / "__main__.py"
    program.write_text(
        "import pulumi\n"
        "from pulumi.dynamic import CreateResult, Resource, ResourceProvider\n"
        "class Gate(ResourceProvider):\n"
        "    def create(self, props):\n"
        "        return CreateResult('gate', props)\n"
        "class HealthGate(Resource):\n"
        "    def __init__(self, name, zone):\n"
        "        super().__init__(Gate(), name, {'zoneId': zone})\n"
        "HealthGate('app-gate-a', 'cn-hangzhou-h')\n"
    )
    monkeypatch.setattr(offline, "PROGRAM", program)
    ev = offline.evaluate("dev", preview=True)
    (gate,) = ev.resources
    assert gate.type == "pulumi-python:dynamic:Resource" and "__provider" in gate.inputs
    blob = gate.value("__provider")
    assert isinstance(blob, str) and len(blob) > 100, "the pickled provider is what must not leak"
    plan = plan_of([ev], "ha-webapp")
    written = render(plan, Style(False)) + plan.model_dump_json(by_alias=True)
    assert "pulumi-python:dynamic:Resource  app-gate-a" in written and "zoneId  cn-hangzhou-h" in written
    assert "__provider" not in written and blob[:40] not in written


def test_colour_only_on_a_terminal(
    previews: dict[str, Evaluation], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "\033[" in plan_text(previews["dev"], colour=True)
    assert main(["dev"]) == 0
    assert "\033[" not in capsys.readouterr().out
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["dev"]) == 0
    assert "\033[32m+\033[0m" in capsys.readouterr().out
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["dev"]) == 0
    assert "\033[" not in capsys.readouterr().out


# ---- the JSON plan


def test_committed_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), "stale plan/plan.schema.json: run `python -m plan.schema`"


def test_json_plan_matches_its_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "plans" / "plan.json"
    assert main(["prod", "dev", "--format", "json", "--output", str(output)]) == 0
    assert "zone-loss audit passed" in capsys.readouterr().err
    document = json.loads(output.read_text())
    jsonschema.validate(document, committed_schema(), cls=jsonschema.Draft202012Validator)
    plan = Plan.model_validate(document)
    assert [s.stack for s in plan.stacks] == ["prod", "dev"] and plan.zone_loss_passed

    prod = document["stacks"][0]
    resources = {r["name"]: r for r in prod["resources"]}
    vsw_b = resources["network-vsw-b"]["urn"]
    server = resources["app-b1"]
    assert server["inputs"]["vswitchId"] == {"kind": "unknown", "dependsOn": [vsw_b]}
    secret = resources["database-password-parameter"]["inputs"]["value"]
    assert secret["kind"] == "secret" and "value" not in secret
    assert server["inputs"]["imageId"] == {"kind": "known", "value": "m-bp1g7004ksh0oeuc1ne8"}
    assert server["propertyDependencies"]["vswitchId"] == [vsw_b]
    assert vsw_b in server["dependencies"]
    assert resources["database-rds"]["protect"] is True
    assert resources["lb-http"]["inputs"]["frontendPort"] == {"kind": "known", "value": 80}
    assert prod["counts"]["alicloud:ecs/instance:Instance"] == 4
    assert prod["outputs"]["db_password"] == {"kind": "secret", "dependsOn": []}
    assert [(z["zone"], z["serves"]) for z in prod["zoneLoss"]] == [("cn-hangzhou-h", True), ("cn-hangzhou-i", True)]


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("inputs", "userData"), {"kind": "secret", "dependsOn": [], "value": "hunter2"}),
        (("inputs", "vswitchId"), {"kind": "unknown"}),
        (("inputs", "imageId"), {"kind": "maybe", "value": "m-1"}),
        (("protect",), "yes"),
    ],
    ids=["secret-with-value", "unknown-without-sources", "unknown-kind", "protect-not-bool"],
)
def test_schema_refuses_a_wrong_plan(previews: dict[str, Evaluation], path: tuple[str, ...], bad: object) -> None:
    document = json.loads(plan_of([previews["prod"]], "ha-webapp").model_dump_json(by_alias=True))
    validator = jsonschema.Draft202012Validator(committed_schema())
    assert list(validator.iter_errors(document)) == []
    server = next(r for r in document["stacks"][0]["resources"] if r["name"] == "app-a1")
    target = server
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    assert list(validator.iter_errors(document)), f"{path} = {bad!r} was accepted"


# ---- exit codes and messages


def test_unknown_stack_exits_2_with_the_known_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "staging"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown stack 'staging'; this project has: dev, preprod, prod" in captured.err
    assert "Traceback" not in captured.err


def test_invalid_settings_exit_2_listing_every_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    stack_file = (PROJECT_DIR / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.dev.yaml").write_text(stack_file)
    bad = stack_file.replace("m-bp1g7004ksh0oeuc1ne8", "ubuntu").replace("  ha-webapp:protect", "  ha-webapp:protected")
    (tmp_path / "Pulumi.broken.yaml").write_text(bad)
    monkeypatch.setattr(offline, "PROJECT_DIR", tmp_path)
    output = tmp_path / "plan.txt"
    assert main(["--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert "invalid settings for stack 'broken' (2 problems)" in err
    assert "ha-webapp:imageId: expected a custom image ID" in err and "ha-webapp:protected: unknown key" in err
    assert "Traceback" not in err
    assert not output.exists(), "nothing is written when a stack is invalid"


# One line of the real __main__.py changed: a topology that config validation cannot express, but a program can.
BROKEN_PROGRAMS = {
    "servers-in-one-zone": (
        'Placement("b", zone_b.id, network.vswitch_ids["b"])',
        'Placement("b", zone_a.id, network.vswitch_ids["a"])',
        "no app server outside cn-hangzhou-h",
    ),
    "rds-single-zone": (
        "standby_zone_id=zone_b.id,\n        primary_vswitch_id",
        "standby_zone_id=zone_a.id,\n        primary_vswitch_id",
        "database-rds: no database node outside cn-hangzhou-h",
    ),
    "servers-joined-to-the-slb-not-its-group": (
        "server_group_id=load_balancer.server_group_id",
        "server_group_id=load_balancer.slb_id",
        "no app server outside cn-hangzhou-i receives traffic from the load balancer (serving: none)",
    ),
    "slb-standby-in-master-zone": (
        "master_zone_id=zone_a.id,\n        standby_zone_id=zone_b.id",
        "master_zone_id=zone_a.id,\n        standby_zone_id=zone_a.id",
        "lb-slb: the load balancer has no zone left",
    ),
}


@pytest.mark.parametrize("case", BROKEN_PROGRAMS)
def test_broken_program_exits_1(
    case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original, broken, problem = BROKEN_PROGRAMS[case]
    source = offline.PROGRAM.read_text()
    assert source.count(original) == 1, f"the program changed; update the {case} case"
    program = tmp_path / "__main__.py"
    program.write_text(source.replace(original, broken))
    monkeypatch.setattr(offline, "PROGRAM", program)
    assert main(["dev", "prod"]) == 1
    out = capsys.readouterr().out
    assert "DOWN" in out and problem in out
    assert "Zone-loss audit FAILED for dev, prod." in out


def test_missing_graphviz_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert main(["dev", "--diagram", "unused"]) == 2
    assert "--diagram needs Graphviz's `dot`" in capsys.readouterr().err


def test_readme_run_command_from_a_shell(tmp_path: Path, previews: dict[str, Evaluation]) -> None:
    """What `make plan` runs, as a separate process: all stacks, the audit, and a picture per stack."""
    diagrams = tmp_path / "diagrams"
    done = subprocess.run(
        [sys.executable, "-m", "plan", "--diagram", str(diagrams)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    cloud = {s: sum(1 for r in ev.resources if r.custom) for s, ev in previews.items()}
    assert [line for line in done.stdout.splitlines() if line.startswith("Stack ")] == [
        f"Stack {s}: {len(ev.resources)} resources to create ({cloud[s]} cloud resources)" for s, ev in previews.items()
    ]
    assert "Zone-loss audit passed" in done.stdout and "\033[" not in done.stdout
    assert sorted(p.name for p in diagrams.iterdir()) == [
        f"{stack}.{fmt}" for stack in ("dev", "preprod", "prod") for fmt in ("png", "svg")
    ]


def test_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("STACK", "--format {text,json}", "--output PATH", "--diagram DIR", "exit status"):
        assert option in help_text
