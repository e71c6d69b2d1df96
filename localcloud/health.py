"""Backend health, derived from the resources and the controls, and replayed from the timeline.

A server is `normal` on a listener when, at that simulated moment: it is a member of the listener's server group (the
membership finished being created and has not started being deleted), it is running (created, not being deleted),
its boot is over (`healthyAt`: the end of its creation, or of an image change, plus the boot time), its image is not
marked bad, its zone is not down, and one of its security groups admits the back-end port from the SLB's range.
Otherwise it is `abnormal`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from localcloud.resources import SLB_SOURCE, get, key, plain

HEALTHY = "normal"
UNHEALTHY = "abnormal"
_LISTENER = "alicloud:slb/listener:Listener"
_MEMBER = "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment"
_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
# States in which a resource serves: created and not on its way out.
_SERVING = ("ready", "updating")


def _number(value: Any) -> float:
    return float(value) if value not in (None, "") else 0.0


def backends(cloud: dict[str, Any], load_balancer_id: str, listener_port: int, at: float) -> list[dict[str, Any]]:
    """DescribeHealthStatus's BackendServer entries for one listener at simulated time `at`."""
    resources = cloud["resources"].values()
    # The listener on that port that forwards to a server group (a redirecting listener has none: no backends).
    groups = {
        plain(r["inputs"].get("serverGroupId")): str(r["inputs"].get("protocol") or "http")
        for r in resources
        if r["type"] == _LISTENER
        and r["state"] in _SERVING
        and r["inputs"].get("loadBalancerId") == load_balancer_id
        and int(_number(r["inputs"].get("frontendPort"))) == listener_port
        and r["inputs"].get("serverGroupId")
    }
    entries = []
    for member in sorted(resources, key=lambda r: r["id"]):
        if member["type"] != _MEMBER or member["state"] not in _SERVING:
            continue
        if member["inputs"].get("serverGroupId") not in groups:
            continue
        server_id = member["inputs"].get("serverId")
        port = int(_number(member["inputs"].get("port")))
        server = get(cloud, "alicloud:ecs/instance:Instance", server_id)
        status = HEALTHY if server is not None and server_healthy(cloud, server, port, at) else UNHEALTHY
        entries.append(
            {
                "ServerId": server_id,
                "ServerHealthStatus": status,
                "Port": port,
                "ListenerPort": listener_port,
                "Protocol": groups[member["inputs"].get("serverGroupId")],
                "ServerIp": server["outputs"].get("privateIp", "") if server else "",
            }
        )
    return entries


def server_healthy(cloud: dict[str, Any], server: dict[str, Any], port: int, at: float) -> bool:
    if server["state"] not in _SERVING:
        return False
    healthy_at = server.get("healthyAt")
    if healthy_at is None or at < healthy_at:
        return False
    if server["inputs"].get("imageId") in cloud["badImages"]:
        return False
    if server.get("zone") in cloud["zonesDown"]:
        return False
    return _admits_health_checks(cloud, server, port)


def _admits_health_checks(cloud: dict[str, Any], server: dict[str, Any], port: int) -> bool:
    groups = set(server["inputs"].get("securityGroups") or [])
    for rule in cloud["resources"].values():
        if rule["type"] != _RULE or rule["state"] not in _SERVING:
            continue
        inputs = plain(rule["inputs"])
        if inputs.get("securityGroupId") not in groups or inputs.get("type") != "ingress":
            continue
        if inputs.get("policy", "accept") != "accept" or inputs.get("ipProtocol") not in ("tcp", "all"):
            continue
        low, _, high = str(inputs.get("portRange", "-1/-1")).partition("/")
        in_range = int(low) == -1 or int(low) <= port <= int(high)
        try:
            source = ipaddress.ip_network(inputs.get("cidrIp") or "")
        except ValueError:
            continue
        if in_range and source.version == 4 and SLB_SOURCE.subnet_of(source):  # type: ignore[arg-type]
            return True
    return False


def replay(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(event, cloud as it was right after it) for every event of a timeline."""
    cloud: dict[str, Any] = {"resources": {}, "badImages": [], "zonesDown": []}
    states = []
    for event in events:
        kind = event["event"]
        if "record" in event:
            record = dict(event["record"])
            if kind == "delete-end":
                cloud["resources"].pop(key(record["type"], record["id"]), None)
            else:
                cloud["resources"][key(record["type"], record["id"])] = record
        elif kind == "mark-bad-image":
            cloud["badImages"] = sorted({*cloud["badImages"], event["image"]})
        elif kind == "zone-down":
            cloud["zonesDown"] = sorted({*cloud["zonesDown"], event["zone"]})
        elif kind == "zone-up":
            cloud["zonesDown"] = [z for z in cloud["zonesDown"] if z != event["zone"]]
        states.append((event, {**cloud, "resources": dict(cloud["resources"])}))
    return states


def healthy_backends_over_time(
    events: list[dict[str, Any]], load_balancer_id: str, listener_port: int = 80
) -> list[tuple[float, int]]:
    """(simulated time, number of healthy backends) at every moment the number changes, from the first event on.

    Health changes without an event when a server finishes booting, so those moments are added from `healthyAt`.
    """
    states = replay(events)
    moments: list[tuple[float, dict[str, Any]]] = []
    for index, (event, cloud) in enumerate(states):
        moments.append((event["sim"], cloud))
        following = states[index + 1][0]["sim"] if index + 1 < len(states) else float("inf")
        for record in cloud["resources"].values():
            healthy_at = record.get("healthyAt")
            if healthy_at is not None and event["sim"] < healthy_at < following:
                moments.append((healthy_at, cloud))
    moments.sort(key=lambda m: m[0])
    series: list[tuple[float, int]] = []
    for at, cloud in moments:
        entries = backends(cloud, load_balancer_id, listener_port, at)
        count = sum(1 for b in entries if b["ServerHealthStatus"] == HEALTHY)
        if not series or series[-1][1] != count:
            if series and series[-1][0] == at:
                series[-1] = (at, count)
            else:
                series.append((at, count))
    return series
