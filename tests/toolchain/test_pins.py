"""The toolchain built from source is the one the pins ask for: the CLI at the SDK's version, each provider at the
plugin version its Python SDK requests."""

from __future__ import annotations

import json
import re
import subprocess
from importlib.resources import files
from pathlib import Path

import pytest

from plan.offline import PROJECT_DIR
from tests.pulumi_cli import toolchain_bin


def pinned(requirements: Path, package: str) -> str:
    found = re.search(rf"^{re.escape(package)}==(\S+)$", requirements.read_text(), re.M)
    assert found is not None, f"{package} is not pinned in {requirements}"
    return found[1]


def reported(binary: str, *args: str) -> str:
    return subprocess.run(
        [str(toolchain_bin() / binary), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_cli_is_the_version_of_the_sdk_pin_everywhere() -> None:
    sdk = pinned(PROJECT_DIR / "requirements.txt", "pulumi")
    assert reported("pulumi", "version") == f"v{sdk}"
    assert pinned(PROJECT_DIR / "policy" / "requirements.txt", "pulumi") == sdk


@pytest.mark.parametrize("sdk_package", ["pulumi_alicloud", "pulumi_random"])
def test_each_provider_reports_the_plugin_version_its_sdk_requests(sdk_package: str) -> None:
    requested = json.loads(files(sdk_package).joinpath("pulumi-plugin.json").read_text())
    version = reported(f"pulumi-resource-{requested['name']}", "-version")
    # Build metadata after `+` names the bridged Terraform provider; the version itself must be the requested one.
    assert version.split("+", 1)[0] == requested["version"], version
