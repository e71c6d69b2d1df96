"""A local stand-in for STS AssumeRoleWithOIDC on 127.0.0.1, for pipeline.ci_credentials.

It speaks what the Alibaba Cloud SDK sends: an RPC-style POST with the action in `x-acs-action` and the parameters in
the query string (served by localcloud/acs.py). AssumeRoleWithOIDC is anonymous (the OIDC token is the proof), so the
fake refuses a request that carries an AccessKeyId or a signature, and answers like STS: the documented credentials
body, or an error body with a code when the token, the role or the provider is not the one it trusts.

With `roles` (role ARN -> trust policy document), it decides as RAM does for a role trusted by an OIDC provider: the
token's `iss`, `aud` and `sub` claims must each equal one of the values of the policy's `oidc:iss`, `oidc:aud` and
`oidc:sub` StringEquals conditions (the only condition keys RAM supports for OIDC). The token is then an unsigned
JWT (see `job_token`): what is tested is which role a job asks for and which subjects each policy admits.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.acs import serve

__all__ = ["FakeSts", "serve"]


@dataclass
class FakeSts:
    trusted_token: str
    role_arn: str
    provider_arn: str
    issued_key_id: str = "STS.fake-key-id"
    issued_secret: str = "fake-secret/with+shell$chars 'quoted'"
    issued_token: str = "CAIS-fake-security-token=="
    requests: list[dict[str, str]] = field(default_factory=list)
    endpoint: str = ""
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)

    def respond(self, method: str, path: str, raw_query: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        query = dict(urllib.parse.parse_qsl(raw_query))
        self.requests.append(query)
        request_id = f"req-{len(self.requests)}"
        if headers.get("x-acs-action") != "AssumeRoleWithOIDC" or query.get("Action") != "AssumeRoleWithOIDC":
            return 400, {"RequestId": request_id, "Code": "InvalidAction.NotFound", "Message": "no such action"}
        if "AccessKeyId" in query or "Signature" in query or "authorization" in headers:
            return 400, {"RequestId": request_id, "Code": "InvalidParameter", "Message": "anonymous API was signed"}
        claims = token_claims(query.get("OIDCToken", "")) if self.roles else None
        if (claims is None) if self.roles else query.get("OIDCToken") != self.trusted_token:
            return 400, {
                "RequestId": request_id,
                "Code": "AuthenticationFail.OIDCToken.Invalid",
                "Message": "The OIDC token is invalid.",
            }
        if query.get("OIDCProviderArn") != self.provider_arn:
            return 404, {
                "RequestId": request_id,
                "Code": "EntityNotExist.OIDCProvider",
                "Message": "The specified OIDC provider does not exist.",
            }
        if claims is not None:
            trusted = trusts(self.roles.get(query.get("RoleArn", "")), self.provider_arn, claims)
        else:
            trusted = query.get("RoleArn") == self.role_arn
        if not trusted:
            return 403, {
                "RequestId": request_id,
                "Code": "NoPermission.AssumeRole",
                "Message": "The trust policy of the role does not allow this token.",
            }
        return 200, {
            "RequestId": request_id,
            "Credentials": {
                "AccessKeyId": self.issued_key_id,
                "AccessKeySecret": self.issued_secret,
                "SecurityToken": self.issued_token,
                "Expiration": "2031-01-01T00:00:00Z",
            },
            "AssumedRoleUser": {"Arn": f"{self.role_arn}/{query.get('RoleSessionName')}", "AssumedRoleId": "3000:x"},
        }


def job_token(**claims: str) -> str:
    """An unsigned JWT with these claims, as a GitLab job's ID token carries them (the fake checks no signature)."""

    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'fake'})}.{part(claims)}.fake-signature"


def token_claims(token: str) -> dict[str, Any] | None:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def trusts(policy: dict[str, Any] | None, provider_arn: str, claims: dict[str, Any]) -> bool:
    """Whether a RAM trust policy lets a token with these claims assume its role through `provider_arn`."""
    for statement in (policy or {}).get("Statement", []):
        federated = statement.get("Principal", {}).get("Federated", [])
        if statement.get("Effect") != "Allow" or provider_arn not in federated:
            continue
        conditions = statement.get("Condition", {})
        if set(conditions) != {"StringEquals"} or not {"oidc:iss", "oidc:aud"} <= set(conditions["StringEquals"]):
            continue  # RAM requires oidc:iss and oidc:aud, with StringEquals
        wanted = conditions["StringEquals"]
        if all(claims.get(key.removeprefix("oidc:")) in _values(wanted[key]) for key in wanted):
            return True
    return False


def _values(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
