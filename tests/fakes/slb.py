"""A local stand-in for the one SLB API call the health gate makes (DescribeHealthStatus), on 127.0.0.1.

Built on localcloud/acs.py (signature check, serving). Each server's health follows a script: one status per poll, the
last one repeating.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.fakes.acs import FakeAcsApi, serve

__all__ = ["FakeSlb", "serve"]


@dataclass
class FakeSlb(FakeAcsApi):
    action = "DescribeHealthStatus"

    load_balancer_id: str = "lb-test"
    listener_port: int = 80
    backend_port: int = 8080
    # server ID -> statuses returned on successive polls (the last one repeats)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    # (HTTP status, error code, message) answered instead, on successive polls (then the scripts resume); an empty
    # code leaves Code out of the body, as a gateway's or a throttling layer's answer does
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    # server ID -> statuses on a second back-end port of the same listener (a server behind two ports)
    second_port_scripts: dict[str, list[str]] = field(default_factory=dict)

    def answer(self, query: dict[str, str]) -> tuple[int, dict[str, object]]:
        poll = len(self.requests)
        self.requests.append(query)
        if self.errors:
            status, code, message = self.errors.pop(0)
            body: dict[str, object] = {"RequestId": f"req-{poll}", "Message": message}
            return status, ({**body, "Code": code} if code else body)
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
        servers += [
            {
                "ServerId": server,
                "ServerHealthStatus": script[min(poll, len(script) - 1)],
                "Port": self.backend_port + 1,
                "ListenerPort": self.listener_port,
                "Protocol": "http",
                "ServerIp": "10.0.0.99",
            }
            for server, script in sorted(self.second_port_scripts.items())
            if int(query.get("ListenerPort", "0")) == self.listener_port
        ]
        return 200, {"RequestId": f"req-{poll}", "BackendServers": {"BackendServer": servers}}
