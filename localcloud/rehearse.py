"""The one-command rehearsal: `python -m localcloud rehearse --stack dev` (or `make rehearse STACK=dev`).

Under one folder (default out/rehearsal/<stack>) it keeps a copy of the working tree's project, a local file backend,
a Pulumi home and a local cloud; it serves the cloud's SLB API and runs the real `pulumi` (toolchain/build.sh, cached)
on the copy: `pulumi preview --diff`, then `pulumi up`. The first run creates the stack; every later run copies the
working tree again, so its preview shows the working tree's changes against the stack already rehearsed, and `up`
applies them: that is rehearsing a change. The repository is never written to: `pulumi stack init` runs in the copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localcloud.cloud import PACKAGE_DIR, LocalCloud, bin_dir
from localcloud.ecs_api import serve_ecs
from localcloud.health import HEALTHY
from localcloud.slb_api import serve_slb

PROJECT_DIR = PACKAGE_DIR.parent
DEFAULT_ROOT = PROJECT_DIR / "out" / "rehearsal"
# Secrets of a rehearsal are throwaway; the passphrase only has to be the same on every run.
PASSPHRASE = "rehearsal"  # pragma: allowlist secret
# The provider's start-up would otherwise ask BssOpenApi for the account type and STS for the account ID
# (terraform-provider-alicloud alicloud/provider.go, `account_type` and `account_id`).
PROVIDER_OFFLINE = {"ALIBABA_CLOUD_ACCOUNT_TYPE": "Domestic", "ALIBABA_CLOUD_ACCOUNT_ID": "1234567890123456"}
# What the program's run needs from the repository; tests, docs and benchmarks are not part of it.
_NOT_COPIED = {"tests", "docs", "benchmarks"}


class RehearsalError(Exception):
    """Something the user must fix before a rehearsal can run; the message says what."""


def stacks() -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in PROJECT_DIR.glob("Pulumi.*.yaml"))


def toolchain_bin() -> Path:
    """The pinned Pulumi CLI and plugins (built on first use, then returned at once from the cache)."""
    built = subprocess.run(
        ["bash", str(PROJECT_DIR / "toolchain" / "build.sh")], stdout=subprocess.PIPE, text=True, check=False
    )
    if built.returncode != 0 or not built.stdout.strip():
        raise RehearsalError(f"toolchain/build.sh exited {built.returncode}; see its output above")
    return Path(built.stdout.strip().splitlines()[-1])


def copy_project(target: Path) -> None:
    """The working tree's project files (tracked and new, never ignored ones) into `target`, replacing a previous copy.

    The stack file's passphrase salt that `pulumi stack init` writes into the copy goes with it; the next run reads the
    salt from the checkpoint, where the file backend keeps the secrets provider's state too.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    if target.exists():
        shutil.rmtree(target)
    for name in listed:
        source = PROJECT_DIR / name
        if Path(name).parts[0] in _NOT_COPIED or not source.is_file():  # deleted in the tree, still in the index
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
    # Pulumi.yaml's `virtualenv: .venv`: the virtualenv this command runs in, which has the program's packages.
    (target / ".venv").symlink_to(sys.prefix)


def environment(root: Path, cloud: LocalCloud, endpoints: tuple[str, str], toolchain: Path) -> dict[str, str]:
    """The variables of a `pulumi` run in the rehearsal: none of the caller's Pulumi or Alibaba Cloud settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "ALIBABA_CLOUD_", "ALICLOUD_"))}
    venv_bin = str(Path(sys.executable).parent)
    return {
        **keep,
        "PATH": os.pathsep.join([str(bin_dir()), str(toolchain), venv_bin, keep.get("PATH", "")]),
        "VIRTUAL_ENV": sys.prefix,
        # The stop-gap language host (toolchain/README.md) ignores Pulumi.yaml's virtualenv option.
        "PULUMI_PYTHON_CMD": sys.executable,
        "PULUMI_HOME": str(root / "home"),
        "PULUMI_BACKEND_URL": (root / "state").as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        **PROVIDER_OFFLINE,
        **cloud.env(endpoints[0], str(toolchain / "pulumi-resource-alicloud"), endpoints[1]),
    }


def rehearse(stack: str, root: Path, preview_only: bool = False, say: Callable[[str], None] = print) -> int:
    """Rehearse the working tree on `stack` under `root`; returns the exit status of the last `pulumi` command."""
    if stack not in stacks():
        known = ", ".join(stacks())
        raise RehearsalError(f"--stack {stack!r}: no Pulumi.{stack}.yaml in {PROJECT_DIR}; one of {known}")
    toolchain = toolchain_bin()
    project = root / "project"
    (root / "state").mkdir(parents=True, exist_ok=True)
    copy_project(project)
    cloud = LocalCloud(root / "cloud")
    if not cloud.store.exists():
        cloud.init()

    # The health gates' SLB calls and the schema migration's ECS calls.
    with serve_slb(cloud) as slb_endpoint, serve_ecs(cloud) as ecs_endpoint:
        env = environment(root, cloud, (slb_endpoint, ecs_endpoint), toolchain)

        def pulumi(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["pulumi", "--non-interactive", *args],
                cwd=project,
                env=env,
                text=True,
                stdout=subprocess.PIPE if capture else None,
                check=False,
            )

        listed = pulumi("stack", "ls", "--json", capture=True)
        if listed.returncode != 0:
            return listed.returncode
        if any(s.get("name") == stack for s in json.loads(listed.stdout or "[]")):
            say(f"== {stack} was rehearsed before: the working tree's changes against it")
        else:
            say(f"== {stack}: a new stack in {root}")
            created = pulumi("stack", "init", stack, "--secrets-provider", "passphrase")
            if created.returncode != 0:
                return created.returncode
        done = pulumi("preview", "--diff", "--stack", stack)
        if done.returncode != 0 or preview_only:
            return done.returncode
        done = pulumi("up", "--yes", "--skip-preview", "--stack", stack)
        state = json.loads(pulumi("stack", "export", "--stack", stack, capture=True).stdout or "{}")
    say(summary(stack, root, cloud, state))
    return done.returncode


def summary(stack: str, root: Path, cloud: LocalCloud, state: dict[str, Any]) -> str:
    """Where to look next, and whether the cloud holds exactly what the state says."""
    held = {(r["type"], r["id"]) for r in cloud.inventory() if r["urn"].startswith(f"urn:pulumi:{stack}::")}
    resources = state.get("deployment", {}).get("resources") or []
    known = {(r["type"], r["id"]) for r in resources if r["type"].startswith("alicloud:")}
    outputs: dict[str, Any] = next((r.get("outputs", {}) for r in resources if r["type"] == "pulumi:pulumi:Stack"), {})
    command = f"{sys.executable} -m localcloud --dir {cloud.root}"
    lines = [
        f"== rehearsed {stack} in {root}; to look at it, from the repository root:",
        f"   the cloud holds {len(held)} resources of {stack}, the state {len(known)}"
        + ("" if held == known else f": {len(held - known)} not in the state, {len(known - held)} not in the cloud"),
        f"   inventory: {command} inventory",
        f"   timeline:  {command} timeline",
    ]
    if isinstance(outputs.get("slb_id"), str):
        statuses = cloud.health(outputs["slb_id"], 443)
        healthy = sum(status == HEALTHY for status in statuses.values())
        now = f"{healthy} of {len(statuses)} normal now"
        lines.append(f"   health:    {command} health {outputs['slb_id']} --port 443   ({now})")
    lines.append(f"   state:     {root / 'state'} (file backend, passphrase {PASSPHRASE!r})")
    lines.append(f"   start over: rm -rf {root}")
    return "\n".join(lines)
