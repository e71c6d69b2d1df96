"""The SLB API of the local cloud on 127.0.0.1: DescribeHealthStatus, the one call the health gate makes.

Signed requests only (ACS3-HMAC-SHA256, with the cloud's keys); the answer is derived from the store at the moment of
the request (localcloud/health.py), in the documented body.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from localcloud import health
from localcloud.acs import FakeAcsApi, serve
from localcloud.cloud import LocalCloud
from localcloud.resources import get

_SLB = "alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer"


@dataclass
class SlbApi(FakeAcsApi):
    action = "DescribeHealthStatus"

    cloud: LocalCloud | None = field(default=None, repr=False)

    def answer(self, query: dict[str, str]) -> tuple[int, dict[str, object]]:
        assert self.cloud is not None
        request_id = str(uuid.uuid4()).upper()
        self.cloud.settle()
        snapshot = self.cloud.store.snapshot()
        load_balancer_id = query.get("LoadBalancerId", "")
        if get(snapshot, _SLB, load_balancer_id) is None:
            return 404, {
                "RequestId": request_id,
                "Code": "InvalidLoadBalancerId.NotFound",
                "Message": f"The specified LoadBalancerId {load_balancer_id} does not exist.",
            }
        try:
            listener_port = int(query.get("ListenerPort", ""))
        except ValueError:
            # Without a port the API answers every listener; the gate always names one.
            return 400, {"RequestId": request_id, "Code": "MissingListenerPort", "Message": "ListenerPort is required."}
        servers = health.backends(snapshot, load_balancer_id, listener_port, self.cloud.now())
        with self.cloud.store.transaction() as tx:  # what the gate saw, and when (benchmarks/lifecycle.py reads it)
            tx.record(
                "describe-health",
                loadBalancerId=load_balancer_id,
                listenerPort=listener_port,
                healthy=sorted(s["ServerId"] for s in servers if s["ServerHealthStatus"] == health.HEALTHY),
            )
        return 200, {"RequestId": request_id, "BackendServers": {"BackendServer": servers}}


@contextmanager
def serve_slb(cloud: LocalCloud) -> Iterator[str]:
    """Serve the cloud's SLB API for the duration of the block; yields its endpoint URL (http://127.0.0.1:port)."""
    credentials = cloud.store.snapshot()["credentials"]
    api = SlbApi(credentials["accessKeyId"], credentials["accessKeySecret"], cloud=cloud)
    with serve(api) as served:
        yield f"http://{served.endpoint}"
