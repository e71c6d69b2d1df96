"""app/build.sh, the app:build job's script: its binary must be byte-for-byte reproducible, because its SHA-256 keys
the image in the catalog (docs/app.md). Built twice from copies in two folders, offline (this machine's Go module
cache, GOPROXY=off). Seen failing: without -trimpath the two folders give two checksums."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def go_env(name: str) -> str:
    return subprocess.run(["go", "env", name], capture_output=True, text=True, check=True).stdout.strip()


def build(source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GOMODCACHE": go_env("GOMODCACHE"),
        "GOCACHE": go_env("GOCACHE"),
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "",
    }
    return subprocess.run(
        ["bash", str(source / "build.sh"), str(output)], env=env, capture_output=True, text=True, timeout=600
    )


def test_two_builds_in_two_folders_give_the_same_binary(tmp_path: Path) -> None:
    if shutil.which("go") is None:
        pytest.fail("Go is needed (the README's quick start): app:build builds the example app with it")
    checksums = []
    for name in ("first", "a-second-place"):
        source = tmp_path / name / "app"
        shutil.copytree(ROOT / "app", source)
        result = build(source, tmp_path / name / "dist" / "app")
        assert result.returncode == 0, result.stdout + result.stderr
        checksums.append(hashlib.sha256((tmp_path / name / "dist" / "app").read_bytes()).hexdigest())
        assert f"built {tmp_path / name / 'dist' / 'app'}: {checksums[-1]}" in result.stdout
    assert checksums[0] == checksums[1]


def test_build_script_is_shellcheck_clean_and_refuses_bad_usage() -> None:
    result = subprocess.run(["shellcheck", str(ROOT / "app" / "build.sh")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
    result = subprocess.run(["bash", str(ROOT / "app" / "build.sh")], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "usage:" in result.stderr
