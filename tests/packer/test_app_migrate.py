"""/usr/local/bin/app-migrate (packer/files/app-migrate), the release's database step, run for real as root.

A copy runs with its paths pointed at a temporary folder, the user `nobody` instead of `app`, and a stand-in for the
boot helper that writes the password file as app_secrets.py does. Seen failing: with the EXIT trap removed (a failed
fetch leaves the password file), with `runuser` dropped (the tool runs as root), with `exit $?` replaced by `exit 0`,
and with the unescaping loop's skip removed (the quoted value arrives with its backslashes).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import user_data
from tests.packer.test_app_secrets import load_helper

WRAPPER = Path(__file__).resolve().parents[2] / "packer" / "files" / "app-migrate"
PASSWORD = 'pa$$ "word" \\ with `ticks`'  # pragma: allowlist secret (a test value, quoted as the helper quotes it)

FAKE_HELPER = """
import os, stat, sys
# What app_secrets.py reads from app.env: fail as it does when a setting is missing.
if not os.environ.get("DB_PASSWORD_PARAMETER"):
    print("app-secrets: DB_PASSWORD_PARAMETER is not set", file=sys.stderr)
    sys.exit(2)
if os.environ.get("HELPER_FAILS"):
    print("app-secrets: could not read ha-webapp-dev-db-password: Forbidden.RAM", file=sys.stderr)
    sys.exit(1)
output = sys.argv[sys.argv.index("--output") + 1]
mode = stat.S_IMODE(os.stat(output).st_mode)
with open(output, "w") as handle:
    handle.write({line!r})
print("app-secrets: wrote", output, oct(mode), file=sys.stderr)
"""


@dataclass
class Wrapper:
    script: Path
    env_file: Path
    command_file: Path
    secrets_dir: Path


@pytest.fixture
def wrapper(tmp_path: Path) -> Wrapper:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("runs the wrapper as root with runuser, as Cloud Assistant does")
    helper = tmp_path / "fake_helper.py"
    real = load_helper()  # its writer quotes the password file's line
    helper.write_text(FAKE_HELPER.format(line=real.env_line(real.PASSWORD_VARIABLE, PASSWORD)))
    secrets_dir = tmp_path / "run"
    secrets_dir.mkdir()
    env_file = tmp_path / "app.env"
    env_file.write_text(
        user_data.env_file(
            {
                "APP_PORT": "8080",
                "DB_HOST": "rm-bp1example.mysql.rds.aliyuncs.com",
                "DB_PASSWORD_PARAMETER": "ha-webapp-dev-db-password",  # pragma: allowlist secret (a name)
                "ODD": 'a "quoted" \\ value with $HOME',
            }
        )
    )
    command_file = tmp_path / "migrate.command"
    command_file.write_text(
        'echo "as $(id -un): host=$DB_HOST password=$DB_PASSWORD odd=$ODD port=$APP_PORT"; env | sort >&2; exit 7\n'
    )
    text = WRAPPER.read_text()
    for old, new in (
        ("ENV_FILE=/etc/app/app.env", f"ENV_FILE={env_file}"),
        ("COMMAND_FILE=/etc/app/migrate.command", f"COMMAND_FILE={command_file}"),
        (
            "SECRETS_HELPER=(/opt/app-secrets/venv/bin/python /opt/app-secrets/app_secrets.py)",
            f"SECRETS_HELPER=({sys.executable} {helper})",
        ),
        ("SECRETS_DIR=/run", f"SECRETS_DIR={secrets_dir}"),
        ("APP_USER=app", "APP_USER=nobody"),
    ):
        assert old in text, f"app-migrate no longer has {old!r}: update this test"
        text = text.replace(old, new)
    script = tmp_path / "app-migrate"
    script.write_text(text)
    script.chmod(0o755)
    return Wrapper(script, env_file, command_file, secrets_dir)


def run(wrapper: Wrapper, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ["PATH"], "CALLER_ONLY": "must not reach the tool", **env}
    return subprocess.run(
        [str(wrapper.script)], cwd="/", env=environment, capture_output=True, text=True, timeout=60, check=False
    )


def test_runs_the_command_as_the_app_user_with_the_settings_and_the_password(wrapper: Wrapper) -> None:
    result = run(wrapper)
    assert result.returncode == 7, result.stderr  # the tool's exit status
    assert result.stdout == (
        f'as nobody: host=rm-bp1example.mysql.rds.aliyuncs.com password={PASSWORD} odd=a "quoted" \\ value with'
        " $HOME port=8080\n"
    )
    environment = dict(line.split("=", 1) for line in result.stderr.splitlines() if "=" in line)
    assert "CALLER_ONLY" not in environment, "the caller's environment leaked into the tool's"
    assert environment["HOME"] == pwd.getpwnam("nobody").pw_dir and environment["USER"] == "nobody"
    # Nothing of the wrapper's own on the tool's streams: the helper's success is silent.
    assert "app-secrets" not in result.stdout + result.stderr


def test_the_password_file_is_root_only_on_tmpfs_and_gone_afterwards(wrapper: Wrapper) -> None:
    result = run(wrapper)
    assert result.returncode == 7
    assert list(wrapper.secrets_dir.iterdir()) == []


def test_a_failed_password_fetch_stops_before_the_tool(wrapper: Wrapper) -> None:
    result = run(wrapper, HELPER_FAILS="1")
    # The helper gets only app.env's settings, so HELPER_FAILS from the caller must not reach it either.
    assert result.returncode == 7
    wrapper.env_file.write_text(wrapper.env_file.read_text() + 'HELPER_FAILS="1"\n')
    result = run(wrapper)
    assert result.returncode == 2
    assert "Forbidden.RAM" in result.stderr
    assert "app-migrate: could not fetch the database password" in result.stderr
    assert result.stdout == ""
    assert list(wrapper.secrets_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no env file", "app.env does not exist: the server has no boot settings yet"),
        ("no command", "migrate.command does not exist"),
        ("shell code in app.env", 'a line is not NAME="value"'),
    ],
)
def test_missing_or_malformed_settings_exit_2_naming_the_file(wrapper: Wrapper, breakage: str, message: str) -> None:
    if breakage == "no env file":
        wrapper.env_file.unlink()
    elif breakage == "no command":
        wrapper.command_file.unlink()
    else:
        wrapper.env_file.write_text("DB_HOST=$(touch /tmp/pwned)\n")
    result = run(wrapper)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.startswith("app-migrate: ")
    assert result.stdout == ""
