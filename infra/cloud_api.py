"""What the release steps share when they call an Alibaba Cloud API during `pulumi up` (the health gate's SLB calls,
the schema migration's ECS calls): which error answers mean "not now", how long to wait after one, what an error says
without the request's details, and where a rehearsal's stand-in for the API is.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Set
from typing import Any

# Error codes worth another call whatever the API: it is busy or briefly unavailable, which says nothing about the
# request. Throttling comes as Throttling, Throttling.User, Throttling.Api...
_TRANSIENT_CODES = frozenset({"ServiceUnavailable", "InternalError", "UnknownError", "SystemBusy", "Throttling"})
# HTTP statuses that mean "not now" whatever the body says: too many requests, and the gateway errors.
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# The longest wait between two calls after the API said "not now" (before jitter).
MAX_BACKOFF_SECONDS = 60.0


class TransientApiError(Exception):
    """The API did not answer this time, or answered "not now" (`answered`); the next call may succeed."""

    def __init__(self, message: str, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered


def describe_error(exc: Exception) -> str:
    """What the SDK's exception says, without request details (which carry the access key ID)."""
    code = error_code(exc)
    message = getattr(exc, "message", None)
    status = status_of(exc)
    if code or message:
        return " ".join(str(p) for p in (f"HTTP {status}" if status else None, code, message) if p)
    return type(exc).__name__


def error_code(exc: Exception) -> str:
    """The API's error code, or "" when the answer had none (or there was no answer)."""
    code = str(getattr(exc, "code", "") or "")
    return "" if code == "None" else code  # the SDK formats a missing Code as the text "None"


def status_of(exc: Exception) -> int | None:
    """The HTTP status of the API's answer, or None when there was no answer (a network error)."""
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    if status is None:
        data = getattr(exc, "data", None)
        status = data.get("statusCode") if isinstance(data, dict) else None
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def is_transient(status: int | None, code: str, busy_codes: Set[str] = frozenset()) -> bool:
    """Whether an error answer (HTTP status, API error code) says "not now" rather than "no".

    `busy_codes` are the calling API's own "this resource is busy" codes (e.g. SLB's IncorrectLoadBalancerStatus).
    """
    if status is None or not code:
        return True  # no answer, or an answer without a code (a gateway's page): nothing says the request is wrong
    if status in _TRANSIENT_STATUSES or code in busy_codes:
        return True
    return code.split(".")[0] in _TRANSIENT_CODES or code.startswith("Throttling") or "Busy" in code


def backoff(interval_seconds: float, refused_in_a_row: int, jitter: Callable[[], float]) -> float:
    """The wait after the `refused_in_a_row`-th "not now" in a row: doubling from the interval up to
    MAX_BACKOFF_SECONDS, then half to all of it (jitter), so that the steps of several stacks do not call in step."""
    doubled = min(MAX_BACKOFF_SECONDS, interval_seconds * 2.0 ** (refused_in_a_row - 1))
    return float(doubled * (0.5 + 0.5 * jitter()))


def rehearsal_endpoint(variable: str) -> tuple[str | None, str | None]:
    """(host:port, scheme) of a rehearsal's stand-in for an API, from `variable` (e.g. http://127.0.0.1:8123), or
    (None, None) outside a rehearsal. Read at run time in the engine's plugin process (which inherits the CLI's
    environment), never stored in the provider object, which is pickled into the state."""
    value = os.environ.get(variable)
    if not value:
        return None, None
    url = urllib.parse.urlsplit(value)
    return url.netloc, url.scheme


# Set only in a rehearsal (localcloud/): the local cloud's wall seconds per simulated second. The steps then wait
# interval times scale between polls, so that their polls are as far apart in the cloud's simulated time as they
# would be in a real cloud's; otherwise a 5 s poll would stand for thousands of simulated seconds and hide how long a
# release really takes (benchmarks/lifecycle.py). Timeouts stay in wall seconds: they guard the run, not the simulation.
TIME_SCALE_VARIABLE = "HA_WEBAPP_REHEARSAL_TIME_SCALE"
# The shortest wall-clock wait between two polls, whatever the scale: the local cloud records every poll.
_MIN_REHEARSAL_POLL_SECONDS = 0.05


def poll_interval(interval_seconds: float) -> float:
    """The wait between two polls: `interval_seconds`, or its simulated equivalent in a rehearsal."""
    value = os.environ.get(TIME_SCALE_VARIABLE)
    if not value:
        return interval_seconds
    try:
        scale = float(value)
    except ValueError:
        scale = 0.0
    if not 0.0 < scale <= 1.0:
        raise ValueError(
            f"{TIME_SCALE_VARIABLE}={value!r}: expected a number in (0, 1], the rehearsal's wall seconds per "
            "simulated second (set by `python -m localcloud`; unset it outside a rehearsal)"
        )
    return max(_MIN_REHEARSAL_POLL_SECONDS, interval_seconds * scale)


def sdk_config(region: str, endpoint: str | None, protocol: str | None) -> Any:
    """An Alibaba Cloud SDK client configuration with the default credential chain (environment variables, the OIDC
    role variables in CI, or an ECS RAM role)."""
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_tea_openapi.models import Config

    return Config(credential=CredentialClient(), region_id=region, endpoint=endpoint, protocol=protocol)
