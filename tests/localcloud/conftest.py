"""A fresh local cloud per test, and a small network in it to build on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localcloud import LocalCloud
from localcloud.store import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

VPC = "alicloud:vpc/network:Network"
VSWITCH = "alicloud:vpc/switch:Switch"
GROUP = "alicloud:ecs/securityGroup:SecurityGroup"
RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
SERVER = "alicloud:ecs/instance:Instance"
SLB = "alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer"
SERVER_GROUP = "alicloud:slb/serverGroup:ServerGroup"
LISTENER = "alicloud:slb/listener:Listener"
MEMBER = "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment"
RDS = "alicloud:rds/instance:Instance"
ZONE_A, ZONE_B = "cn-hangzhou-h", "cn-hangzhou-i"
GOOD_IMAGE, BAD_IMAGE = "m-good", "m-bad"
BOOT_SECONDS = 20_000.0


@pytest.fixture
def cloud(tmp_path: Path) -> LocalCloud:
    # 1 simulated second = 10 µs: RDS's 25 minutes take 15 ms. A boot takes 0.2 s, longer than any step of a test
    # between a server's creation and a look at its health.
    return LocalCloud(tmp_path / "cloud").init(scale=1e-5, boot_seconds=BOOT_SECONDS)


@pytest.fixture
def cloud_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK signs with the local cloud's keys, and has no other credential source to wander off to."""
    from alibabacloud_credentials.utils import auth_util

    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ACCESS_KEY_SECRET)
    monkeypatch.setattr(auth_util, "environment_access_key_id", DEFAULT_ACCESS_KEY_ID)
    monkeypatch.setattr(auth_util, "environment_access_key_secret", DEFAULT_ACCESS_KEY_SECRET)
    monkeypatch.setattr(auth_util, "environment_security_token", None)
    monkeypatch.setattr(auth_util, "enable_oidc_credential", False)
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "true")


def build_network(cloud: LocalCloud) -> dict[str, Any]:
    """A VPC with one VSwitch per zone, a security group admitting the app port from the SLB range, an SLB listener."""
    vpc = cloud.create(VPC, {"vpcName": "v", "cidrBlock": "10.10.0.0/16"})
    vsw = {
        zone: cloud.create(VSWITCH, {"vpcId": vpc["id"], "zoneId": zone, "cidrBlock": cidr})
        for zone, cidr in ((ZONE_A, "10.10.1.0/24"), (ZONE_B, "10.10.2.0/24"))
    }
    group = cloud.create(GROUP, {"vpcId": vpc["id"], "securityGroupName": "app"})
    cloud.create(RULE, app_rule(group["id"]))
    slb = cloud.create(SLB, {"vswitchId": vsw[ZONE_A]["id"], "masterZoneId": ZONE_A, "deleteProtection": "off"})
    servers = cloud.create(SERVER_GROUP, {"loadBalancerId": slb["id"], "name": "app"})
    cloud.create(
        LISTENER,
        {"loadBalancerId": slb["id"], "protocol": "http", "frontendPort": 80.0, "serverGroupId": servers["id"]},
    )
    return {"vpc": vpc, "vsw": vsw, "sg": group, "slb": slb, "server_group": servers}


def app_rule(group_id: str, cidr: str = "100.64.0.0/10") -> dict[str, Any]:
    return {
        "securityGroupId": group_id,
        "type": "ingress",
        "ipProtocol": "tcp",
        "nicType": "intranet",
        "policy": "accept",
        "priority": 1.0,
        "portRange": "8080/8080",
        "cidrIp": cidr,
    }


def add_server(cloud: LocalCloud, net: dict[str, Any], zone: str, image: str = GOOD_IMAGE) -> dict[str, Any]:
    server = cloud.create(
        SERVER, {"vswitchId": net["vsw"][zone]["id"], "securityGroups": [net["sg"]["id"]], "imageId": image}
    )
    cloud.create(MEMBER, {"serverGroupId": net["server_group"]["id"], "serverId": server["id"], "port": 8080.0})
    return server


CERTIFICATE = "alicloud:slb/serverCertificate:ServerCertificate"
CAS_CERTIFICATE = {
    "alicloudCertificateId": "7751236",
    "alicloudCertificateName": "dev-example",
    "alicloudCertificateRegionId": "cn-hangzhou",
    "name": "dev-certificate",
}


def serve_https(cloud: LocalCloud, net: dict[str, Any]) -> dict[str, Any]:
    """The program's edge: a certificate, HTTPS on 443 to the server group, and 80 redirecting to it."""
    certificate = cloud.create(CERTIFICATE, CAS_CERTIFICATE)
    https = cloud.create(
        LISTENER,
        {
            "loadBalancerId": net["slb"]["id"],
            "protocol": "https",
            "frontendPort": 443.0,
            "serverGroupId": net["server_group"]["id"],
            "serverCertificateId": certificate["id"],
        },
    )
    return {"certificate": certificate, "https": https}
