"""Exchange the pipeline's GitLab OIDC token for temporary Alibaba Cloud credentials (STS AssumeRoleWithOIDC).

    credentials="$(python -m pipeline.ci_credentials)" && eval "$credentials"   (see scripts/ci-pulumi-setup.sh)

Reads the job's ID token (`id_tokens:` in .gitlab-ci.yml) and the role to assume, PIPELINE_ROLE_ARN, which the
job's stack map sets to that stack's deploy or read role (one RAM role per environment, docs/pipeline.md), asks STS
for temporary credentials, and prints shell `export` lines for the ALIBABA_CLOUD_ variables (the provider, the health
gate and pipeline.oss read them), the ones Packer's builder reads and the AWS ones (Pulumi's s3:// state backend).
No long-lived key is stored anywhere: each role's trust policy decides which branch of which project may assume it.

Exit status 0 with the export lines on standard output; 2 with one line per problem on standard error (a missing
variable is named; STS's refusal is quoted with its code) and nothing on standard output, so `eval` sets nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TOKEN_ENV = "ALIBABA_CLOUD_OIDC_TOKEN"
# Set by the job from the stack map in .gitlab-ci.yml (e.g. $ALIBABA_CLOUD_ROLE_ARN_PROD for deploy:prod).
ROLE_ENV = "PIPELINE_ROLE_ARN"
# The one role of every stack, from before one role per environment. A project-level CI/CD variable outranks the
# variables a job sets in .gitlab-ci.yml, so a leftover one would quietly give every job that broad role: refused.
LEGACY_ROLE_ENV = "ALIBABA_CLOUD_ROLE_ARN"
PROVIDER_ENV = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"
# Optional: another STS endpoint (a VPC endpoint, or the tests' local stand-in) and its protocol.
ENDPOINT_ENV = "ALIBABA_CLOUD_STS_ENDPOINT"
PROTOCOL_ENV = "ALIBABA_CLOUD_STS_PROTOCOL"
DEFAULT_ENDPOINT = "sts.aliyuncs.com"

_ROLE_ARN = re.compile(r"^acs:ram::\d+:role/[\w.@-]+$")
_PROVIDER_ARN = re.compile(r"^acs:ram::\d+:oidc-provider/[\w.@-]+$")
# STS: 2-64 characters of letters, digits and . @ - _
_SESSION_UNSAFE = re.compile(r"[^\w.@-]")
# The last "[Errno N] reason" of a network failure, e.g. "[Errno 111] Connection refused".
_CAUSE = re.compile(r".*(\[Errno -?\d+\][^'\"()]*)", re.DOTALL)


class CredentialsError(Exception):
    """Something the operator must fix; the message says what."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str
    security_token: str
    expiration: str

    def exports(self) -> str:
        """Shell lines that put these credentials where every tool of the pipeline looks for them."""
        values = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": self.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": self.access_key_secret,
            "ALIBABA_CLOUD_SECURITY_TOKEN": self.security_token,
            # Packer's alicloud-ecs builder reads ALICLOUD_ACCESS_KEY / ALICLOUD_SECRET_KEY, and the STS token from a
            # variable without the prefix: SECURITY_TOKEN (the names compiled into Debian's Packer 1.6.6).
            "ALICLOUD_ACCESS_KEY": self.access_key_id,
            "ALICLOUD_SECRET_KEY": self.access_key_secret,
            "SECURITY_TOKEN": self.security_token,
            # Pulumi's s3:// backend (gocloud.dev + the AWS SDK) reads only the AWS names.
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.access_key_secret,
            "AWS_SESSION_TOKEN": self.security_token,
        }
        return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def session_name(environ: Mapping[str, str]) -> str:
    """A role session name that ties the STS session to the job in ActionTrail, e.g. `gitlab-1234-deploy-dev`."""
    raw = "-".join(p for p in ("gitlab", environ.get("CI_JOB_ID", ""), environ.get("CI_JOB_NAME", "")) if p)
    return _SESSION_UNSAFE.sub("-", raw)[:64]


def check_environment(environ: Mapping[str, str]) -> list[str]:
    """Every problem with the variables this tool reads, each naming the variable and what is expected."""
    problems = []
    if not environ.get(TOKEN_ENV):
        problems.append(
            f"{TOKEN_ENV} is not set: declare it under `id_tokens:` in the job (aud: sts.aliyuncs.com); GitLab "
            "then puts the job's OIDC token there"
        )
    if environ.get(LEGACY_ROLE_ENV):
        problems.append(
            f"{LEGACY_ROLE_ENV} is set: that is the one role of every stack, which outranks the stack map's; delete"
            f" that CI/CD variable (and the role, if it trusts more than one branch): each job now assumes its"
            f" stack's role, {ROLE_ENV}, from the stack map in .gitlab-ci.yml (docs/pipeline.md)"
        )
    role = environ.get(ROLE_ENV, "")
    role_example = "acs:ram::<account-id>:role/<role-name>"
    if not role or role.startswith("$"):
        problems.append(
            f"{ROLE_ENV} is not set{f' ({role} is not defined)' if role else ''}: the job's stack map in"
            f" .gitlab-ci.yml sets it from the stack's role variable, e.g. ALIBABA_CLOUD_ROLE_ARN_PROD; define that"
            f" CI/CD variable (protected), e.g. {role_example}"
        )
    elif not _ROLE_ARN.match(role):
        problems.append(f"{ROLE_ENV} is {role!r}: expected {role_example}")
    provider = environ.get(PROVIDER_ENV, "")
    provider_example = "acs:ram::<account-id>:oidc-provider/<provider-name>"
    if not provider:
        problems.append(
            f"{PROVIDER_ENV} is not set: define it as a CI/CD variable (protected, so only protected branches get"
            f" it), e.g. {provider_example}"
        )
    elif not _PROVIDER_ARN.match(provider):
        problems.append(f"{PROVIDER_ENV} is {provider!r}: expected {provider_example}")
    protocol = environ.get(PROTOCOL_ENV, "HTTPS")
    if protocol.upper() not in ("HTTP", "HTTPS"):
        problems.append(f"{PROTOCOL_ENV} is {protocol!r}: expected HTTPS (default) or HTTP")
    return problems


def assume_role(environ: Mapping[str, str], duration_seconds: int) -> Credentials:
    """Ask STS for temporary credentials of the configured role, presenting the job's OIDC token."""
    from alibabacloud_sts20150401 import models
    from alibabacloud_sts20150401.client import Client
    from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
    from alibabacloud_tea_openapi.models import Config
    from darabonba.runtime import RuntimeOptions

    problems = check_environment(environ)
    if problems:
        raise CredentialsError("\n".join(problems))
    endpoint = environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
    # AssumeRoleWithOIDC is an anonymous call (the token is the proof), so the client needs no credential.
    client = Client(
        Config(endpoint=endpoint, protocol=environ.get(PROTOCOL_ENV, "HTTPS").upper(), region_id="cn-hangzhou")
    )
    request = models.AssumeRoleWithOIDCRequest(
        oidcprovider_arn=environ[PROVIDER_ENV],
        role_arn=environ[ROLE_ENV],
        oidctoken=environ[TOKEN_ENV],
        role_session_name=session_name(environ),
        duration_seconds=duration_seconds,
    )
    runtime = RuntimeOptions(connect_timeout=5000, read_timeout=15000)
    try:
        body = client.assume_role_with_oidcwith_options(request, runtime).body
    except AlibabaCloudException as error:
        # The message names the refusal (e.g. AuthenticationFail.OIDCToken.Invalid) and never echoes the token.
        raise CredentialsError(
            f"STS refused AssumeRoleWithOIDC for {environ[ROLE_ENV]}: {error.code}: {error.message}"
        ) from None
    except Exception as error:  # the SDK wraps network failures in several types; all mean "could not reach STS"
        # The SDK's message quotes the request URL, which carries the token in its query: name the cause only.
        reason = _CAUSE.search(str(error))
        raise CredentialsError(
            f"could not reach STS at {endpoint} ({reason.group(1) if reason else type(error).__name__}); check "
            f"{ENDPOINT_ENV} and the runner's network"
        ) from None
    creds = body.credentials if body else None
    if creds is None or not (creds.access_key_id and creds.access_key_secret and creds.security_token):
        raise CredentialsError(f"STS at {endpoint} answered without credentials (request {body and body.request_id})")
    return Credentials(creds.access_key_id, creds.access_key_secret, creds.security_token, creds.expiration or "")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.ci_credentials",
        description="Print `export` lines with temporary Alibaba Cloud credentials for this GitLab job.",
    )
    parser.add_argument(
        "--duration",
        type=int,
        default=3600,
        help="seconds the credentials stay valid: 900 up to the role's maximum session duration (default 3600)",
    )
    args = parser.parse_args(argv)
    if not 900 <= args.duration <= 43200:
        print(f"--duration is {args.duration}: expected 900 to 43200 seconds", file=sys.stderr)
        return 2
    try:
        credentials = assume_role(os.environ if environ is None else environ, args.duration)
    except CredentialsError as error:
        print(f"ci_credentials: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(credentials.exports())
    print(f"ci_credentials: temporary credentials valid until {credentials.expiration}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
