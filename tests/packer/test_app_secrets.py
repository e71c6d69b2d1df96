"""The image's boot helper (packer/files/app_secrets.py) against a local stand-in for OOS on 127.0.0.1.

It runs as systemd would run it (a separate process with the settings the user data writes), and its retry rules are
checked in-process with a fake clock. The stack's own user data is checked to carry exactly what the helper and the
Alibaba Cloud credential chain read.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from plan.offline import Evaluation
from tests.fakes.acs import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from tests.fakes.clock import FakeClock
from tests.fakes.oos import FakeOos, serve
from tests.invariants import ECS, OOS_PARAMETER, RAM_ROLE

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "packer" / "files" / "app_secrets.py"
# Characters an environment file must escape, and a shell would expand.
PASSWORD = "p\"a\\ss$w0rd`x'y"  # pragma: allowlist secret
PARAMETER = "ha-webapp-dev-db-password-x7k2q9"  # pragma: allowlist secret (a name)
OLD_PASSWORD = "an-older-version"  # pragma: allowlist secret


def load_helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("app_secrets", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


helper = load_helper()


def server_environment(**overrides: str) -> dict[str, str]:
    """What app.service gives the helper: the user data's settings, test keys, and nothing else the SDK could use."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ALIBABA_CLOUD_", "ALICLOUD_", "AWS_")) and key not in ("HOME",)
    }
    environment = {
        **base,
        "HOME": "/nonexistent",  # no CLI profile to wander off to
        "DB_PASSWORD_PARAMETER": PARAMETER,
        "DB_PASSWORD_ROTATION": "3",
        "ALIBABA_CLOUD_REGION": "cn-hangzhou",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    environment.update(overrides)
    return {k: v for k, v in environment.items() if v}


@pytest.fixture
def oos() -> Iterator[FakeOos]:
    with serve(FakeOos(ACCESS_KEY_ID, ACCESS_KEY_SECRET, parameters={PARAMETER: [OLD_PASSWORD, PASSWORD]})) as fake:
        yield fake


def run(fake: FakeOos, output: Path, environment: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), "--output", str(output), "--endpoint", fake.endpoint, "--protocol", "http"]
    return subprocess.run([*command, *extra], env=environment, capture_output=True, text=True, timeout=60, check=False)


def systemd_value(line: str) -> tuple[str, str]:
    """Read one KEY="value" line back the way systemd's EnvironmentFile parser does for double quotes."""
    match = re.fullmatch(r'([A-Z_][A-Z0-9_]*)="((?:[^"\\]|\\.)*)"', line)
    assert match, line
    return match[1], re.sub(r"\\(.)", r"\1", match[2])


def test_writes_the_password_root_only_for_the_unit_to_read(oos: FakeOos, tmp_path: Path) -> None:
    output = tmp_path / "run" / "app" / "secrets.env"
    result = run(oos, output, server_environment())
    assert result.returncode == 0, result.stderr
    assert [systemd_value(line) for line in output.read_text().splitlines()] == [("DB_PASSWORD", PASSWORD)]
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert stat.S_IMODE(output.parent.stat().st_mode) == 0o700
    # The latest version, decrypted (without WithDecryption the API answers an empty value).
    assert oos.requests == [{"Name": PARAMETER, "RegionId": "cn-hangzhou", "WithDecryption": "True"}]
    assert PASSWORD not in result.stdout + result.stderr
    assert list(output.parent.iterdir()) == [output]  # no temporary file left behind


def test_missing_settings_name_each_key_and_ask_nothing(oos: FakeOos, tmp_path: Path) -> None:
    output = tmp_path / "secrets.env"
    environment = server_environment(DB_PASSWORD_PARAMETER="", ALIBABA_CLOUD_REGION="Hangzhou")
    result = run(oos, output, environment)
    assert result.returncode == 2
    assert "DB_PASSWORD_PARAMETER is not set" in result.stderr
    assert "ALIBABA_CLOUD_REGION='Hangzhou' is not a region ID" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()
    assert oos.requests == []


def test_an_output_it_cannot_write_is_a_clear_error(oos: FakeOos, tmp_path: Path) -> None:
    blocker = tmp_path / "run"
    blocker.write_text("a file where the directory should be")
    result = run(oos, blocker / "app" / "secrets.env", server_environment())
    assert result.returncode == 1
    assert f"could not write {blocker / 'app' / 'secrets.env'}" in result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr


def test_a_parameter_that_does_not_exist_fails_at_once(oos: FakeOos, tmp_path: Path) -> None:
    output = tmp_path / "secrets.env"
    result = run(
        oos,
        output,
        server_environment(DB_PASSWORD_PARAMETER="ha-webapp-dev-db-password-gone"),  # pragma: allowlist secret
        "--deadline",
        "300",
    )
    assert result.returncode == 1
    assert "EntityNotExists.Parameter" in result.stderr
    assert "attempt 1:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()
    assert len(oos.requests) == 1


def reader(fake: FakeOos) -> object:
    settings = helper.Settings(PARAMETER, "cn-hangzhou")
    return helper.oos_reader(settings, fake.endpoint, "http")


def test_passing_refusals_are_retried_with_backoff(oos: FakeOos, acs_credentials: None) -> None:
    # While the RAM role is being attached and its policy propagates, OOS refuses; then it answers.
    oos.errors = [
        (403, "Forbidden.NoPermission", "This operation is forbidden by permission system."),
        (403, "Forbidden.NoPermission", "This operation is forbidden by permission system."),
        (503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."),
    ]
    clock = FakeClock()
    assert helper.fetch(reader(oos), 600, clock, clock.sleep) == PASSWORD
    assert clock.sleeps == [2.0, 4.0, 8.0]
    assert len(oos.requests) == 4


def test_gives_up_at_the_deadline_with_the_last_reason(oos: FakeOos, acs_credentials: None) -> None:
    oos.errors = [(503, "ServiceUnavailable", "temporary failure")] * 20
    clock = FakeClock()
    with pytest.raises(helper.PermanentError, match=r"gave up after 8 attempts in 120 s; last: ServiceUnavailable"):
        helper.fetch(reader(oos), 120, clock, clock.sleep)
    assert clock.sleeps == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_credentials_not_yet_there_are_retried() -> None:
    # The metadata service has no credentials for the role until the attachment exists: the chain raises.
    from alibabacloud_credentials.exceptions import CredentialException

    answers: list[object] = [CredentialException("unable to load credentials"), "secret-value"]

    def read() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    clock = FakeClock()
    assert helper.fetch(read, 600, clock, clock.sleep) == "secret-value"
    assert clock.sleeps == [2.0]


def test_servers_reach_oos_through_its_vpc_endpoint(acs_credentials: None) -> None:
    # App servers have no public address; the public endpoint would time out at every boot.
    client = helper.oos_client(helper.Settings(PARAMETER, "cn-shanghai"), None, None)
    assert client._endpoint == "oos-vpc.cn-shanghai.aliyuncs.com"


@pytest.mark.parametrize(
    ("value", "ok"), [("plain", True), ('q"uote', True), ("back\\slash", True), ("two\nlines", False)]
)
def test_env_line_quotes_or_refuses(value: str, ok: bool) -> None:
    if ok:
        assert systemd_value(helper.env_line("DB_PASSWORD", value).rstrip("\n")) == ("DB_PASSWORD", value)
    else:
        with pytest.raises(helper.PermanentError, match="several lines"):
            helper.env_line("DB_PASSWORD", value)


def user_data_settings(ev: Evaluation) -> dict[str, str]:
    server = ev.of_type(ECS)[0]
    document = yaml.safe_load(base64.b64decode(str(server.value("userData"))).decode().removeprefix("#cloud-config\n"))
    (env_file,) = [f["content"] for f in document["write_files"] if f["path"] == "/etc/app/app.env"]
    return dict(systemd_value(line) for line in env_file.splitlines())


def test_the_stack_user_data_gives_the_helper_what_it_reads(evaluations: dict[str, Evaluation]) -> None:
    for ev in evaluations.values():
        settings = helper.Settings.from_environment(user_data_settings(ev))
        parameter = ev.of_type(OOS_PARAMETER)[0]
        assert settings.parameter_name == parameter.value("secretParameterName")
        assert settings.region == ev.config["alicloud:region"]


def test_the_credential_chain_uses_the_instance_role_in_token_mode(evaluations: dict[str, Evaluation]) -> None:
    # In a process with exactly the server's settings (and no keys), the SDK's chain picks the instance's RAM role
    # and refuses the metadata service's token-less mode.
    ev = evaluations["prod"]
    environment = {**user_data_settings(ev), "HOME": "/nonexistent", "PATH": os.environ["PATH"]}
    probe = (
        "from alibabacloud_credentials.provider import EcsRamRoleCredentialsProvider as P\n"
        "p = P(async_update_enabled=False)\n"
        "print(p._role_name, p._disable_imds_v1)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == [str(ev.of_type(RAM_ROLE)[0].value("roleName")), "True"]
