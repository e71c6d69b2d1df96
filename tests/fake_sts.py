"""A local stand-in for STS AssumeRoleWithOIDC on 127.0.0.1, for infra.ci_credentials.

It speaks what the Alibaba Cloud SDK sends: an RPC-style POST with the action in `x-acs-action` and the parameters in
the query string. AssumeRoleWithOIDC is anonymous (the OIDC token is the proof), so the fake refuses a request that
carries an AccessKeyId or a signature, and answers like STS: the documented credentials body, or an error body with a
code when the token, the role or the provider is not the one it trusts.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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

    def answer(self, headers: dict[str, str], query: dict[str, str]) -> tuple[int, dict[str, object]]:
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


@contextmanager
def serve(fake: FakeSts) -> Iterator[FakeSts]:
    """Serve `fake` on 127.0.0.1 (a free port) for the duration of the block; sets `fake.endpoint` (host:port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            _, _, query = self.path.partition("?")
            self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = fake.answer(headers, dict(urllib.parse.parse_qsl(query)))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.endpoint = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
