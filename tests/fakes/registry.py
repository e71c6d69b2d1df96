"""A stand-in for a package registry and the object storage it redirects to: plain HTTP servers on 127.0.0.1 that
answer fixed routes and record what each request carried (its path and headers)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Served:
    """One server: path -> (status, body, extra headers); each request's path and headers (names in lower case:
    HTTP's are case-insensitive)."""

    routes: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""


@contextlib.contextmanager
def registry_servers() -> Iterator[tuple[Served, Served]]:
    """Two servers on two ports, i.e. two origins: the registry, and the object storage it redirects to."""
    started = []
    for _ in range(2):
        served = Served()

        class Handler(http.server.BaseHTTPRequestHandler):
            state = served

            def do_GET(self) -> None:
                self.state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, body, headers = self.state.routes.get(self.path, (404, b"not found", {}))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        served.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append((server, served))
    try:
        yield started[0][1], started[1][1]
    finally:
        for server, _ in started:
            server.shutdown()
            server.server_close()
