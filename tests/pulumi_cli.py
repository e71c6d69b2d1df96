"""The real Pulumi CLI, language host and providers (built from source by toolchain/build.sh) on a throwaway copy of
this project: its own PULUMI_HOME, a state backend in a temporary folder (or any URL), passphrase secrets and dummy
static credentials. Nothing it starts may reach an address but 127.0.0.1 (`PROVIDER_OFFLINE`, `PROXY_TO_NOWHERE`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud import LocalCloud, bin_dir
from plan.offline import PROJECT_DIR
from tests.project_files import project_files

# Set to a folder holding an official `pulumi` and its plugins to use those instead of the pinned build (never in CI).
INSTALLED_BIN_ENV = "HA_WEBAPP_PULUMI_BIN"
PASSPHRASE = "rehearsal-passphrase"  # pragma: allowlist secret

# The provider's start-up would otherwise ask BssOpenApi for the account type (QueryAvailableInstances) and STS for
# the account ID; both are documented provider settings (terraform-provider-alicloud alicloud/provider.go,
# `account_type` and `account_id`, read from these variables).
PROVIDER_OFFLINE = {"ALIBABA_CLOUD_ACCOUNT_TYPE": "Domestic", "ALIBABA_CLOUD_ACCOUNT_ID": "1234567890123456"}
# For runs that need no local stand-in: every HTTP(S) request of the engine, the plugins and the program goes through a
# proxy address where nothing listens, so a call that slipped through fails at once on 127.0.0.1 instead of leaving
# the machine. (Alibaba's Python SDKs ignore NO_PROXY, so runs whose health gate or tools call a local stand-in --
# the local cloud's SLB API, the pipeline's STS -- cannot use it.)
PROXY_TO_NOWHERE = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def toolchain_bin() -> Path:
    """The folder with `pulumi` and the plugins: the pinned build (built on first use, then cached) or, outside CI,
    an installed toolchain named by HA_WEBAPP_PULUMI_BIN."""
    installed = os.environ.get(INSTALLED_BIN_ENV)
    if installed and not os.environ.get("CI"):
        return Path(installed)
    built = subprocess.run(
        ["bash", str(PROJECT_DIR / "toolchain" / "build.sh")],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return Path(built.stdout.strip().splitlines()[-1])


@dataclass
class Workspace:
    """A copy of the project that the real CLI runs in, with its own Pulumi home and state."""

    root: Path
    bin_dir: Path
    backend_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    # With a local cloud, its provider plugin stands in for the real one (which it runs for checks and diffs) and
    # `slb_endpoint` is its SLB API, which the health gates poll, and `ecs_endpoint` its ECS API, through which the
    # schema migration runs.
    cloud: LocalCloud | None = None
    slb_endpoint: str = ""
    ecs_endpoint: str = ""

    def __post_init__(self) -> None:
        self.project = self.root / "project"
        self.home = self.root / "pulumi-home"
        if not self.backend_url:
            (self.root / "state").mkdir(parents=True, exist_ok=True)
            self.backend_url = (self.root / "state").as_uri()
        self.home.mkdir(parents=True, exist_ok=True)
        for relative in project_files():
            if relative.parts[0] in {"tests", "docs", "benchmarks"}:
                continue
            target = self.project / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_DIR / relative, target)
        venv = Path(sys.prefix)
        # The program's virtualenv (Pulumi.yaml: `virtualenv: .venv`) and the policy pack's (policy/PulumiPolicy.yaml:
        # `virtualenv: venv`) are the test run's own: it has every package both need, and nothing is downloaded.
        (self.project / ".venv").symlink_to(venv)
        (self.project / "policy" / "venv").symlink_to(venv)

    @property
    def env(self) -> dict[str, str]:
        venv_bin = str(Path(sys.prefix) / "bin")
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "ALIBABA_CLOUD_", "ALICLOUD_"))}
        path = [str(self.bin_dir), venv_bin, keep.get("PATH", "")]
        cloud = {}
        if self.cloud is not None:
            path.insert(0, str(bin_dir()))
            provider = str(self.bin_dir / "pulumi-resource-alicloud")
            cloud = self.cloud.env(self.slb_endpoint, provider, self.ecs_endpoint)
        return {
            **keep,
            "PATH": os.pathsep.join(path),
            "VIRTUAL_ENV": str(Path(sys.prefix)),
            # The stop-gap language host (toolchain/README.md) ignores Pulumi.yaml's virtualenv option.
            "PULUMI_PYTHON_CMD": str(Path(sys.prefix) / "bin" / "python"),
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": self.backend_url,
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "rehearsal-key-id",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "rehearsal-key-secret",  # pragma: allowlist secret
            **PROVIDER_OFFLINE,
            **(PROXY_TO_NOWHERE if self.cloud is None else {}),
            **cloud,
            **self.extra_env,
        }

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`pulumi ARGS…` in the project copy (or `cwd`); raises with its output when it fails and `check` is set."""
        done = subprocess.run(
            ["pulumi", "--non-interactive", *args],
            cwd=cwd or self.project,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} exited {done.returncode}\n"
                f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"
            )
        return done

    def init_stack(self, stack: str) -> None:
        """`pulumi stack init` on the copy of the committed stack file (which keeps its settings)."""
        self.run("stack", "init", stack, "--secrets-provider", "passphrase")

    def stack_file(self, stack: str) -> Path:
        return self.project / f"Pulumi.{stack}.yaml"

    def state(self, stack: str) -> dict[str, Any]:
        """The stack's checkpoint as `pulumi stack export` gives it."""
        return json.loads(self.run("stack", "export", "--stack", stack).stdout)

    def cloud_resources(self, stack: str) -> set[tuple[str, str]]:
        """(type, ID) of every alicloud resource in the stack's state."""
        return {
            (r["type"], r["id"])
            for r in self.state(stack)["deployment"].get("resources", [])
            if r["type"].startswith("alicloud:")
        }

    def preview(self, stack: str, *extra: str, check: bool = True, policy_pack: bool = True) -> Preview:
        """`pulumi preview --diff` with the policy pack; the engine's steps from a saved plan."""
        plan_file = self.root / f"{stack}-plan.json"
        plan_file.unlink(missing_ok=True)
        done = self.run(
            "preview",
            "--stack",
            stack,
            "--diff",
            *(["--policy-pack", "policy"] if policy_pack else []),
            "--save-plan",
            str(plan_file),
            *extra,
            check=check,
        )
        plan = json.loads(plan_file.read_text()) if plan_file.exists() else {}
        return Preview(done.returncode, done.stdout + done.stderr, plan)


@dataclass(frozen=True)
class Preview:
    returncode: int
    output: str
    plan: dict[str, Any]

    def resources(self) -> set[tuple[str, str]]:
        """(type, name) of every resource the engine would manage, without the stack and providers."""
        return set(resources_of_urns(self.plan.get("resourcePlans", {})))


def resources_of_urns(urns: Iterable[str]) -> list[tuple[str, str]]:
    found = []
    for urn in urns:
        # urn:pulumi:<stack>::<project>::<parent types $ ... $ type>::<name>
        _, _, qualified_type, name = urn.split("::", 3)
        type_ = qualified_type.split("$")[-1]
        if type_ == "pulumi:pulumi:Stack" or type_.startswith("pulumi:providers:"):
            continue
        found.append((type_, name))
    return found
