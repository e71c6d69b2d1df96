"""The deprecation lookup reads the SDK's own markers: known deprecated resources and inputs are found."""

from __future__ import annotations

import pytest

from policy.sdk_facts import deprecated_inputs, deprecated_resource, resource_class

DEPRECATED_RESOURCES = [
    "alicloud:slb/loadBalancer:LoadBalancer",  # -> slb.ApplicationLoadBalancer
    "alicloud:ecs/eip:Eip",  # -> ecs.EipAddress
    "alicloud:rds/account:Account",  # -> rds.RdsAccount
    "alicloud:dns/record:Record",  # -> dns.AlidnsRecord
    "alicloud:slb/attachment:Attachment",  # -> slb.BackendServer
    "alicloud:ecs/keyPair:KeyPair",  # -> ecs.EcsKeyPair
]
CURRENT_RESOURCES = [
    "alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer",
    "alicloud:ecs/eipAddress:EipAddress",
    "alicloud:rds/rdsAccount:RdsAccount",
    "alicloud:dns/alidnsRecord:AlidnsRecord",
    "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment",
    "random:index/randomPassword:RandomPassword",
]


@pytest.mark.parametrize("token", DEPRECATED_RESOURCES)
def test_deprecated_resources_are_found(token: str) -> None:
    assert deprecated_resource(token)


@pytest.mark.parametrize("token", CURRENT_RESOURCES)
def test_current_resources_are_not_flagged(token: str) -> None:
    assert resource_class(token) is not None
    assert deprecated_resource(token) is None


@pytest.mark.parametrize(
    ("token", "inputs"),
    [
        ("alicloud:vpc/switch:Switch", {"availabilityZone", "name"}),
        ("alicloud:vpc/network:Network", {"name"}),
        ("alicloud:ecs/securityGroup:SecurityGroup", {"name", "innerAccess"}),
        ("alicloud:rds/database:Database", {"name"}),
        ("alicloud:ecs/eipAddress:EipAddress", {"name", "instanceChargeType"}),
        ("alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer", {"name", "specification"}),
        ("alicloud:slb/serverGroup:ServerGroup", {"servers"}),
        ("alicloud:ecs/instance:Instance", {"roleName", "allocatePublicIp"}),
        ("alicloud:rds/backupPolicy:BackupPolicy", {"backupPeriods", "retentionPeriod"}),
    ],
)
def test_deprecated_inputs_are_found_by_wire_name(token: str, inputs: set[str]) -> None:
    found = deprecated_inputs(token)
    assert inputs <= set(found), found
    assert all("deprecat" in reason.lower() for reason in found.values()), found


def test_unknown_tokens_are_not_resolved() -> None:
    assert resource_class("alicloud:slb/noSuchThing:NoSuchThing") is None
    assert resource_class("aws:ec2/instance:Instance") is None
