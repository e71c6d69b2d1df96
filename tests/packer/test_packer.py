"""The image template (packer/) checked with the real tools: Debian's Packer 1.6.6, shellcheck and systemd-analyze.

Packer 1.6.6 has the alicloud-ecs builder built in but does not know `required_plugins`, so the template is validated
without packer/plugins.pkr.hcl, the one file that only current Packer reads.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from infra import user_data
from pipeline import app_pin

PACKER_DIR = Path(__file__).resolve().parents[2] / "packer"
PLUGINS_FILE = "plugins.pkr.hcl"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # pragma: allowlist secret (a commit SHA)


def _packer_env() -> dict[str, str]:
    # The builder insists on credentials even to validate; they come from the environment, never the template.
    dummy = "validate-only"
    return {**os.environ, "ALICLOUD_ACCESS_KEY": dummy, "ALICLOUD_SECRET_KEY": dummy}  # pragma: allowlist secret


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A copy of packer/ without the plugin requirement, as Packer 1.6.6 can read it."""
    copy = tmp_path / "packer"
    shutil.copytree(PACKER_DIR, copy, ignore=shutil.ignore_patterns(PLUGINS_FILE, "manifest.json"))
    return copy


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    jar = tmp_path / "app-1.2.3.jar"
    jar.write_bytes(b"PK\x03\x04 not a real jar; packer only checks that it exists")
    return jar


def _vars(artifact: Path, **overrides: str) -> list[str]:
    values = {"app_artifact": str(artifact), "app_version": "1.2.3", "git_commit": COMMIT, **overrides}
    return [arg for name, value in values.items() for arg in ("-var", f"{name}={value}")]


def packer(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["packer", *args], env=_packer_env(), input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_template_validates_with_packer_1_6_6(template: Path, artifact: Path) -> None:
    result = packer("validate", *_vars(artifact), str(template))
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_is_packer_fmt_clean() -> None:
    result = packer("fmt", "-check", "-diff", str(PACKER_DIR))
    assert result.returncode == 0, result.stdout + result.stderr


def _replace(old: str, new: str) -> Callable[[Path], None]:
    def edit(template: Path) -> None:
        path = template / "app-image.pkr.hcl"
        text = path.read_text()
        assert old in text, f"the template no longer contains {old!r}: update this breakage"
        path.write_text(text.replace(old, new, 1))

    return edit


def _delete(relative: str) -> Callable[[Path], None]:
    return lambda template: (template / relative).unlink()


BROKEN = {
    "unclosed block": (_replace("build {", "build {{"), "Argument or block definition required"),
    "unknown builder argument": (_replace("ssh_username", "ssh_user_name"), 'argument named "ssh_user_name"'),
    "undeclared variable": (_replace("var.build_instance_type", "var.instance_size"), 'named "instance_size"'),
    "provisioning script missing": (_delete("scripts/provision.sh"), "Bad script"),
    "unit file directory missing": (_replace('"${path.root}/files/"', '"${path.root}/filez/"'), "Bad source"),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_copy_fails_validation(case: str, template: Path, artifact: Path) -> None:
    breakage, expected = BROKEN[case]
    breakage(template)
    result = packer("validate", *_vars(artifact), str(template))
    assert result.returncode != 0, f"{case}: packer validate accepted the broken template"
    assert expected in result.stdout + result.stderr


BAD_VARS = {
    "artifact missing": ({"app_artifact": "/nonexistent/app.jar"}, "Bad source"),
    "short commit": ({"git_commit": "0123456"}, "full 40-character commit SHA"),
    "not Ubuntu 24.04": ({"source_image": "centos_7_9_x64_20G_alibase_20240628.vhd"}, "Ubuntu 24.04 LTS x64"),
    "empty version": ({"app_version": ""}, "app_version must be 1 to 40 characters"),
    "empty migrate command": ({"migrate_command": ""}, "migrate_command must not be empty"),
    "no runtime package": ({"runtime_packages": "[]"}, "runtime_packages must name at least one"),
}


@pytest.mark.parametrize("case", BAD_VARS, ids=list(BAD_VARS))
def test_bad_variables_fail_validation(case: str, template: Path, artifact: Path) -> None:
    overrides, expected = BAD_VARS[case]
    result = packer("validate", *_vars(artifact, **overrides), str(template))
    assert result.returncode != 0, f"{case}: accepted"
    assert expected in " ".join((result.stdout + result.stderr).split())


def test_required_variables_are_the_pipelines_three(template: Path) -> None:
    result = packer("validate", str(template))
    assert result.returncode != 0
    unset = set(re.findall(r'Unset variable "(\w+)"', result.stdout + result.stderr))
    assert unset == {"app_artifact", "app_version", "git_commit"}


def test_packer_1_6_6_cannot_read_the_plugin_file(tmp_path: Path, artifact: Path) -> None:
    """Why plugins.pkr.hcl stands apart: with it, the old Packer refuses the whole template."""
    copy = tmp_path / "packer"
    shutil.copytree(PACKER_DIR, copy, ignore=shutil.ignore_patterns("manifest.json"))
    result = packer("validate", *_vars(artifact), str(copy))
    assert result.returncode != 0
    assert "required_plugins" in result.stdout + result.stderr


def test_plugin_is_pinned_to_one_version() -> None:
    text = (PACKER_DIR / PLUGINS_FILE).read_text()
    assert re.search(r'source\s*=\s*"github.com/hashicorp/alicloud"', text)
    assert re.search(r'version\s*=\s*"=\s*\d+\.\d+\.\d+"', text), "pin the plugin with an exact version"


def _evaluate(template: Path, artifact: Path, expression: str, **overrides: str) -> str:
    result = packer("console", *_vars(artifact, **overrides), str(template), stdin=expression + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_image_name_carries_version_and_commit(template: Path, artifact: Path) -> None:
    name = _evaluate(template, artifact, "local.image_name", app_version="2.7.1")
    assert re.fullmatch(r"ha-webapp-2\.7\.1-0123456789ab-\d{14}", name), name
    # ECS image names: 2-128 characters of letters, digits, ".", "_", "-", ":", starting with a letter.
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9._:-]{1,127}", name)


def test_the_defaults_run_the_example_app_as_the_shipped_pin_does(template: Path, artifact: Path) -> None:
    runtime = app_pin.load_pin(PACKER_DIR.parent).runtime
    assert _evaluate(template, artifact, "var.app_file_name") == runtime.file_name
    assert _evaluate(template, artifact, "var.start_command") == runtime.start_command
    assert _evaluate(template, artifact, "var.migrate_command") == runtime.migrate_command
    packages = _evaluate(template, artifact, "var.runtime_packages")
    assert re.findall(r'"([^"]+)"', packages) == runtime.packages


def test_the_pins_packer_vars_validate_and_reach_the_template_unchanged(
    template: Path, artifact: Path, tmp_path: Path
) -> None:
    """What the image job passes: `app_pin packer-vars` for a Spring Boot pin, whose ${APP_PORT} systemd expands."""
    start = "/usr/bin/java -XX:MaxRAMPercentage=75 -jar /opt/app/app.jar --server.port=${APP_PORT}"
    runtime = app_pin.Runtime(
        file_name="app.jar",
        start_command=start,
        packages=["openjdk-17-jre-headless"],
        migrate_command='/opt/flyway/flyway -url="jdbc:mysql://${DB_HOST}:${DB_PORT}/${DB_NAME}" migrate',
    )
    sha256 = app_pin.file_sha256(artifact)
    fetched = app_pin.Fetched("0" * 64, "artifact", "1.4.2", sha256, artifact, runtime, "https://example.com/app.jar")
    var_file = tmp_path / "app.pkrvars.json"
    var_file.write_text(json.dumps(app_pin.packer_vars(fetched, COMMIT)))

    result = packer("validate", f"-var-file={var_file}", str(template))
    assert result.returncode == 0, result.stdout + result.stderr
    for name, expected in (("start_command", start), ("migrate_command", runtime.migrate_command)):
        console = packer("console", f"-var-file={var_file}", str(template), stdin=f"var.{name}\n")
        assert console.stdout.strip() == expected, console.stdout + console.stderr


def test_template_holds_no_credentials() -> None:
    text = "\n".join(p.read_text() for p in sorted(PACKER_DIR.rglob("*.hcl")))
    for attribute in ("access_key", "secret_key", "security_token", "password", "ram_role_name"):
        assert not re.search(rf"^\s*{attribute}\s*=", text, re.MULTILINE), attribute


def test_packer_1_6_6_builder_cannot_require_a_metadata_token(template: Path, artifact: Path) -> None:
    """A tripwire (docs/images.md): when the builder accepts token mode, set it on the build server and drop this."""
    _replace(
        'ssh_username                = "root"', 'ssh_username                = "root"\n  http_tokens = "required"'
    )(template)
    result = packer("validate", *_vars(artifact), str(template))
    assert result.returncode != 0 and 'argument named "http_tokens"' in result.stdout + result.stderr


def test_build_server_gets_no_role_and_no_user_data() -> None:
    """The build server's metadata answers without a token (above), so it must hold no credential or secret."""
    text = "\n".join(p.read_text() for p in sorted(PACKER_DIR.rglob("*.hcl")))
    for attribute in ("ecs_ram_role_name", "user_data", "user_data_file"):
        assert not re.search(rf"^\s*{attribute}\s*=", text, re.MULTILINE), attribute


# --- provisioning ---------------------------------------------------------------------------------------------------


def test_scripts_are_shellcheck_clean() -> None:
    # The provisioning scripts, and app-migrate, which the image installs as /usr/local/bin/app-migrate.
    scripts = [*sorted(str(p) for p in (PACKER_DIR / "scripts").glob("*.sh")), str(PACKER_DIR / "files/app-migrate")]
    assert len(scripts) == 3
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_shellcheck_catches_a_broken_script(tmp_path: Path) -> None:
    broken = tmp_path / "provision.sh"
    text = (PACKER_DIR / "scripts" / "provision.sh").read_text()
    broken.write_text(text.replace('"${packages[@]}"', "${packages[@]}"))
    result = subprocess.run(["shellcheck", str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


def _dropin(*args: str) -> subprocess.CompletedProcess[str]:
    script = PACKER_DIR / "scripts" / "app-unit-dropin.sh"
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, check=False)


# The boot helper's interpreter exists only in the image (provision.sh makes it); systemd-analyze insists that every
# command exists, so the check maps it to this machine's Python and verifies everything else as written.
HELPER_PYTHON = "/opt/app-secrets/venv/bin/python"


def _unit_dir(tmp_path: Path, unit_text: str, start_command: str, port: str = "8080") -> Path:
    units = tmp_path / "units"
    (units / "app.service.d").mkdir(parents=True)
    (units / "app.service").write_text(unit_text.replace(HELPER_PYTHON, sys.executable))
    result = _dropin(start_command, port)
    assert result.returncode == 0, result.stderr
    (units / "app.service.d" / "image.conf").write_text(result.stdout)
    return units


def _verify(units: Path) -> subprocess.CompletedProcess[str]:
    # SYSTEMD_UNIT_PATH (trailing ":" keeps the defaults) makes systemd-analyze load the drop-in next to the unit.
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"}
    return subprocess.run(
        ["systemd-analyze", "verify", str(units / "app.service")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


# An executable that exists on every machine the tests run on; the image's own java is checked at build time.
_START = "/bin/sleep infinity --port=${APP_PORT} -Dpercent=50%"


def test_unit_with_its_dropin_passes_systemd_analyze(tmp_path: Path) -> None:
    result = _verify(_unit_dir(tmp_path, (PACKER_DIR / "files" / "app.service").read_text(), _START))
    # Any message (an unknown key, a bad value) is a defect: systemd only warns and then ignores the line.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Restart=on-failure", "Restart=sometimes"),
        ("ProtectSystem=full", "ProtectSytem=full"),
        ("[Service]", "[Servcie]"),
    ],
)
def test_systemd_analyze_reports_a_broken_unit(tmp_path: Path, old: str, new: str) -> None:
    text = (PACKER_DIR / "files" / "app.service").read_text()
    assert old in text
    result = _verify(_unit_dir(tmp_path, text.replace(old, new), _START))
    assert result.returncode != 0 or result.stderr.strip()


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((PACKER_DIR / "files" / "app.service").read_text())
    return parser


def _all(key: str) -> list[str]:
    """Every value of a directive systemd lets repeat (configparser keeps only the last)."""
    text = (PACKER_DIR / "files" / "app.service").read_text()
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


def test_unit_reads_the_user_datas_settings_and_skips_a_bare_boot() -> None:
    unit = _unit()
    assert (PACKER_DIR / "files" / user_data.APP_UNIT).is_file()
    assert unit["Unit"]["ConditionPathExists"] == user_data.ENV_FILE
    assert _all("EnvironmentFile")[0] == user_data.ENV_FILE
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_unit_fetches_the_password_as_root_before_each_start_and_passes_it_on() -> None:
    (pre,) = _all("ExecStartPre")
    # "+": full privileges despite User=app, so the helper can write a root-only file.
    command = pre.removeprefix("+").split()
    assert pre.startswith("+") and command[:2] == [HELPER_PYTHON, "/opt/app-secrets/app_secrets.py"]
    output = command[command.index("--output") + 1]
    assert output.startswith("/run/"), "the password stays on tmpfs"
    # Read after the user data's settings; "-" because it does not exist yet when the helper starts.
    assert _all("EnvironmentFile") == [user_data.ENV_FILE, f"-{output}"]
    # The start may wait for the helper's whole retry deadline (600 s by default).
    assert _unit()["Service"]["TimeoutStartSec"] == "15min"
    provision = (PACKER_DIR / "scripts" / "provision.sh").read_text()
    for installed in (HELPER_PYTHON.removesuffix("/bin/python"), "/opt/app-secrets/app_secrets.py"):
        assert installed in provision, f"provision.sh does not create {installed}"
    assert (PACKER_DIR / "files" / "app_secrets.py").is_file()
    assert (PACKER_DIR / "files" / "app-secrets-requirements.txt").is_file()


def test_unit_restarts_on_failure_logs_to_journal_and_runs_unprivileged() -> None:
    service = _unit()["Service"]
    assert service["Restart"] == "on-failure"
    assert service["StandardOutput"] == service["StandardError"] == "journal"
    assert service["User"] not in ("", "root", "0")
    assert "ExecStart" not in service, "the start command comes from the image build's drop-in"


def test_dropin_sets_start_command_and_port_escaping_percent() -> None:
    result = _dropin("/usr/bin/java -jar /opt/app/app.jar --server.port=${APP_PORT} -Dx=50%", "9090")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Environment=APP_PORT=9090" in lines
    # The empty ExecStart= resets any earlier one, so the drop-in's command is the only one.
    assert lines[-2:] == [
        "ExecStart=",
        "ExecStart=/usr/bin/java -jar /opt/app/app.jar --server.port=${APP_PORT} -Dx=50%%",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("java -jar app.jar", "8080"), "absolute path"),
        (("/usr/bin/java\n-jar", "8080"), "one line"),
        (("/usr/bin/java", "80a"), "1 to 65535"),
        (("/usr/bin/java", "70000"), "1 to 65535"),
        (("/usr/bin/java",), "usage"),
    ],
)
def test_dropin_refuses_bad_input(args: tuple[str, ...], message: str) -> None:
    result = _dropin(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
