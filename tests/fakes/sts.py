"""A local stand-in for STS AssumeRoleWithOIDC on 127.0.0.1, for pipeline.ci_credentials.

It speaks what the Alibaba Cloud SDK sends: an RPC-style POST with the action in `x-acs-action` and the parameters in
the query string (served by localcloud/acs.py). AssumeRoleWithOIDC is anonymous (the OIDC token is the proof), so the
fake refuses a request that carries an AccessKeyId or a signature, and answers like STS: the documented credentials
body, or an error body with a code when the token, the role or the provider is not the one it trusts.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

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

    def respond(self, method: str, path: str, raw_query: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        query = dict(urllib.parse.parse_qsl(raw_query))
        self.requests.append(query)
        request_id = f"req-{len(self.requests)}"
        if headers.get("x-acs-action") != "AssumeRoleWithOIDC" or query.get("Action") != "AssumeRoleWithOIDC":
            return 400, {"RequestId": request_id, "Code": "InvalidAction.NotFound", "Message": "no such action"}
        if "AccessKeyId" in query or "Signature" in query or "authorization" in headers:
            return 400, {"RequestId": request_id, "Code": "InvalidParameter", "Message": "anonymous API was signed"}
        if query.get("OIDCToken") != self.trusted_token:
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
        if query.get("RoleArn") != self.role_arn:
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
