"""Shared fixtures: each stack evaluated once under the Pulumi mock runtime, and a local S3 server for OSS."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plan.offline import Evaluation, evaluate
from tests.fakes.acs import ACCESS_KEY_ID, ACCESS_KEY_SECRET

STACKS = ("dev", "preprod", "prod")


@pytest.fixture(scope="session")
def evaluations() -> dict[str, Evaluation]:
    """The real __main__.py run once per stack with that stack's own Pulumi.<stack>.yaml."""
    return {stack: evaluate(stack) for stack in STACKS}


@pytest.fixture(scope="session")
def previews() -> dict[str, Evaluation]:
    """The same, in preview mode: every value the cloud computes (IDs included) is still unknown."""
    return {stack: evaluate(stack, preview=True) for stack in STACKS}


@contextlib.contextmanager
def local_s3_server() -> Iterator[str]:
    """A local S3 server (moto, tests/fakes/moto_s3.py) on 127.0.0.1 standing in for OSS, for as long as the block runs;
    yields its endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "fakes" / "moto_s3.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"moto server did not start on {endpoint}") from None
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextlib.contextmanager
def local_state_bucket(bucket: str, region: str = "cn-hangzhou") -> Iterator[str]:
    """A local S3 server of its own with `bucket` created by a V4-signed request, as the Pulumi CLI signs its own;
    yields the endpoint. (moto once filed a bucket created V2-signed, as pipeline.oss signs for OSS, where the CLI's
    requests did not find it: the tests that run the real CLI keep their state bucket apart.)"""
    import boto3

    with local_s3_server() as endpoint:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id="test-key-id",
            aws_secret_access_key="test-key-secret",  # pragma: allowlist secret
        ).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        yield endpoint


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The test session's local S3 server; yields its endpoint URL."""
    with local_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def oss_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Environment pointing pipeline.oss at the local server, with throwaway credentials; yields the endpoint."""
    monkeypatch.setenv("OSS_ENDPOINT", s3_server)
    monkeypatch.setenv("OSS_REGION", "cn-hangzhou")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "test-key-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-key-secret")
    for name in ("ALIBABA_CLOUD_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    return s3_server


@pytest.fixture
def registrations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The types of the resources the evaluator's mock monitor is asked to register, in order, during the test."""
    from plan import offline

    registered: list[str] = []
    original = offline._RecordingMonitor.RegisterResource

    def counting(self: offline._RecordingMonitor, request: Any) -> Any:
        registered.append(request.type)
        return original(self, request)

    monkeypatch.setattr(offline._RecordingMonitor, "RegisterResource", counting)
    return registered


@pytest.fixture
def acs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Throwaway keys for the Alibaba Cloud SDK, and no other credential source it could wander off to.

    The credentials library copies these variables when it is first imported, so whichever test imported it first
    would decide the keys of all later ones: its copies are set too.
    """
    from alibabacloud_credentials.utils import auth_util

    values = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": None,
        "ALIBABA_CLOUD_ROLE_ARN": None,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": None,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": None,
        "ALIBABA_CLOUD_PROFILE": None,
    }
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setattr(auth_util, "environment_access_key_id", ACCESS_KEY_ID)
    monkeypatch.setattr(auth_util, "environment_access_key_secret", ACCESS_KEY_SECRET)
    monkeypatch.setattr(auth_util, "environment_security_token", None)
    monkeypatch.setattr(auth_util, "enable_oidc_credential", False)
    # No ECS metadata provider either: it would start a refresh thread that outlives the test session.
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "true")
