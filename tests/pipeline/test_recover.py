"""python -m pipeline.recover: what an interrupted update left, read from a `pulumi stack export`.

The export below has the shape pulumi 3.260 wrote when the lifecycle test killed a release mid-create
(tests/localcloud/test_lifecycle.py runs the whole procedure against the real engine). Seen failing: with the IDs
under the pending URN not collected, with the secret input printed, with `--clear-pending-creates` offered for an
update-only state, and with a missing file raising instead of exiting 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline import recover

SERVER = "alicloud:ecs/instance:Instance"
URN = f"urn:pulumi:prod::ha-webapp::ha-webapp:index:AppTier${SERVER}::app-a1"
ALARM_URN = "urn:pulumi:prod::ha-webapp::ha-webapp:index:Alarms$alicloud:cms/alarm:Alarm::alarms-app-cpu"
# A secret value as `pulumi stack export` writes it: the signature key and the ciphertext, never the value itself.
SECRET = {
    "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",  # pragma: allowlist secret
    "ciphertext": "v1:abc",
}


def server_inputs(image: str) -> dict[str, Any]:
    return {
        "instanceName": "ha-webapp-prod-app-a1",
        "imageId": image,
        "vswitchId": "vsw-bp1a",
        "userData": SECRET,
        "securityGroups": ["sg-bp1a"],
        "tags": {"stack": "prod", "project": "ha-webapp", "role": "app"},
    }


def export(*operations: dict[str, Any]) -> dict[str, Any]:
    """A stack whose server app-a1 (i-old) was being replaced by one from a new image when the engine died."""
    old = {"urn": URN, "type": SERVER, "id": "i-old", "custom": True, "inputs": server_inputs("m-old")}
    return {"version": 3, "deployment": {"resources": [old], "pending_operations": list(operations)}}


CREATING = {
    "type": "creating",
    "resource": {"urn": URN, "type": SERVER, "custom": True, "inputs": server_inputs("m-new")},
}
UPDATING = {"type": "updating", "resource": {"urn": ALARM_URN, "type": "alicloud:cms/alarm:Alarm", "id": "al-1"}}


def test_a_pending_create_names_what_to_look_for_and_what_to_keep() -> None:
    (operation,) = recover.pending_operations(export(CREATING))
    assert operation.kind == "creating" and operation.resource_type == SERVER and operation.name == "app-a1"
    assert operation.ids_in_state == ("i-old",), "the server being replaced must be named, so that it is kept"
    assert operation.identity == {
        "instanceName": "ha-webapp-prod-app-a1",
        "imageId": "m-new",
        "vswitchId": "vsw-bp1a",
        "tag:project": "ha-webapp",
        "tag:role": "app",
        "tag:stack": "prod",
    }, "secret and structured inputs stay out"


def test_the_runbook_releases_and_clears_only_when_a_create_is_pending() -> None:
    with_create = "\n".join(recover.runbook("prod", recover.pending_operations(export(CREATING, UPDATING))))
    assert "keep i-old" in with_create and "instanceName=ha-webapp-prod-app-a1" in with_create
    assert "pulumi refresh --stack prod --yes --clear-pending-creates" in with_create
    assert "DeleteInstance" in with_create

    update_only = "\n".join(recover.runbook("prod", recover.pending_operations(export(UPDATING))))
    assert "--clear-pending-creates" not in update_only and "DeleteInstance" not in update_only
    assert "pulumi refresh --stack prod --yes" in update_only

    assert recover.runbook("prod", []) == ["prod: no pending operations; nothing to recover."]


def test_the_command_reads_a_saved_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "prod.json"
    saved.write_text(json.dumps(export(CREATING)))
    assert recover.main(["--stack", "prod", "--export", str(saved)]) == 0
    assert "1 pending operation(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "No such file"),
        ("{not json", "not JSON"),
        ('{"version": 3}', "no `deployment` object"),
        ('{"deployment": {"pending_operations": [{"resource": {}}]}}', "without `type` or `resource.urn`"),
    ],
)
def test_an_unreadable_export_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, reason: str
) -> None:
    saved = tmp_path / "prod.json"
    if content is not None:
        saved.write_text(content)
    assert recover.main(["--stack", "prod", "--export", str(saved)]) == 2
    err = capsys.readouterr().err
    assert reason in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
