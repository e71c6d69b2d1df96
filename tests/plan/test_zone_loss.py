"""The zone-loss audit: every real stack survives the loss of either zone, and each broken topology is caught.

The broken copies edit the recorded links (property dependencies by URN) or inputs of a preview evaluation, where
no ID is known: the audit must find the serving path without IDs.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pulumi.output import Unknown

from plan.audit import audit
from plan.offline import Evaluation
from plan.topology import topology
from tests import invariants
from tests.conftest import STACKS
from tests.mutations import changed, without

ZONE_A, ZONE_B = "cn-hangzhou-h", "cn-hangzhou-i"


def relinked(ev: Evaluation, name: str, key: str, *sources: str) -> Evaluation:
    """A copy of `ev` in which input `key` of resource `name` comes from the resources named `sources`."""
    urns = {r.name: r.urn for r in ev.resources}
    resource = next(r for r in ev.resources if r.name == name)
    links = {**resource.property_dependencies, key: tuple(urns[s] for s in sources)}
    return changed(ev, name, property_dependencies=links)


@pytest.mark.parametrize("mode", ["preview", "deploy"])
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_serves_after_losing_either_zone(
    previews: dict[str, Evaluation], evaluations: dict[str, Evaluation], stack: str, mode: str
) -> None:
    ev = (previews if mode == "preview" else evaluations)[stack]
    per_zone = invariants.settings_of(ev).app.servers_per_zone
    results = audit(ev)
    assert [(r.zone, r.serves, r.problems) for r in results] == [(ZONE_A, True, []), (ZONE_B, True, [])]
    assert [(r.servers_left, r.servers_serving) for r in results] == [(per_zone, 2 * per_zone)] * 2
    assert [(r.load_balancer, r.database) for r in results] == [
        (f"standby in {ZONE_B}", f"standby in {ZONE_B}"),
        (f"master in {ZONE_A}", f"primary in {ZONE_A}"),
    ]


Breaker = Callable[[Evaluation], Evaluation]
# name, stack, breaker, the zones whose loss takes the stack down, a problem reported for that loss
BROKEN: list[tuple[str, str, Breaker, set[str], str]] = [
    (
        "servers-in-one-zone",
        "dev",
        lambda ev: relinked(ev, "app-b1", "vswitchId", "network-vsw-a"),
        {ZONE_A},
        f"no app server outside {ZONE_A} receives traffic",
    ),
    (
        "prod-servers-in-one-zone",
        "prod",
        lambda ev: relinked(
            relinked(ev, "app-b1", "vswitchId", "network-vsw-a"), "app-b2", "vswitchId", "network-vsw-a"
        ),
        {ZONE_A},
        "serving: app-a1 in cn-hangzhou-h, app-a2 in cn-hangzhou-h, app-b1 in cn-hangzhou-h",
    ),
    (
        "server-zone-unknown",
        "dev",
        lambda ev: relinked(ev, "app-b1", "vswitchId"),
        {ZONE_A},
        "app-b1 in an unknown zone",
    ),
    (
        "rds-single-zone",
        "prod",
        lambda ev: changed(ev, "database-rds", {"zoneIdSlaveA": None}),
        {ZONE_A},
        f"database-rds: no database node outside {ZONE_A}",
    ),
    (
        "rds-standby-in-primary-zone",
        "preprod",
        lambda ev: changed(ev, "database-rds", {"zoneIdSlaveA": ZONE_A}),
        {ZONE_A},
        f"database-rds: no database node outside {ZONE_A} (zones: {ZONE_A}, {ZONE_A})",
    ),
    (
        "slb-without-standby",
        "prod",
        lambda ev: changed(ev, "lb-slb", {"slaveZoneId": None}),
        {ZONE_A},
        f"lb-slb: the load balancer has no zone left (master in {ZONE_A}, no standby zone)",
    ),
    (
        "slb-standby-in-master-zone",
        "dev",
        lambda ev: changed(ev, "lb-slb", {"slaveZoneId": ZONE_A}),
        {ZONE_A},
        f"standby also in {ZONE_A}",
    ),
    (
        "server-not-behind-slb",
        "dev",
        lambda ev: without(ev, "app-a1-member"),
        {ZONE_B},
        f"no app server outside {ZONE_B} receives traffic from the load balancer (serving: app-b1 in {ZONE_B})",
    ),
    (
        "zone-b-servers-not-behind-slb",
        "prod",
        lambda ev: without(without(ev, "app-b1-member"), "app-b2-member"),
        {ZONE_A},
        f"no app server outside {ZONE_A}",
    ),
    (
        "member-of-another-group",
        "dev",
        lambda ev: relinked(ev, "app-b1-member", "serverGroupId", "lb-http"),
        {ZONE_A},
        f"no app server outside {ZONE_A}",
    ),
    (
        "listener-without-group",
        "prod",
        lambda ev: relinked(ev, "lb-https", "serverGroupId"),
        {ZONE_A, ZONE_B},
        "lb-http, lb-https: forwards to no server group",
    ),
    (
        "no-listener",
        "dev",
        lambda ev: without(without(ev, "lb-http"), "lb-https"),
        {ZONE_A, ZONE_B},
        "lb-slb: no listener forwards traffic",
    ),
    (
        "eip-on-an-ecs",
        "prod",
        lambda ev: changed(ev, "lb-eip-slb", {"instanceType": "EcsInstance"}),
        {ZONE_A, ZONE_B},
        "no EIP is associated with a load balancer",
    ),
    (
        "dns-not-on-the-eip",
        "preprod",
        lambda ev: relinked(ev, "lb-dns", "value"),
        {ZONE_A, ZONE_B},
        "lb-dns: the DNS record does not point at lb-eip",
    ),
    ("no-database", "dev", lambda ev: without(ev, "database-rds"), {ZONE_A, ZONE_B}, "no RDS instance"),
]


@pytest.mark.parametrize(("stack", "breaker", "down", "problem"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_topology_fails_the_audit(
    previews: dict[str, Evaluation], stack: str, breaker: Breaker, down: set[str], problem: str
) -> None:
    results = audit(breaker(previews[stack]))
    assert {r.zone for r in results if not r.serves} == down
    reported = [p for r in results if not r.serves for p in r.problems]
    assert any(problem in p for p in reported), reported


def test_a_server_outside_the_group_is_not_counted_but_prod_still_serves(previews: dict[str, Evaluation]) -> None:
    # Two servers per zone: losing one membership costs capacity, not service. The audit says exactly that.
    results = audit(without(previews["prod"], "app-a2-member"))
    assert [(r.zone, r.serves, r.servers_left, r.servers_serving) for r in results] == [
        (ZONE_A, True, 2, 3),
        (ZONE_B, True, 1, 3),
    ]


def test_the_serving_path_is_found_through_urns_not_ids(previews: dict[str, Evaluation]) -> None:
    ev = previews["prod"]
    server = next(r for r in ev.resources if r.name == "app-b1")
    assert isinstance(server.inputs["vswitchId"], Unknown), "preview mode knows no ID"
    topo = topology(ev)
    assert (topo.eip and topo.eip.name, topo.load_balancer and topo.load_balancer.name) == ("lb-eip", "lb-slb")
    assert [r.name for r in topo.dns_records] == ["lb-dns"]
    assert [(s.resource.name, s.zone, s.serving) for s in topo.servers] == [
        ("app-a1", ZONE_A, True),
        ("app-a2", ZONE_A, True),
        ("app-b1", ZONE_B, True),
        ("app-b2", ZONE_B, True),
    ]


def test_a_stack_without_zones_is_reported() -> None:
    (result,) = audit(Evaluation("dev", [], {}, set(), []))
    assert not result.serves and "the stack places nothing in a zone" in result.problems
