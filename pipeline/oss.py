"""A client for Alibaba Cloud OSS through its S3-compatible API: the one place that knows how to talk to OSS.

Used by the tools that keep files in the team's OSS bucket (Pulumi state, the image catalog). Tests point it at a local
S3 server (moto) on 127.0.0.1 through `OSS_ENDPOINT`.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

ENDPOINT_ENV = "OSS_ENDPOINT"
REGION_ENV = "OSS_REGION"


def endpoint_for(region: str) -> str:
    """The public S3-compatible endpoint of OSS in `region` (Alibaba Cloud: "Use AWS SDKs to access OSS")."""
    return f"https://s3.oss-{region}.aliyuncs.com"


def client(region: str | None = None, endpoint: str | None = None) -> Any:
    """An S3 client for OSS. Region and endpoint default to OSS_REGION / OSS_ENDPOINT.

    Credentials: ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / ALIBABA_CLOUD_SECURITY_TOKEN when set (what the provider and
    the CI's role assumption use), otherwise boto3's own chain (AWS_* variables, as Pulumi's s3:// backend reads them).
    """
    region = region or os.environ.get(REGION_ENV)
    if not region:
        raise ValueError(f"no OSS region: pass one or set {REGION_ENV} (e.g. cn-hangzhou)")
    endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or endpoint_for(region)
    config = Config(
        # OSS answers only virtual-hosted-style requests (bucket in the host name). botocore still uses path style
        # for an IP-address endpoint, which is what the local test server needs.
        s3={"addressing_style": "virtual"},
        # boto3's SigV4 forces aws-chunked uploads and newer releases add trailing checksums; OSS supports neither
        # and answers InvalidArgument, so sign with V2 ("s3") and send checksums only when an API requires them.
        signature_version="s3",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=30,
    )
    key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    credentials = (
        {
            "aws_access_key_id": key_id,
            "aws_secret_access_key": os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
            "aws_session_token": os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN"),
        }
        if key_id
        else {}
    )
    return boto3.client("s3", region_name=region, endpoint_url=endpoint, config=config, **credentials)
