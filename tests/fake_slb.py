"""A local stand-in for the one SLB API call the health gate makes (DescribeHealthStatus), on 127.0.0.1.

It speaks what the Alibaba Cloud SDK sends and expects: an RPC-style request with the action in `x-acs-action` and the
parameters in the query string, signed with ACS3-HMAC-SHA256, answered with the documented JSON body or error body.
It checks the signature with the secret it was given, so a test proves the SDK really signs with the configured
credentials. Each server's health follows a script: one status per poll, the last one repeating.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeSlb:
    access_key_id: str
    access_key_secret: str
    load_balancer_id: str = "lb-test"
    listener_port: int = 80
    backend_port: int = 8080
    # server ID -> statuses returned on successive polls (the last one repeats)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    # (HTTP status, error code, message) answered instead, on successive polls (then the scripts resume)
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    raw_requests: list[str] = field(default_factory=list)
    endpoint: str = ""

    def answer(self, query: dict[str, str]) -> tuple[int, dict[str, object]]:
        poll = len(self.requests)
        self.requests.append(query)
        if self.errors:
            status, code, message = self.errors.pop(0)
            return status, {"RequestId": f"req-{poll}", "Code": code, "Message": message}
        if query.get("LoadBalancerId") != self.load_balancer_id:
            return 404, {
                "RequestId": f"req-{poll}",
                "Code": "InvalidLoadBalancerId.NotFound",
                "Message": f"The specified LoadBalancerId {query.get('LoadBalancerId')} does not exist.",
            }
        servers = [
            {
                "ServerId": server,
                "ServerHealthStatus": script[min(poll, len(script) - 1)],
                "Port": self.backend_port,
                "ListenerPort": self.listener_port,
                "Protocol": "http",
                "ServerIp": f"10.0.0.{i + 10}",
            }
            for i, (server, script) in enumerate(sorted(self.scripts.items()))
            if int(query.get("ListenerPort", "0")) == self.listener_port
        ]
        return 200, {"RequestId": f"req-{poll}", "BackendServers": {"BackendServer": servers}}


def _signature_error(fake: FakeSlb, method: str, path: str, query: str, headers: dict[str, str]) -> str | None:
    """Check an ACS3-HMAC-SHA256 signature the way the API does; return the error code or None."""
    authorization = headers.get("authorization", "")
    scheme, _, rest = authorization.partition(" ")
    parts = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
    if scheme != "ACS3-HMAC-SHA256" or parts.get("Credential") != fake.access_key_id:
        return "InvalidAccessKeyId.NotFound"
    signed = parts.get("SignedHeaders", "").split(";")
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    )
    canonical_request = "\n".join(
        [
            method,
            path,
            canonical_query,
            "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed),
            ";".join(signed),
            headers.get("x-acs-content-sha256", ""),
        ]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
    expected = hmac.new(fake.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, parts.get("Signature", "")) else "SignatureDoesNotMatch"


@contextmanager
def serve(fake: FakeSlb) -> Iterator[FakeSlb]:
    """Serve `fake` on 127.0.0.1 (a free port) for the duration of the block; sets `fake.endpoint`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            path, _, query = self.path.partition("?")
            self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.raw_requests.append(f"{self.command} {self.path}\n{json.dumps(headers)}")
            error = _signature_error(fake, self.command, path, query, headers)
            if headers.get("x-acs-action") != "DescribeHealthStatus":
                status, body = 400, {"Code": "InvalidAction.NotFound", "Message": "Specified api is not found"}
            elif error:
                status, body = 400, {"Code": error, "Message": "Specified signature is not matched."}
            else:
                status, body = fake.answer(dict(urllib.parse.parse_qsl(query)))
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
