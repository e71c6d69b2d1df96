"""python -m localcloud: the controls and views tests and users drive from a shell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcloud import LocalCloud
from localcloud.__main__ import main
from tests.localcloud.conftest import RULE, ZONE_A, build_network


def test_controls_and_views_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(tmp_path / "cloud")
    assert main(["--dir", folder, "init", "--scale", "1e-5", "--duration", f"{RULE}:create=5"]) == 0
    cloud = LocalCloud(folder)
    build_network(cloud)
    rule = next(r for r in cloud.inventory() if r["type"] == RULE)
    assert main(["--dir", folder, "zone-down", ZONE_A]) == 0
    assert main(["--dir", folder, "mark-bad-image", "m-bad"]) == 0
    assert main(["--dir", folder, "tamper", rule["id"], 'cidrIp="0.0.0.0/0"', "description=by hand"]) == 0
    capsys.readouterr()

    assert main(["--dir", folder, "inventory", "--json"]) == 0
    inventory = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert inventory[rule["id"]]["outputs"]["cidrIp"] == "0.0.0.0/0"
    assert inventory[rule["id"]]["inputs"]["description"] == "by hand"

    assert main(["--dir", folder, "timeline", "--json"]) == 0
    events = [e["event"] for e in json.loads(capsys.readouterr().out)]
    assert events[-3:] == ["zone-down", "mark-bad-image", "tamper"]
    assert cloud.store.snapshot()["durations"] == {RULE: {"create": 5.0}}


def test_a_refusal_exits_2_with_the_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(tmp_path / "cloud")
    main(["--dir", folder, "init"])
    assert main(["--dir", folder, "tamper", "sg-nope", "description=x"]) == 2
    assert "InvalidResourceId.NotFound" in capsys.readouterr().err
