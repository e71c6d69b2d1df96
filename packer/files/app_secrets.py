"""Boot helper baked into the app image: fetch the database password from an OOS encrypted parameter before the app
starts.

The image holds no secret and the user data names the parameter without carrying it (infra/user_data.py). app.service
runs this as root in `ExecStartPre=` with the settings from /etc/app/app.env in its environment:

    DB_PASSWORD_PARAMETER  the OOS encrypted parameter's name    ALIBABA_CLOUD_REGION  its region
    ALIBABA_CLOUD_ECS_METADATA  the instance's RAM role           DB_PASSWORD_ROTATION  logged only (it rolls servers)

and writes `DB_PASSWORD="…"` to a root-only file on /run (tmpfs: never on disk), which the unit reads as an
EnvironmentFile for `ExecStart=`. The parameter is read with GetSecretParameter and WithDecryption=true (OOS decrypts
with KMS on the caller's behalf, so the role needs oos:GetSecretParameter on the parameter and kms:GetSecretValue on the
KMS secret behind it); without WithDecryption the API answers an empty value. The latest version is read: a rotation
updates the parameter in place (a new version) and changes the database account at the same time, so the latest value
is the one that works. Credentials come from the standard Alibaba Cloud chain: on an app server, the instance's RAM role
through the metadata service in token mode (ALIBABA_CLOUD_IMDSV1_DISABLED=true). The RAM role is attached just after the
instance is created, so the first attempts may find no credentials: every failure that can pass is retried until the
deadline, each logged (to the journal) with its code, never with the secret.

Exit codes: 0 written; 1 gave up (deadline or a refusal that will not pass); 2 missing or bad settings.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("app-secrets")

PARAMETER_ENV = "DB_PASSWORD_PARAMETER"  # pragma: allowlist secret (a variable name)
ROTATION_ENV = "DB_PASSWORD_ROTATION"  # pragma: allowlist secret (a variable name)
REGION_ENV = "ALIBABA_CLOUD_REGION"
PASSWORD_VARIABLE = "DB_PASSWORD"  # pragma: allowlist secret (a variable name)

# OOS answers these when the request itself is wrong; asking again cannot help. Anything else (no credentials yet,
# Forbidden while the role's policy propagates, throttling, network) may pass and is retried. EntityNotExists.Parameter
# is the code the provider itself treats as "not found" (terraform-provider-alicloud service_alicloud_oos_v2.go).
PERMANENT_CODES = frozenset(
    {
        "EntityNotExists.Parameter",
        "InvalidParameter",
        "MissingParameter",
        "InvalidAction.NotFound",
    }
)


class SettingsError(Exception):
    """A required setting is missing or malformed."""


class PermanentError(Exception):
    """OOS refused in a way that asking again will not change."""


@dataclass(frozen=True)
class Settings:
    parameter_name: str
    region: str
    rotation: str = ""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        problems = []
        values = {}
        for key, pattern, expected in (
            # OOS parameter names: 2-180 letters, digits, -, _ and / (CreateSecretParameter, provider docs).
            (PARAMETER_ENV, r"[A-Za-z0-9/_-]{2,180}", "an OOS encrypted parameter name"),
            (REGION_ENV, r"[a-z]{2}-[a-z0-9-]+", "a region ID, e.g. cn-hangzhou"),
        ):
            value = environ.get(key, "")
            if not value:
                problems.append(f"{key} is not set: expected {expected} (written to /etc/app/app.env by user data)")
            elif not re.fullmatch(pattern, value):
                problems.append(f"{key}={value!r} is not {expected}")
            values[key] = value
        if problems:
            raise SettingsError("; ".join(problems))
        return cls(values[PARAMETER_ENV], values[REGION_ENV], environ.get(ROTATION_ENV, ""))


def oos_client(settings: Settings, endpoint: str | None, protocol: str | None) -> Any:
    """An OOS client with the default credential chain (the instance's RAM role on an app server)."""
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_oos20190601.client import Client as OosClient
    from alibabacloud_tea_openapi.models import Config

    # App servers have no public address: "vpc" makes the SDK use OOS's VPC endpoint (oos-vpc.<region>.aliyuncs.com).
    config = Config(
        credential=CredentialClient(),
        region_id=settings.region,
        network="vpc",
        endpoint=endpoint,
        protocol=protocol,
        connect_timeout=5000,
        read_timeout=10000,
    )
    return OosClient(config)


def oos_reader(settings: Settings, endpoint: str | None, protocol: str | None) -> Callable[[], str]:
    """A function returning the parameter's decrypted value, one GetSecretParameter call each time."""
    from alibabacloud_oos20190601.models import GetSecretParameterRequest
    from alibabacloud_tea_util.models import RuntimeOptions

    client = oos_client(settings, endpoint, protocol)
    request = GetSecretParameterRequest(name=settings.parameter_name, region_id=settings.region, with_decryption=True)

    def read() -> str:
        body = client.get_secret_parameter_with_options(request, RuntimeOptions(autoretry=False)).body
        value = body.parameter.value if body is not None and body.parameter is not None else None
        if not value:
            raise PermanentError(f"OOS returned no value for {settings.parameter_name}")
        return str(value)

    return read


def describe(error: Exception) -> tuple[str, bool]:
    """A one-line description of a failed attempt (never the secret), and whether it is worth retrying."""
    code = getattr(error, "code", None)
    text = str(getattr(error, "message", None) or error)
    message = (text.splitlines() or [type(error).__name__])[0]
    if isinstance(error, PermanentError):
        return str(error), False
    if code:
        return f"{code}: {message}", code not in PERMANENT_CODES
    return f"{type(error).__name__}: {message}", True


def fetch(
    read: Callable[[], str],
    deadline_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Call `read` until it succeeds, a refusal is permanent, or the deadline passes (backoff 2 s doubling to 30 s)."""
    start = clock()
    delay = 2.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return read()
        except Exception as error:
            reason, retry = describe(error)
            elapsed = clock() - start
            if not retry:
                raise PermanentError(f"attempt {attempt}: {reason}") from None
            if elapsed + delay > deadline_seconds:
                raise PermanentError(f"gave up after {attempt} attempts in {elapsed:.0f} s; last: {reason}") from None
            log.warning("attempt %d failed (%s); retrying in %.0f s", attempt, reason, delay)
            sleep(delay)
            delay = min(delay * 2, 30.0)


def env_line(name: str, value: str) -> str:
    """One systemd EnvironmentFile line; double quotes and backslashes escaped so any single-line value survives."""
    if "\n" in value or "\r" in value:
        raise PermanentError(f"the value of {name} spans several lines; an environment file cannot hold it")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"\n'


def write_private(path: Path, content: str) -> None:
    """Write `content` readable by its owner only, atomically: the unit never reads a half-written file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as handle:  # mkstemp creates the file 0600
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(description="Fetch the app's database password from OOS into an env file.")
    parser.add_argument("--output", type=Path, default=Path("/run/app/secrets.env"), help="file to write (0600)")
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds to keep retrying (default 600)")
    parser.add_argument("--endpoint", help="OOS endpoint host[:port] instead of the region's VPC endpoint")
    parser.add_argument("--protocol", choices=["https", "http"], default=None, help="with --endpoint; default https")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="app-secrets: %(message)s", stream=sys.stderr)

    try:
        settings = Settings.from_environment(environ)
    except SettingsError as error:
        log.error("%s", error)
        return 2
    try:
        password = fetch(oos_reader(settings, args.endpoint, args.protocol), args.deadline)
        write_private(args.output, env_line(PASSWORD_VARIABLE, password))
    except PermanentError as error:
        log.error("could not read %s: %s", settings.parameter_name, error)
        return 1
    except OSError as error:
        log.error("could not write %s: %s", args.output, error.strerror or error)
        return 1
    log.info("wrote %s from %s (rotation %s)", args.output, settings.parameter_name, settings.rotation or "?")
    return 0


if __name__ == "__main__":
    sys.exit(main())
