"""Zone-loss audit: for each zone of a stack, remove everything in it and check that the stack still serves; and the
edge audit (HTTPS or "HTTP only") and the list of alarms, read from what the stack would create.

The stack serves when, after the loss, the public entry (EIP, and the DNS records that point at it) still reaches a
load balancer with a zone left, whose listener forwards to a server group with at least one app server outside the
lost zone, and every database still has a node outside the lost zone. EIPs and DNS records are regional: a zone loss
cannot take them, but they must point at what serves.
"""

from __future__ import annotations

from typing import Any, Literal

from plan.model import Alarm, Edge, ZoneLoss
from plan.offline import Evaluation, Resource
from plan.topology import (
    ALARM,
    DNS,
    SERVER_CERTIFICATE,
    Topology,
    database_zones,
    load_balancer_zones,
    topology,
)


def audit(ev: Evaluation) -> list[ZoneLoss]:
    """One result per zone the stack uses, in zone order."""
    topo = topology(ev)
    if not topo.zones:
        return [_result(topo, "(none)", ["the stack places nothing in a zone"])]
    return [_zone_loss(topo, ev, zone) for zone in topo.zones]


def _zone_loss(topo: Topology, ev: Evaluation, zone: str) -> ZoneLoss:
    problems = _entry_problems(topo, ev)
    problems += _load_balancer_problems(topo, zone)
    problems += _server_problems(topo, zone)
    problems += _database_problems(topo, zone)
    return _result(topo, zone, problems)


def _entry_problems(topo: Topology, ev: Evaluation) -> list[str]:
    if topo.eip is None:
        return ["no EIP is associated with a load balancer: nothing reaches the stack from the internet"]
    pointing = {record.urn for record in topo.dns_records}
    return [
        f"{record.name}: the DNS record does not point at {topo.eip.name}, the load balancer's EIP"
        for record in ev.of_type(DNS)
        if record.urn not in pointing
    ]


def _load_balancer_problems(topo: Topology, zone: str) -> list[str]:
    slb = topo.load_balancer
    if slb is None:
        return []  # reported with the entry
    problems = []
    zones = load_balancer_zones(slb)
    if not [z for z in zones if z != zone]:
        standby = "no standby zone" if len(zones) < 2 else f"standby also in {zone}"
        problems.append(f"{slb.name}: the load balancer has no zone left (master in {zone}, {standby})")
    if not topo.listeners:
        problems.append(f"{slb.name}: no listener forwards traffic")
    elif not topo.server_groups:
        problems.append(f"{', '.join(r.name for r in topo.listeners)}: forwards to no server group")
    return problems


def _server_problems(topo: Topology, zone: str) -> list[str]:
    if topo.load_balancer is None or not topo.server_groups:
        return []  # nothing reaches any server; reported above
    left = [s for s in topo.servers if s.serving and s.zone is not None and s.zone != zone]
    if left:
        return []
    serving = [s for s in topo.servers if s.serving]
    where = ", ".join(f"{s.resource.name} in {s.zone or 'an unknown zone'}" for s in serving) or "none"
    return [f"no app server outside {zone} receives traffic from the load balancer (serving: {where})"]


def _database_problems(topo: Topology, zone: str) -> list[str]:
    if not topo.databases:
        return ["no RDS instance: the app has no database"]
    problems = []
    for rds in topo.databases:
        zones = database_zones(rds)
        if not [z for z in zones if z != zone]:
            problems.append(f"{rds.name}: no database node outside {zone} (zones: {_zone_list(zones)})")
    return problems


def _result(topo: Topology, zone: str, problems: list[str]) -> ZoneLoss:
    serving = [s for s in topo.servers if s.serving]
    return ZoneLoss(
        zone=zone,
        serves=not problems,
        servers_left=sum(1 for s in serving if s.zone is not None and s.zone != zone),
        servers_serving=len(serving),
        load_balancer=_takes_over("master", load_balancer_zones(topo.load_balancer), zone)
        if topo.load_balancer
        else "none",
        database="; ".join(_takes_over("primary", database_zones(r), zone) for r in topo.databases) or "none",
        entry=_entry(topo),
        problems=problems,
    )


def _takes_over(first: str, zones: list[str], lost: str) -> str:
    """Which node of a primary/standby pair serves once `lost` is gone."""
    if not zones:
        return "no zone"
    if zones[0] != lost:
        return f"{first} in {zones[0]}"
    standby = [z for z in zones[1:] if z != lost]
    return f"standby in {standby[0]}" if standby else "down"


def _entry(topo: Topology) -> str:
    if topo.eip is None:
        return "none"
    names = [f"{r.value('rr')}.{r.value('domainName')}" for r in topo.dns_records]
    return ", ".join([topo.eip.name, *names])


def _zone_list(zones: list[str]) -> str:
    return ", ".join(zones) or "none"


def edge(ev: Evaluation) -> Edge:
    """How the load balancer answers the internet, read from its listeners as recorded."""
    topo = topology(ev)
    https = next((r for r in topo.listeners if r.value("protocol") == "https"), None)
    redirect = next(
        (
            r
            for r in topo.listeners
            if r.value("protocol") == "http"
            and r.value("listenerForward") == "on"
            and https is not None
            and r.value("forwardPort") == https.value("frontendPort")
        ),
        None,
    )
    if https is None:
        return Edge(
            https=False, tls_policy=None, certificate="none", http_redirects_to_https=False, summary="HTTP only"
        )
    certificate = _certificate_source(ev, https)
    policy = https.value("tlsCipherPolicy")
    summary = f"HTTPS on {_port(https)} ({policy or 'the listener default TLS policy'}, certificate {certificate})"
    summary += f"; HTTP on {_port(redirect)} redirects to HTTPS" if redirect else "; HTTP is NOT redirected"
    return Edge(
        https=True,
        tls_policy=str(policy) if policy else None,
        certificate=certificate,
        http_redirects_to_https=redirect is not None,
        summary=summary,
    )


def _certificate_source(ev: Evaluation, listener: Resource) -> Literal["cas", "uploaded", "none"]:
    by_urn = ev.by_urn()
    sources = [by_urn[u] for u in listener.property_dependencies.get("serverCertificateId", ()) if u in by_urn]
    certificates = [r for r in sources if r.type == SERVER_CERTIFICATE]
    if not certificates:
        return "none"
    return "cas" if certificates[0].value("alicloudCertificateId") else "uploaded"


def _port(listener: Resource | None) -> str:
    value = listener.value("frontendPort") if listener else None
    return str(int(value)) if isinstance(value, float) else str(value)


def alarms(ev: Evaluation) -> list[Alarm]:
    """The stack's CloudMonitor alarm rules, in name order."""
    found = []
    for rule in sorted(ev.of_type(ALARM), key=lambda r: str(r.value("name"))):
        levels = [lvl for lvl in ("critical", "warn", "info") if rule.value(f"escalations{lvl.title()}")]
        level: Literal["critical", "warn", "info"] = levels[0] if levels else "info"  # type: ignore[assignment]
        escalation: dict[str, Any] = rule.value(f"escalations{level.title()}") or {}
        times = escalation.get("times")
        condition = (
            f"{escalation.get('statistics')} {escalation.get('comparisonOperator')} {escalation.get('threshold')} "
            f"for {int(times) if isinstance(times, float) else times} periods of {_port_number(rule.value('period'))} s"
        )
        found.append(
            Alarm(
                name=str(rule.value("name")),
                namespace=str(rule.value("project")),
                metric=str(rule.value("metric")),
                condition=condition,
                level=level,
                contact_groups=[str(g) for g in rule.value("contactGroups") or []],
            )
        )
    return found


def _port_number(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
