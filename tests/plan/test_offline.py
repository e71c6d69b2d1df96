"""The offline evaluator: stack files as Pulumi reads them, and clean errors before anything is registered."""

from __future__ import annotations

import gc
import json
import sys
import textwrap
from pathlib import Path

import pulumi
import pytest

from plan import offline


def test_unknown_stack_lists_the_known_ones() -> None:
    with pytest.raises(
        offline.UnknownStackError, match=r"unknown stack 'staging'; this project has: dev, preprod, prod"
    ):
        offline.evaluate("staging")


def test_stack_files_are_read_as_the_language_host_passes_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: ha-webapp\n")
    (tmp_path / "Pulumi.x.yaml").write_text(
        textwrap.dedent(
            """\
            config:
              alicloud:region: cn-hangzhou
              ha-webapp:protect: true
              ha-webapp:app:
                serversPerZone: 2
              ha-webapp:apiToken:
                secure: v1:AAAA
              ha-webapp:nested:
                inner:
                  secure: v1:BBBB
            """
        )
    )
    monkeypatch.setattr(offline, "PROJECT_DIR", tmp_path)
    config, secret_keys = offline.stack_config("x")
    assert config == {
        "alicloud:region": "cn-hangzhou",
        "ha-webapp:protect": "true",
        "ha-webapp:app": '{"serversPerZone": 2}',
        "ha-webapp:apiToken": offline.SECRET_PLACEHOLDER,
        "ha-webapp:nested": json.dumps({"inner": offline.SECRET_PLACEHOLDER}),
    }
    assert secret_keys == ["ha-webapp:apiToken", "ha-webapp:nested"]


def test_invalid_settings_stop_the_program_before_any_resource(registrations: list[str]) -> None:
    with pytest.raises(pulumi.RunError) as raised:
        offline.evaluate("prod", overrides={"ha-webapp:imageId": "ubuntu", "ha-webapp:imagID": "m-x"})
    message = str(raised.value)
    assert "ha-webapp:imageId: expected a custom image ID" in message
    assert "ha-webapp:imagID: unknown key" in message
    assert registrations == ["pulumi:pulumi:Stack"], "resources were registered before the settings were checked"


def test_preview_leaves_cloud_computed_values_unknown() -> None:
    ev = offline.evaluate("dev", preview=True)
    assert ev.exports["db_host"] is None and ev.exports["url"] == "https://dev.my-sample-domain.xyz"
    (parameter,) = ev.of_type("alicloud:oos/secretParameter:SecretParameter")
    assert parameter.is_secret("value")
    assert ev.unknown_exports == {"db_host", "db_port", "eip_address", "slb_id", "vpc_id", "vswitch_ids"} | {
        "app_server_ids",
        "db_password",
        "db_password_parameter",  # its name's suffix is random, known after deploy
    }
    assert offline.evaluate("dev").unknown_exports == set()


def test_program_modules_are_fresh_per_stack_but_the_tools_are_kept() -> None:
    import infra.app_tier
    import infra.config
    import plan.model

    offline.evaluate("dev", preview=True)
    assert sys.modules["plan.model"] is plan.model, "the plan's classes must stay the ones callers hold"
    assert sys.modules["plan.offline"] is offline
    assert sys.modules["infra.app_tier"] is not infra.app_tier, "the program's modules are imported afresh"
    # The settings model has no state and is kept (building it again per stack is slow).
    assert sys.modules["infra.config"] is infra.config
    assert sys.modules["infra"].config is infra.config, "the kept module hangs on the new package"


def test_the_garbage_collector_is_back_on_after_an_evaluation() -> None:
    offline.evaluate("dev", preview=True)
    assert gc.isenabled()
    with pytest.raises(pulumi.RunError):
        offline.evaluate("dev", overrides={"ha-webapp:imageId": "ubuntu"})
    assert gc.isenabled(), "a failing program must not leave the collector off"
