"""End to end: the real CLI, language host and engine deploy the dev stack into the local cloud, then destroy it.

The real alicloud provider checks the inputs and decides the diffs (the local cloud's plugin forwards to it); the local
cloud creates the resources and serves the SLB API the real health gates poll. Needs the toolchain built from source
(~/.cache/ha-webapp/toolchain/*/bin, or HA_WEBAPP_TOOLCHAIN_BIN).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud import LocalCloud, bin_dir, serve_slb
from plan.offline import evaluate

ROOT = Path(__file__).resolve().parents[2]


def toolchain_bin() -> Path | None:
    named = os.environ.get("HA_WEBAPP_TOOLCHAIN_BIN")
    if named:
        return Path(named)
    built = sorted(glob.glob(os.path.expanduser("~/.cache/ha-webapp/toolchain/*/complete")), key=os.path.getmtime)
    return Path(built[-1]).parent / "bin" if built else None


def dynamic_provider_shim(tool_bin: Path) -> Path | None:
    """pulumi-resource-pulumi-python: in the toolchain once it ships it, else from the SDK's Go module."""
    if (tool_bin / "pulumi-resource-pulumi-python").exists():
        return tool_bin / "pulumi-resource-pulumi-python"
    found = sorted(glob.glob(os.path.expanduser("~/go/pkg/mod/github.com/pulumi/pulumi/sdk/v3@*/python/dist")))
    shim = Path(found[-1]) / "pulumi-resource-pulumi-python" if found else None
    return shim if shim and shim.exists() else None


class Workspace:
    """A copy of the project, a file:// backend and a local cloud, all in one temp dir."""

    def __init__(self, base: Path, tool_bin: Path, shim: Path) -> None:
        self.project = base / "project"
        self.cloud = LocalCloud(base / "cloud").init()
        files = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        for name in files:
            if name.startswith("tests/") or not (ROOT / name).is_file():
                continue
            (self.project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, self.project / name)
        venv = Path(sys.prefix)
        (self.project / ".venv").symlink_to(venv)
        (self.project / "policy" / "venv").symlink_to(venv)
        extra = base / "bin"
        extra.mkdir()
        (extra / shim.name).write_bytes(shim.read_bytes())
        (extra / shim.name).chmod(0o755)
        (base / "home").mkdir()
        (base / "state").mkdir()
        self.base_env = {
            "PATH": os.pathsep.join([str(extra), str(tool_bin), str(venv / "bin"), "/usr/bin", "/bin"]),
            "HOME": str(base / "home"),
            "VIRTUAL_ENV": str(venv),
            "PULUMI_HOME": str(base / "home"),
            "PULUMI_BACKEND_URL": f"file://{base / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": "rehearsal",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }
        self.tool_bin = tool_bin

    def pulumi(self, *args: str, endpoint: str) -> subprocess.CompletedProcess[str]:
        env = {**self.base_env, **self.cloud.env(endpoint, str(self.tool_bin / "pulumi-resource-alicloud"))}
        env["PATH"] = os.pathsep.join([str(bin_dir()), env["PATH"]])
        return subprocess.run(
            ["pulumi", *args, "--stack", "dev", "--non-interactive"],
            cwd=self.project,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    def state(self, endpoint: str) -> set[tuple[str, str]]:
        exported = json.loads(self.pulumi("stack", "export", endpoint=endpoint).stdout)
        return {
            (r["type"], r["id"])
            for r in exported["deployment"].get("resources", [])
            if r["type"].startswith("alicloud:")
        }

    def inventory(self) -> set[tuple[str, str]]:
        return {(r["type"], r["id"]) for r in self.cloud.inventory()}


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    tool_bin = toolchain_bin()
    if tool_bin is None or not (tool_bin / "pulumi").exists():
        pytest.skip("the toolchain is not built (~/.cache/ha-webapp/toolchain/*/bin)")
    shim = dynamic_provider_shim(tool_bin)
    if shim is None:
        pytest.skip("no pulumi-resource-pulumi-python shim in the toolchain or the Go module cache")
    yield Workspace(tmp_path, tool_bin, shim)


def test_dev_deploys_into_the_local_cloud_and_destroys_to_nothing(workspace: Workspace) -> None:
    with serve_slb(workspace.cloud) as endpoint:
        init = workspace.pulumi("stack", "init", endpoint=endpoint)
        assert init.returncode == 0, init.stderr
        up = workspace.pulumi("up", "--yes", "--skip-preview", endpoint=endpoint)
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]

        state = workspace.state(endpoint)
        planned = sorted(r.type for r in evaluate("dev", preview=True).resources if r.type.startswith("alicloud:"))
        assert sorted(kind for kind, _ in state) == planned
        assert workspace.inventory() == state, "the local cloud holds exactly what the state says: nothing orphaned"
        slb_id = next(rid for kind, rid in state if kind.endswith(":ApplicationLoadBalancer"))
        # Both zones' gates passed, so both servers were healthy behind the SLB when `up` finished.
        assert workspace.cloud.healthy_backends_over_time(slb_id)[-1][1] == 2

        # The real provider's diff of the local cloud's outputs against the program: nothing to change.
        again = workspace.pulumi("preview", "--expect-no-changes", endpoint=endpoint)
        assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]

        down = workspace.pulumi("destroy", "--yes", "--skip-preview", endpoint=endpoint)
        assert down.returncode == 0, down.stdout[-4000:] + down.stderr[-4000:]
        assert workspace.inventory() == set()
