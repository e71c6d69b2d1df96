"""The stack's architecture as SVG and PNG, drawn by `diagrams` (Graphviz) from the recorded resources.

internet -> DNS -> EIP -> SLB -> the app servers of each zone -> the RDS primary, with the standby in the other
zone, all inside the VPC. Only what the recorded links show is drawn: a server the load balancer does not send
traffic to has no edge from it, a missing standby is simply absent.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from diagrams import Cluster, Diagram, Edge, Node
from diagrams.alibabacloud.compute import ElasticComputeService
from diagrams.alibabacloud.database import RelationalDatabaseService
from diagrams.alibabacloud.network import ElasticIpAddress, ServerLoadBalancer
from diagrams.alibabacloud.web import Dns
from diagrams.onprem.network import Internet

from plan.offline import Resource
from plan.topology import Server, Topology, database_zones, load_balancer_zones

FORMATS = ("svg", "png")
# Beyond this many servers in a zone, one node stands for all of them: the picture is about placement, not count.
MAX_SERVERS_DRAWN = 4
_ICON_HREF = re.compile(r'xlink:href="([^"]+\.png)"')


def render(topo: Topology, directory: Path, project: str) -> list[Path]:
    """Write `<directory>/<stack>.svg` and `.png`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / topo.stack
    with Diagram(
        f"{project} {topo.stack}",
        filename=str(base),
        outformat=list(FORMATS),
        show=False,
        direction="TB",
        graph_attr={"pad": "0.5", "fontsize": "18"},
    ):
        _draw(topo)
    paths = [base.with_suffix(f".{fmt}") for fmt in FORMATS]
    _embed_icons(paths[0])
    return paths


def _draw(topo: Topology) -> None:
    internet = Internet("internet", nodeid="internet")
    entry: Node = internet
    for record in topo.dns_records:
        dns = Dns(
            f"{record.value('rr')}.{record.value('domainName')}\n{record.value('type')} record", nodeid=_id(record)
        )
        entry >> dns
        entry = dns
    eip = None
    if topo.eip is not None:
        eip = ElasticIpAddress(f"{topo.eip.name}\nEIP {topo.eip.value('bandwidth')} Mbps", nodeid=_id(topo.eip))
        entry >> eip

    vpc_label = "VPC"
    if topo.vpc is not None:
        vpc_label = f"VPC {topo.vpc.value('vpcName')}, {topo.vpc.value('cidrBlock')}"
    with Cluster(vpc_label):
        slb = None
        if topo.load_balancer is not None:
            slb = ServerLoadBalancer(_load_balancer_label(topo), nodeid=_id(topo.load_balancer))
            if eip is not None:
                eip >> slb
        servers: list[Node] = []
        primaries: dict[str, Node] = {}
        standbys: dict[str, list[Node]] = {}
        for letter, zone in zip("ABCDEFGH", topo.zones, strict=False):
            with Cluster(_zone_label(topo, letter, zone)):
                in_zone = _draw_servers([s for s in topo.servers if s.zone == zone], slb)
                servers += in_zone
                for rds in topo.databases:
                    zones = database_zones(rds)
                    if zones and zones[0] == zone:
                        primaries[rds.urn] = _database_node(rds, "primary", zone)
                    elif zone in zones[1:]:
                        standby = _database_node(rds, "standby", zone)
                        standbys.setdefault(rds.urn, []).append(standby)
                        # Invisible edges keep the standby below its zone's servers, level with the primary.
                        for server in in_zone:
                            server >> Edge(style="invis") >> standby
        unplaced = [s for s in topo.servers if s.zone not in topo.zones]
        if unplaced:
            with Cluster("zone unknown (no VSwitch of this stack)"):
                servers += _draw_servers(unplaced, slb)
        for urn, primary in primaries.items():
            for server in servers:
                server >> primary
            for standby in standbys.get(urn, []):
                primary - Edge(style="dashed", constraint="false") - standby


def _draw_servers(servers: list[Server], slb: Node | None) -> list[Node]:
    groups: list[list[Server]] = [[s] for s in servers]
    if len(servers) > MAX_SERVERS_DRAWN:
        serving = [s for s in servers if s.serving]
        idle = [s for s in servers if not s.serving]
        groups = [g for g in (serving, idle) if g]
    nodes = []
    for group in groups:
        first = group[0].resource
        if len(group) == 1:
            label = f"{first.name}\n{first.value('instanceType')}"
        else:
            label = f"{first.name} to {group[-1].resource.name}\n{len(group)} servers, {first.value('instanceType')}"
        if not group[0].serving:
            label += "\nNOT behind the load balancer"
        node = ElasticComputeService(label, nodeid=f"{_id(first)}-{len(group)}")
        if slb is not None and group[0].serving:
            slb >> node
        nodes.append(node)
    return nodes


def _database_node(rds: Resource, role: str, zone: str) -> Node:
    label = f"{rds.name} {role}\n{rds.value('engine')} {rds.value('engineVersion')} {rds.value('instanceType')}"
    if role == "standby":
        label += "\nreplica, takes over if the primary's zone fails"
    return RelationalDatabaseService(label, nodeid=f"{_id(rds)}-{role}-{zone}")


def _load_balancer_label(topo: Topology) -> str:
    slb = topo.load_balancer
    assert slb is not None
    zones = load_balancer_zones(slb)
    placement = f"master {zones[0]}" if zones else "no zone"
    placement += f", standby {zones[1]}" if len(zones) > 1 else ", NO standby zone"
    # Pay-by-CLCU CLBs have no specification: show how the instance is billed instead.
    lines = [f"{slb.name} {slb.value('loadBalancerSpec') or slb.value('instanceChargeType') or ''}".strip(), placement]
    for listener in topo.listeners:
        protocol = str(listener.value("protocol") or "").upper()
        line = f"{protocol} :{_number(listener.value('frontendPort'))}"
        if listener.value("listenerForward") == "on":
            line += f" redirects to :{_number(listener.value('forwardPort'))}"
        if listener.value("tlsCipherPolicy"):
            line += f", {listener.value('tlsCipherPolicy')}"
        if listener.value("healthCheck") == "on":
            line += f", health {listener.value('healthCheckUri')}"
        lines.append(line)
    return "\n".join(lines)


def _zone_label(topo: Topology, letter: str, zone: str) -> str:
    switches = [v for v in topo.vswitches if v.value("zoneId") == zone]
    subnets = ", ".join(f"{v.value('vswitchName')} {v.value('cidrBlock')}" for v in switches)
    return f"zone {letter}: {zone}, " + (f"VSwitch {subnets}" if subnets else "no VSwitch")


def _number(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _id(resource: Resource) -> str:
    return resource.name


def _embed_icons(svg: Path) -> None:
    """Graphviz links the icons by absolute path; inline them so that the SVG shows anywhere (a CI artifact)."""

    def inline(match: re.Match[str]) -> str:
        icon = Path(match[1])
        if not icon.is_file():
            return match[0]
        return f'xlink:href="data:image/png;base64,{base64.b64encode(icon.read_bytes()).decode()}"'

    svg.write_text(_ICON_HREF.sub(inline, svg.read_text()))
