"""Create (or check) the OSS bucket that holds the Pulumi state and the image catalog, once per team.

    python -m pipeline.state_bucket --bucket ha-webapp-state-1234 --region cn-hangzhou

Idempotent: it creates the bucket when it does not exist, then makes sure that it is private, versioned (every
checkpoint Pulumi overwrites stays recoverable) and encrypted at rest by default, changing only what differs, and
prints one line per thing it created or changed. A second run prints that nothing changed.

Everything goes through OSS's S3-compatible API (pipeline.oss.client(); credentials as there). Exit status 0 when the
bucket is as it should be; 2 with a one-line reason on bad arguments, refused or invalid credentials, an unreachable
endpoint, a bucket name taken by another account, or a setting OSS refuses (the message says how to set it instead).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from botocore.parsers import ResponseParserError

from pipeline import oss

# OSS bucket names: 3-63 characters, lowercase letters, digits and hyphens, starting and ending with a letter or digit.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+$")
_BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken", "ExpiredToken"}
_ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
_AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


class BucketError(Exception):
    """Something the operator must fix; the message says what."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _explain(error: Exception, bucket: str, doing: str) -> BucketError:
    """Turn an SDK error into one line an operator can act on."""
    if isinstance(error, EndpointConnectionError):
        return BucketError(
            f"cannot reach the OSS endpoint {error.kwargs.get('endpoint_url')} while {doing}: check --region, "
            f"{oss.ENDPOINT_ENV} and the network"
        )
    if isinstance(error, NoCredentialsError):
        return BucketError(
            "no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (and "
            "ALIBABA_CLOUD_SECURITY_TOKEN for temporary ones)"
        )
    if isinstance(error, ClientError):
        code = _code(error)
        if code in _BAD_CREDENTIALS:
            return BucketError(
                f"OSS refused the credentials ({code}) while {doing}: check ALIBABA_CLOUD_ACCESS_KEY_ID / "
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET / ALIBABA_CLOUD_SECURITY_TOKEN"
            )
        if code in ("NotImplemented", "MethodNotAllowed"):
            return BucketError(
                f"OSS's S3-compatible API does not accept {doing} ({code}) for {bucket}: set it in the OSS console "
                "or with ossutil, then run this again"
            )
        message = error.response.get("Error", {}).get("Message", "")
        if not code or code.isdigit():  # no S3 error code: botocore leaves it empty or puts the HTTP status there
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", code or "?")
            return BucketError(
                f"the endpoint answered HTTP {status} without an S3 error code while {doing} for {bucket}: it "
                f"does not look like OSS; check --region and {oss.ENDPOINT_ENV}"
            )
        return BucketError(f"OSS answered {code or 'an error'} while {doing} for {bucket}: {message}")
    return BucketError(f"{type(error).__name__} while {doing} for {bucket}: {error}")


def _exists(s3: Any, bucket: str) -> bool:
    """True when the bucket exists and these credentials may use it; False when no one has it."""
    # GetBucketLocation rather than HeadBucket: an answer to HEAD has no body, so a refused key and someone else's
    # bucket would both be a bare 403; this one carries the error code that tells them apart.
    try:
        s3.get_bucket_location(Bucket=bucket)
        return True
    except ClientError as error:
        if _code(error) == "NoSuchBucket":
            return False
        if _code(error) == "AccessDenied":
            raise BucketError(
                f"bucket {bucket} exists but these credentials may not use it: it belongs to another account (pick "
                "another name: bucket names are global) or the RAM policy lacks oss:* on it"
            ) from None
        raise


def ensure(s3: Any, bucket: str, region: str) -> list[str]:
    """Bring the bucket to the wanted state; return what was created or changed (empty: nothing to do)."""
    changes: list[str] = []
    doing = "checking the bucket"
    try:
        if not _exists(s3, bucket):
            doing = "creating the bucket"
            try:
                s3.create_bucket(Bucket=bucket, ACL="private", CreateBucketConfiguration={"LocationConstraint": region})
                changes.append(f"created bucket {bucket} in {region} (private)")
            except ClientError as error:
                if _code(error) == "BucketAlreadyExists":
                    raise BucketError(
                        f"bucket name {bucket} is taken by another account (bucket names are global): pick another"
                    ) from None
                if _code(error) != "BucketAlreadyOwnedByYou":  # created meanwhile by a concurrent run: fine
                    raise

        doing = "reading the bucket's access control list"
        grants = s3.get_bucket_acl(Bucket=bucket).get("Grants", [])
        public = [g for g in grants if g.get("Grantee", {}).get("URI") in (_ALL_USERS, _AUTHENTICATED_USERS)]
        if public:
            doing = "making the bucket private"
            s3.put_bucket_acl(Bucket=bucket, ACL="private")
            changes.append(f"made bucket {bucket} private (it granted {len(public)} public permission(s))")

        doing = "reading the bucket's versioning"
        if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
            doing = "enabling versioning"
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            changes.append(f"enabled versioning on {bucket}")

        doing = "reading the bucket's default encryption"
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as error:
            if _code(error) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            rules = []
        if not any(r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules):
            doing = "enabling default encryption"
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )
            changes.append(f"enabled default server-side encryption (AES256) on {bucket}")
    except BucketError:
        raise
    except (ClientError, BotoCoreError) as error:
        raise _explain(error, bucket, doing) from None
    except (ResponseParserError, KeyError, TypeError, AttributeError):
        # An endpoint that is not OSS (a web server, a proxy page) answers with something that is not S3's XML.
        raise BucketError(
            f"the endpoint does not answer like OSS's S3-compatible API while {doing} for {bucket}: check --region "
            f"and {oss.ENDPOINT_ENV}"
        ) from None
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.state_bucket",
        description="Create the team's OSS bucket for the Pulumi state and the image catalog (idempotent).",
    )
    parser.add_argument("--bucket", required=True, help="bucket name, globally unique, e.g. ha-webapp-state-<id>")
    parser.add_argument("--region", required=True, help="OSS region, e.g. cn-hangzhou")
    args = parser.parse_args(argv)
    problems = []
    if not _BUCKET_NAME.match(args.bucket):
        problems.append(
            f"--bucket {args.bucket!r}: expected 3-63 lowercase letters, digits or hyphens, starting and ending "
            "with a letter or digit"
        )
    if not _REGION.match(args.region):
        problems.append(f"--region {args.region!r}: expected a region ID such as cn-hangzhou")
    if problems:
        print("\n".join(f"state_bucket: {p}" for p in problems), file=sys.stderr)
        return 2
    try:
        s3 = oss.client(region=args.region)
        changes = ensure(s3, args.bucket, args.region)
    except (BucketError, ValueError) as error:
        print(f"state_bucket: {error}", file=sys.stderr)
        return 2
    for change in changes:
        print(change)
    if not changes:
        print(f"bucket {args.bucket} is already private, versioned and encrypted: nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
