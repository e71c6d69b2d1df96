"""The state bucket's bootstrap tool against the local S3 server: create once, then nothing to change; clean errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import pytest
from botocore.stub import Stubber

from pipeline import oss, state_bucket


def bootstrap(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.state_bucket", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )


def fresh_name() -> str:
    return f"ha-webapp-state-{uuid.uuid4().hex[:12]}"


def test_first_run_creates_a_private_versioned_encrypted_bucket_and_the_second_changes_nothing(oss_env: str) -> None:
    bucket = fresh_name()
    first = bootstrap("--bucket", bucket, "--region", "cn-hangzhou")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"created bucket {bucket} in cn-hangzhou (private)",
        f"enabled versioning on {bucket}",
        f"enabled default server-side encryption (AES256) on {bucket}",
    ]
    s3 = oss.client()
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "cn-hangzhou"
    grantees = [g["Grantee"] for g in s3.get_bucket_acl(Bucket=bucket)["Grants"]]
    assert all("URI" not in g for g in grantees), grantees

    second = bootstrap("--bucket", bucket, "--region", "cn-hangzhou")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        f"bucket {bucket} is already private, versioned and encrypted: nothing changed"
    ]


def test_an_existing_public_unversioned_bucket_is_repaired_not_recreated(oss_env: str) -> None:
    bucket = fresh_name()
    s3 = oss.client()
    s3.create_bucket(Bucket=bucket, ACL="public-read", CreateBucketConfiguration={"LocationConstraint": "cn-hangzhou"})
    s3.put_object(Bucket=bucket, Key=".pulumi/meta.yaml", Body=b"version: 1\n")

    changes = state_bucket.ensure(s3, bucket, "cn-hangzhou")

    assert changes == [
        f"made bucket {bucket} private (it granted 1 public permission(s))",
        f"enabled versioning on {bucket}",
        f"enabled default server-side encryption (AES256) on {bucket}",
    ]
    assert s3.get_object(Bucket=bucket, Key=".pulumi/meta.yaml")["Body"].read() == b"version: 1\n"
    assert state_bucket.ensure(s3, bucket, "cn-hangzhou") == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--bucket", "Ha_Webapp", "--region", "cn-hangzhou"], "--bucket 'Ha_Webapp': expected 3-63 lowercase"),
        (["--bucket", "ha-webapp-state", "--region", "Hangzhou"], "--region 'Hangzhou': expected a region ID"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(oss_env: str, args: list[str], expected: str) -> None:
    result = bootstrap(*args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_an_unreachable_endpoint_is_a_clean_error(oss_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("OSS_ENDPOINT", f"http://127.0.0.1:{closed}")
    result = bootstrap("--bucket", fresh_name(), "--region", "cn-hangzhou")
    assert result.returncode == 2
    assert f"cannot reach the OSS endpoint http://127.0.0.1:{closed}" in result.stderr
    assert "OSS_ENDPOINT" in result.stderr
    assert "Traceback" not in result.stderr


def _stubbed_client(oss_env: str) -> tuple[object, Stubber]:
    return (s3 := oss.client()), Stubber(s3)


def test_refused_credentials_are_a_clean_error_that_names_the_variables(oss_env: str) -> None:
    # moto does not check signatures of the kind OSS needs (V2), so OSS's refusal is replayed with botocore's Stubber.
    s3, stub = _stubbed_client(oss_env)
    stub.add_client_error("get_bucket_location", "InvalidAccessKeyId", "The OSS Access Key Id does not exist.", 403)
    with stub, pytest.raises(state_bucket.BucketError) as refused:
        state_bucket.ensure(s3, "ha-webapp-state", "cn-hangzhou")
    assert "OSS refused the credentials (InvalidAccessKeyId) while checking the bucket" in str(refused.value)
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in str(refused.value)


def test_a_name_taken_by_another_account_is_refused_before_anything_changes(oss_env: str) -> None:
    # moto keeps one account, so OSS's two answers for someone else's bucket are replayed with botocore's Stubber.
    s3, stub = _stubbed_client(oss_env)
    stub.add_client_error("get_bucket_location", "NoSuchBucket", "The specified bucket does not exist.", 404)
    stub.add_client_error("create_bucket", "BucketAlreadyExists", "The requested bucket name is not available.", 409)
    with stub, pytest.raises(state_bucket.BucketError, match="taken by another account"):
        state_bucket.ensure(s3, "ha-webapp-state", "cn-hangzhou")
    stub.assert_no_pending_responses()

    s3, stub = _stubbed_client(oss_env)
    stub.add_client_error("get_bucket_location", "AccessDenied", "Access Denied", 403)
    with stub, pytest.raises(state_bucket.BucketError, match="belongs to another account"):
        state_bucket.ensure(s3, "ha-webapp-state", "cn-hangzhou")
    stub.assert_no_pending_responses()


def test_a_setting_oss_refuses_names_the_setting(oss_env: str) -> None:
    s3, stub = _stubbed_client(oss_env)
    stub.add_response("get_bucket_location", {"LocationConstraint": "cn-hangzhou"})
    stub.add_response("get_bucket_acl", {"Grants": []})
    stub.add_client_error("get_bucket_versioning", "NotImplemented", "not supported", 501)
    with stub, pytest.raises(state_bucket.BucketError, match=r"does not accept reading the bucket's versioning"):
        state_bucket.ensure(s3, "ha-webapp-state", "cn-hangzhou")
