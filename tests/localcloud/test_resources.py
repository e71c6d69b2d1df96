"""IDs and computed outputs in the provider's formats, and the refusals of the real API that matter to this program."""

from __future__ import annotations

import re
from typing import Any

import pytest

from localcloud import KINDS, CloudError, LocalCloud
from plan.offline import evaluate
from tests.localcloud.conftest import (
    CAS_CERTIFICATE,
    CERTIFICATE,
    GROUP,
    LISTENER,
    RDS,
    RULE,
    SERVER,
    VSWITCH,
    ZONE_A,
    ZONE_B,
    add_server,
    app_rule,
    build_network,
    serve_https,
)

CONTACT = "alicloud:cms/alarmContact:AlarmContact"
CONTACT_GROUP = "alicloud:cms/alarmContactGroup:AlarmContactGroup"
ALARM = "alicloud:cms/alarm:Alarm"


def test_the_cloud_implements_exactly_the_types_the_program_uses() -> None:
    used = {r.type for r in evaluate("prod", preview=True).resources if r.type.startswith("alicloud:")}
    assert set(KINDS) == used


def refused(code: str, action: Any, *args: Any) -> str:
    with pytest.raises(CloudError) as caught:
        action(*args)
    assert caught.value.code == code, f"expected {code}, got {caught.value}"
    return caught.value.message


def test_ids_and_computed_outputs_look_like_alibaba_clouds(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    server = add_server(cloud, net, ZONE_A)
    assert re.fullmatch(r"vpc-bp1[0-9a-z]{17}", net["vpc"]["id"])
    assert re.fullmatch(r"vsw-bp1[0-9a-z]{17}", net["vsw"][ZONE_A]["id"])
    assert re.fullmatch(r"i-bp1[0-9a-z]{17}", server["id"])
    assert server["outputs"]["privateIp"].startswith("10.10.1.")
    assert net["slb"]["outputs"]["address"].startswith("10.10.1.")
    rds = cloud.create(
        RDS,
        {
            "zoneId": ZONE_A,
            "zoneIdSlaveA": ZONE_B,
            "vswitchId": f"{net['vsw'][ZONE_A]['id']},{net['vsw'][ZONE_B]['id']}",
        },
    )
    assert rds["outputs"]["connectionString"] == f"{rds['id']}.mysql.rds.aliyuncs.com"
    assert rds["outputs"]["port"] == "3306"
    eip = cloud.create("alicloud:ecs/eipAddress:EipAddress", {"bandwidth": "5"})
    assert eip["outputs"]["ipAddress"].startswith("203.0.113.")
    # Inputs are echoed as given, secrets still wrapped.
    assert eip["outputs"]["bandwidth"] == "5"


def test_a_vswitch_outside_its_vpc_or_overlapping_another_is_refused(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    vpc = net["vpc"]["id"]
    refused(
        "InvalidCidrBlock.Malformed",
        cloud.create,
        VSWITCH,
        {"vpcId": vpc, "zoneId": ZONE_A, "cidrBlock": "10.11.1.0/24"},
    )
    message = refused(
        "InvalidCidrBlock.Overlapped",
        cloud.create,
        VSWITCH,
        {"vpcId": vpc, "zoneId": ZONE_B, "cidrBlock": "10.10.1.128/25"},
    )
    assert net["vsw"][ZONE_A]["id"] in message


def test_rds_zones_must_be_its_vswitches_zones_in_order(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    swapped = {
        "zoneId": ZONE_B,
        "zoneIdSlaveA": ZONE_A,
        "vswitchId": f"{net['vsw'][ZONE_A]['id']},{net['vsw'][ZONE_B]['id']}",
    }
    refused("InvalidVSwitchZone.Mismatch", cloud.create, RDS, swapped)


@pytest.mark.parametrize(
    ("token", "inputs", "code"),
    [
        ("alicloud:ram/role:Role", {"roleName": "app"}, "EntityAlreadyExists.Role"),
        ("alicloud:ram/policy:Policy", {"policyName": "read"}, "EntityAlreadyExists.Policy"),
        (
            "alicloud:oos/secretParameter:SecretParameter",
            {"secretParameterName": "db-password-x7k2q9"},  # pragma: allowlist secret
            "EntityAlreadyExists.Parameter",
        ),
        (
            "alicloud:cms/alarmContact:AlarmContact",
            {"alarmContactName": "prod-oncall", "describe": "x", "channelsMail": "oncall@example.com"},
            "ContactAlreadyExists",
        ),
        (
            "alicloud:cms/alarmContactGroup:AlarmContactGroup",
            {"alarmContactGroupName": "g"},
            "ContactGroupAlreadyExists",
        ),
        (
            "alicloud:dns/alidnsRecord:AlidnsRecord",
            {"domainName": "x.xyz", "rr": "dev", "type": "A", "value": "203.0.113.10"},
            "DomainRecordDuplicate",
        ),
    ],
)
def test_a_second_resource_with_a_unique_name_is_refused(
    cloud: LocalCloud, token: str, inputs: dict[str, Any], code: str
) -> None:
    cloud.create(token, inputs)
    refused(code, cloud.create, token, inputs)


def test_database_and_account_names_are_unique_within_an_instance(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    rds = cloud.create(
        RDS,
        {
            "zoneId": ZONE_A,
            "zoneIdSlaveA": ZONE_B,
            "vswitchId": f"{net['vsw'][ZONE_A]['id']},{net['vsw'][ZONE_B]['id']}",
        },
    )
    database = {"instanceId": rds["id"], "dataBaseName": "appdb"}
    account = {"dbInstanceId": rds["id"], "accountName": "app"}
    cloud.create("alicloud:rds/database:Database", database)
    cloud.create("alicloud:rds/rdsAccount:RdsAccount", account)
    refused("InvalidDBName.Duplicate", cloud.create, "alicloud:rds/database:Database", database)
    refused("InvalidAccountName.Duplicate", cloud.create, "alicloud:rds/rdsAccount:RdsAccount", account)


@pytest.mark.parametrize(
    ("token", "inputs", "code"),
    [
        (SERVER, {"deletionProtection": True}, "InvalidOperation.DeletionProtection"),
        (RDS, {"deletionProtection": True}, "OperationDenied.DeletionProtection"),
        (
            "alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer",
            {"deleteProtection": "on"},
            "DeleteProtectionIsOn",
        ),
    ],
)
def test_deleting_with_deletion_protection_on_is_refused(
    cloud: LocalCloud, token: str, inputs: dict[str, Any], code: str
) -> None:
    net = build_network(cloud)
    placement = {
        SERVER: {"vswitchId": net["vsw"][ZONE_A]["id"], "securityGroups": [net["sg"]["id"]]},
        RDS: {
            "zoneId": ZONE_A,
            "zoneIdSlaveA": ZONE_B,
            "vswitchId": f"{net['vsw'][ZONE_A]['id']},{net['vsw'][ZONE_B]['id']}",
        },
    }.get(token, {"vswitchId": net["vsw"][ZONE_A]["id"], "masterZoneId": ZONE_A})
    record = cloud.create(token, {**placement, **inputs})
    refused(code, cloud.delete, token, record["id"])
    assert cloud.read(token, record["id"]) is not None
    # Off, it goes.
    cloud.update(token, record["id"], {**placement, **{k: False if v is True else "off" for k, v in inputs.items()}})
    cloud.delete(token, record["id"])
    assert cloud.read(token, record["id"]) is None


def test_an_eip_bound_twice_is_refused(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    other_slb = cloud.create(
        "alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer",
        {"vswitchId": net["vsw"][ZONE_A]["id"], "masterZoneId": ZONE_A},
    )
    eip = cloud.create("alicloud:ecs/eipAddress:EipAddress", {})
    association = "alicloud:ecs/eipAssociation:EipAssociation"
    cloud.create(
        association, {"allocationId": eip["id"], "instanceId": net["slb"]["id"], "instanceType": "SlbInstance"}
    )
    message = refused(
        "IncorrectEipStatus",
        cloud.create,
        association,
        {"allocationId": eip["id"], "instanceId": other_slb["id"], "instanceType": "SlbInstance"},
    )
    assert net["slb"]["id"] in message


def test_a_server_joined_twice_to_a_group_on_one_port_is_refused(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    server = add_server(cloud, net, ZONE_A)
    member = {"serverGroupId": net["server_group"]["id"], "serverId": server["id"], "port": 8080.0}
    refused(
        "BackendServer.AlreadyExist",
        cloud.create,
        "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment",
        member,
    )


def test_a_duplicate_security_group_rule_is_refused(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    refused("InvalidPermission.Duplicate", cloud.create, RULE, app_rule(net["sg"]["id"]))


def test_a_vpc_with_vswitches_cannot_be_deleted(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    refused("DependencyViolation.VSwitch", cloud.delete, "alicloud:vpc/network:Network", net["vpc"]["id"])
    add_server(cloud, net, ZONE_B)
    refused("DependencyViolation.Instance", cloud.delete, GROUP, net["sg"]["id"])


def test_an_unknown_reference_is_refused(cloud: LocalCloud) -> None:
    refused(
        "InvalidVpcId.NotFound",
        cloud.create,
        VSWITCH,
        {"vpcId": "vpc-nope", "zoneId": ZONE_A, "cidrBlock": "10.0.0.0/24"},
    )


def alarm_inputs(group: str) -> dict[str, Any]:
    return {
        "name": "prod-zone-unhealthy",
        "project": "acs_slb_dashboard",
        "metric": "UnhealthyServerCount",
        "metricDimensions": '[{"instanceId": "lb-x"}]',
        "contactGroups": [group],
        "silenceTime": 900.0,
        "escalationsCritical": {"statistics": "Maximum", "comparisonOperator": ">=", "threshold": "2", "times": 2.0},
    }


def test_certificates_and_alarms_have_the_providers_ids_and_outputs(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    edge = serve_https(cloud, net)
    assert re.fullmatch(r"\d{16}_[0-9a-f]{11,12}_\d{10}_-\d{9}", edge["certificate"]["id"])
    assert edge["https"]["id"] == f"{net['slb']['id']}:https:443"
    contact = cloud.create(CONTACT, {"alarmContactName": "prod-oncall", "describe": "x", "channelsMail": "a@b.c"})
    assert contact["id"] == "prod-oncall"  # a contact's ID is its name
    group = cloud.create(CONTACT_GROUP, {"alarmContactGroupName": "prod-alarms", "contacts": ["prod-oncall"]})
    assert group["id"] == "prod-alarms"
    alarm = cloud.create(ALARM, alarm_inputs("prod-alarms"))
    assert re.fullmatch(r"terraform-\d{18}[0-9a-f]{8}", alarm["id"])
    assert alarm["outputs"]["status"] == "OK"
    assert alarm["outputs"]["effectiveInterval"] == "00:00-23:59"


def test_an_https_listener_needs_an_existing_certificate(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    https = {
        "loadBalancerId": net["slb"]["id"],
        "protocol": "https",
        "frontendPort": 443.0,
        "serverGroupId": net["server_group"]["id"],
        "serverCertificateId": "1234567890123456_18f2a3b4c5d_1714763408_-709470326",
    }
    refused("ServerCertificateId.NotFound", cloud.create, LISTENER, https)
    refused("MissingParameter.ServerCertificateId", cloud.create, LISTENER, {**https, "serverCertificateId": ""})


def test_a_certificate_in_use_or_a_redirect_target_cannot_be_deleted(cloud: LocalCloud) -> None:
    net = build_network(cloud)
    cloud.delete(LISTENER, f"{net['slb']['id']}:http:80")
    redirect = {"loadBalancerId": net["slb"]["id"], "protocol": "http", "frontendPort": 80.0}
    redirect |= {"listenerForward": "on", "forwardPort": 443.0}
    refused("ForwardPort.NotExist", cloud.create, LISTENER, redirect)
    edge = serve_https(cloud, net)
    cloud.create(LISTENER, redirect)
    refused("CertificateAndPrivateKeyIsRefered", cloud.delete, CERTIFICATE, edge["certificate"]["id"])
    refused("ListenerForwardedTo", cloud.delete, LISTENER, edge["https"]["id"])


def test_a_certificate_is_a_cas_reference_or_a_pem_pair(cloud: LocalCloud) -> None:
    refused("MissingParameter.AliCloudCertificate", cloud.create, CERTIFICATE, {"alicloudCertificateId": "7751236"})
    refused("MissingParameter.ServerCertificate", cloud.create, CERTIFICATE, {"name": "x"})
    refused(
        "InvalidParameter.ServerCertificate", cloud.create, CERTIFICATE, {"serverCertificate": "x", "privateKey": "y"}
    )
    cloud.create(CERTIFICATE, CAS_CERTIFICATE)


def test_alarm_contacts_groups_and_rules_refer_to_what_exists(cloud: LocalCloud) -> None:
    refused("ContactNotExists", cloud.create, CONTACT_GROUP, {"alarmContactGroupName": "g", "contacts": ["nobody"]})
    refused("InvalidParameter.Channels", cloud.create, CONTACT, {"alarmContactName": "no-channel", "describe": "x"})
    refused("ContactGroupNotExists", cloud.create, ALARM, alarm_inputs("g"))
    cloud.create(CONTACT, {"alarmContactName": "oncall", "describe": "x", "channelsMail": "a@b.c"})
    cloud.create(CONTACT_GROUP, {"alarmContactGroupName": "g", "contacts": ["oncall"]})
    refused("InvalidParameter.SilenceTime", cloud.create, ALARM, {**alarm_inputs("g"), "silenceTime": 60.0})
    alarm = cloud.create(ALARM, alarm_inputs("g"))
    refused("ContactGroupInUse", cloud.delete, CONTACT_GROUP, "g")
    refused("ContactInUse", cloud.delete, CONTACT, "oncall")
    cloud.delete(ALARM, alarm["id"])
    cloud.delete(CONTACT_GROUP, "g")
    cloud.delete(CONTACT, "oncall")
    assert cloud.inventory() == []
