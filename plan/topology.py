"""The stack's serving path as recorded: DNS -> EIP -> SLB -> listener -> server group -> app servers, and the RDS.

Resources are linked through the URNs the engine records for each input (`property_dependencies`), never through
IDs: in preview mode every ID is still unknown, and the audit and the diagram must work there too.
"""

from __future__ import annotations

from dataclasses import dataclass

from plan.offline import Evaluation, Resource

VPC = "alicloud:vpc/network:Network"
VSWITCH = "alicloud:vpc/switch:Switch"
ECS = "alicloud:ecs/instance:Instance"
RDS = "alicloud:rds/instance:Instance"
SLB = "alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer"
LISTENER = "alicloud:slb/listener:Listener"
SERVER_GROUP = "alicloud:slb/serverGroup:ServerGroup"
MEMBER = "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment"
EIP = "alicloud:ecs/eipAddress:EipAddress"
EIP_ASSOCIATION = "alicloud:ecs/eipAssociation:EipAssociation"
DNS = "alicloud:dns/alidnsRecord:AlidnsRecord"
SERVER_CERTIFICATE = "alicloud:slb/serverCertificate:ServerCertificate"
ALARM = "alicloud:cms/alarm:Alarm"
# The release's schema migration (infra/migration.py), a step of the update rather than a cloud resource.
SCHEMA_MIGRATION = "pulumi-python:dynamic/ecs:SchemaMigration"


@dataclass(frozen=True)
class Server:
    """An app server, the zone of its VSwitch (None if not linked to one) and whether the SLB sends it traffic."""

    resource: Resource
    zone: str | None
    vswitch: Resource | None
    serving: bool


@dataclass(frozen=True)
class Topology:
    """What serves the stack, found by following recorded links from the public entry inwards."""

    stack: str
    vpc: Resource | None
    vswitches: list[Resource]
    zones: list[str]
    dns_records: list[Resource]
    eip: Resource | None
    load_balancer: Resource | None
    listeners: list[Resource]
    server_groups: list[Resource]
    servers: list[Server]
    databases: list[Resource]


class _Links:
    """Which recorded resources an input of a resource comes from, and the reverse."""

    def __init__(self, ev: Evaluation) -> None:
        self.ev = ev
        self.by_urn = ev.by_urn()

    def sources(self, resource: Resource, key: str, type_token: str) -> list[Resource]:
        found = (self.by_urn.get(urn) for urn in resource.property_dependencies.get(key, ()))
        return [r for r in found if r is not None and r.type == type_token]

    def source(self, resource: Resource, key: str, type_token: str) -> Resource | None:
        found = self.sources(resource, key, type_token)
        return found[0] if len(found) == 1 else None

    def users(self, target: Resource, key: str, type_token: str) -> list[Resource]:
        found = [r for r in self.ev.of_type(type_token) if target.urn in r.property_dependencies.get(key, ())]
        return sorted(found, key=_name)


def topology(ev: Evaluation) -> Topology:
    links = _Links(ev)
    # Registration order follows the program's asynchronous resolution; names give a stable order (zone a, b...).
    vswitches = sorted(ev.of_type(VSWITCH), key=_name)
    vpcs = ev.of_type(VPC)

    # The public entry: the EIP associated with a load balancer, and the DNS records that point at that EIP.
    eip = load_balancer = None
    for association in ev.of_type(EIP_ASSOCIATION):
        target = links.source(association, "instanceId", SLB)
        address = links.source(association, "allocationId", EIP)
        if target is not None and address is not None and association.value("instanceType") == "SlbInstance":
            eip, load_balancer = address, target
            break
    dns_records = links.users(eip, "value", DNS) if eip is not None else []

    listeners = links.users(load_balancer, "loadBalancerId", LISTENER) if load_balancer is not None else []
    groups: list[Resource] = []
    for listener in listeners:
        groups += [g for g in links.sources(listener, "serverGroupId", SERVER_GROUP) if g not in groups]
    serving: set[str] = set()
    for group in groups:
        for member in links.users(group, "serverGroupId", MEMBER):
            serving.update(s.urn for s in links.sources(member, "serverId", ECS))

    servers = []
    for resource in sorted(ev.of_type(ECS), key=_name):
        vswitch = links.source(resource, "vswitchId", VSWITCH)
        zone = vswitch.value("zoneId") if vswitch is not None else None
        servers.append(Server(resource, zone, vswitch, resource.urn in serving))

    databases = sorted(ev.of_type(RDS), key=_name)
    return Topology(
        stack=ev.stack,
        vpc=vpcs[0] if len(vpcs) == 1 else None,
        vswitches=vswitches,
        zones=_zones(vswitches, servers, load_balancer, databases),
        dns_records=dns_records,
        eip=eip,
        load_balancer=load_balancer,
        listeners=listeners,
        server_groups=groups,
        servers=servers,
        databases=databases,
    )


def _name(resource: Resource) -> str:
    return resource.name


def load_balancer_zones(slb: Resource) -> list[str]:
    """Master zone first, then the standby zone if it has one."""
    return [z for z in (slb.value("masterZoneId"), slb.value("slaveZoneId")) if isinstance(z, str) and z]


def database_zones(rds: Resource) -> list[str]:
    """Primary zone first, then the standby zones."""
    keys = ("zoneId", "zoneIdSlaveA", "zoneIdSlaveB")
    return [z for z in (rds.value(k) for k in keys) if isinstance(z, str) and z]


def _zones(
    vswitches: list[Resource], servers: list[Server], slb: Resource | None, databases: list[Resource]
) -> list[str]:
    """Every zone the stack places something in: the VSwitches' zones in order, then any other zone named."""
    named = [str(v.value("zoneId")) for v in vswitches if v.value("zoneId")]
    named += [s.zone for s in servers if s.zone]
    named += load_balancer_zones(slb) if slb is not None else []
    for rds in databases:
        named += database_zones(rds)
    return list(dict.fromkeys(named))
