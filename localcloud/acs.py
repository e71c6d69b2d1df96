"""Serving one Alibaba Cloud RPC-style API action on 127.0.0.1, for the SDK clients the project uses.

It speaks what the Alibaba Cloud SDK sends and expects: the action in `x-acs-action`, the parameters in the query
string (and, for some APIs, a form body), signed with ACS3-HMAC-SHA256, answered with the documented JSON body or error
body. A signed API's stand-in (`FakeAcsApi`) checks the signature with the secret it was given, so a test proves the
SDK really signs with the configured credentials; what it answers is up to its `answer` method (localcloud/slb_api.py,
tests/fakes/slb.py, tests/fakes/oos.py), or, for a stand-in of several actions, `answer_action` (localcloud/ecs_api.py,
tests/fakes/ecs.py). An anonymous API's stand-in answers each request itself (tests/fakes/sts.py).
Shared by the local cloud and the tests' stand-ins, which is why it lives here and not under tests/.
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
from typing import ClassVar, Protocol, TypeVar


class StandIn(Protocol):
    """What `serve` drives: an endpoint to fill in and an answer for each request."""

    endpoint: str

    def respond(self, method: str, path: str, query: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        """(HTTP status, JSON body) for one request; `headers` have lower-case names."""
        ...


@dataclass
class FakeAcsApi:
    """One signed action of one API; subclasses say what it answers."""

    access_key_id: str
    access_key_secret: str
    requests: list[dict[str, str]] = field(default_factory=list)
    raw_requests: list[str] = field(default_factory=list)
    endpoint: str = ""

    # The one action a single-action stand-in answers (with `answer`), or the several it routes (with `answer_action`).
    action = ""
    actions: ClassVar[frozenset[str]] = frozenset()

    def answer(self, query: dict[str, str]) -> tuple[int, dict[str, object]]:
        raise NotImplementedError

    def answer_action(self, action: str, query: dict[str, str]) -> tuple[int, dict[str, object]]:
        """The answer to one signed request of `action`; a stand-in of several actions routes here."""
        return self.answer(query)

    def respond(self, method: str, path: str, query: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        self.raw_requests.append(f"{method} {path}?{query}\n{json.dumps(headers)}")
        action = headers.get("x-acs-action", "")
        if action not in (self.actions or {self.action}):
            return 400, {"Code": "InvalidAction.NotFound", "Message": "Specified api is not found"}
        error = _signature_error(self, method, path, query, headers)
        if error:
            return 400, {"Code": error, "Message": "Specified signature is not matched."}
        return self.answer_action(action, dict(urllib.parse.parse_qsl(query)))


def _signature_error(fake: FakeAcsApi, method: str, path: str, query: str, headers: dict[str, str]) -> str | None:
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


Fake = TypeVar("Fake", bound=StandIn)


@contextmanager
def serve(fake: Fake) -> Iterator[Fake]:
    """Serve `fake` on 127.0.0.1 (a free port) for the duration of the block; sets `fake.endpoint` (host:port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            target = self.path
            self.rfile.read(int(self.headers.get("content-length") or 0))
            if "://" in target:
                # The absolute form: a client that uses this server as its HTTP proxy (see `proxy_url`). Only requests
                # to this server itself are answered; anything else would leave 127.0.0.1.
                url = urllib.parse.urlsplit(target)
                if url.netloc != fake.endpoint:
                    self._answer(403, {"Code": "Forbidden.NotLocal", "Message": f"{url.netloc} is not reachable."})
                    return
                target = url.path + (f"?{url.query}" if url.query else "")
            path, _, query = target.partition("?")
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._answer(*fake.respond(self.command, path, query, headers))

        def do_GET(self) -> None:
            self.do_POST()

        def do_CONNECT(self) -> None:
            self._answer(403, {"Code": "Forbidden.NotLocal", "Message": f"{self.path} is not reachable."})

        def _answer(self, status: int, answer: dict[str, object]) -> None:
            payload = json.dumps(answer).encode()
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
