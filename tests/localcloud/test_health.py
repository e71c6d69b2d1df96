"""Backend health derived from the store, and the healthy-backend count replayed from the timeline."""

from __future__ import annotations

import itertools

from localcloud import LocalCloud
from tests.localcloud.conftest import (
    BAD_IMAGE,
    BOOT_SECONDS,
    RULE,
    SERVER,
    ZONE_A,
    ZONE_B,
    add_server,
    app_rule,
    build_network,
    serve_https,
)


def wait_booted(cloud: LocalCloud) -> None:
    cloud.store.sleep(BOOT_SECONDS + 10)


def test_a_server_turns_healthy_a_boot_time_after_its_creation(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    server = add_server(cloud, net, ZONE_A)
    assert cloud.health(net["slb"]["id"]) == {server["id"]: "abnormal"}
    wait_booted(cloud)
    assert cloud.health(net["slb"]["id"]) == {server["id"]: "normal"}


def test_a_server_from_a_bad_image_never_turns_healthy(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    cloud.mark_bad_image(BAD_IMAGE)
    server = add_server(cloud, net, ZONE_A, image=BAD_IMAGE)
    wait_booted(cloud)
    assert cloud.health(net["slb"]["id"]) == {server["id"]: "abnormal"}


def test_a_server_is_unhealthy_while_its_zone_is_down(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    in_a, in_b = add_server(cloud, net, ZONE_A), add_server(cloud, net, ZONE_B)
    wait_booted(cloud)
    cloud.zone_down(ZONE_A)
    assert cloud.health(net["slb"]["id"]) == {in_a["id"]: "abnormal", in_b["id"]: "normal"}
    cloud.zone_up(ZONE_A)
    assert cloud.health(net["slb"]["id"]) == {in_a["id"]: "normal", in_b["id"]: "normal"}


def test_health_checks_need_the_app_port_open_to_the_slb_range(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    server = add_server(cloud, net, ZONE_A)
    wait_booted(cloud)
    rule_id = next(r["id"] for r in cloud.inventory() if r["type"] == RULE)
    cloud.tamper(rule_id, {"cidrIp": "10.0.0.0/8"})
    assert cloud.health(net["slb"]["id"]) == {server["id"]: "abnormal"}
    cloud.create(RULE, app_rule(net["sg"]["id"], cidr="0.0.0.0/0"))
    assert cloud.health(net["slb"]["id"]) == {server["id"]: "normal"}


def test_an_image_change_in_place_reboots_the_server(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    server = add_server(cloud, net, ZONE_A)
    wait_booted(cloud)
    cloud.update(SERVER, server["id"], {**server["inputs"], "imageId": "m-next"})
    assert cloud.health(net["slb"]["id"]) == {server["id"]: "abnormal"}


def test_the_timeline_tells_how_many_backends_were_healthy_at_each_moment(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    old = add_server(cloud, net, ZONE_A)
    wait_booted(cloud)
    new = add_server(cloud, net, ZONE_A)
    wait_booted(cloud)
    member = "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment"
    cloud.delete(member, f"{net['server_group']['id']}:{old['id']}:8080")
    cloud.delete(SERVER, old["id"])
    assert new["id"] != old["id"]
    counts = [count for _, count in cloud.healthy_backends_over_time(net["slb"]["id"])]
    # None, the old one, both (the new one booted), the new one alone.
    assert counts == [0, 1, 2, 1]
    times = [at for at, _ in cloud.healthy_backends_over_time(net["slb"]["id"])]
    assert times == sorted(times)


def test_every_change_is_in_the_timeline_with_both_clocks(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    cloud.zone_down(ZONE_B)
    events = cloud.timeline()
    assert [e["event"] for e in events[:2]] == ["create-begin", "create-end"]
    assert events[0]["record"]["id"] == net["vpc"]["id"]
    assert events[-1]["event"] == "zone-down"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(a["sim"] <= b["sim"] and a["wall"] <= b["wall"] for a, b in itertools.pairwise(events))


def test_the_https_listener_reports_the_servers_and_the_redirect_none(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    serve_https(cloud, net)
    server = add_server(cloud, net, ZONE_A)
    wait_booted(cloud)
    assert cloud.health(net["slb"]["id"], 443) == {server["id"]: "normal"}
    cloud.delete("alicloud:slb/listener:Listener", f"{net['slb']['id']}:http:80")
    cloud.create(
        "alicloud:slb/listener:Listener",
        {
            "loadBalancerId": net["slb"]["id"],
            "protocol": "http",
            "frontendPort": 80.0,
            "listenerForward": "on",
            "forwardPort": 443.0,
        },
    )
    assert cloud.health(net["slb"]["id"], 80) == {}
