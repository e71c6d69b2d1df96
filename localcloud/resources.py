"""What each resource type of the program is in the local cloud: its ID, the fields the cloud computes, how long it
takes, and what the real API refuses.

Inputs and outputs are the provider's camelCase properties as the engine sends them (secrets still wrapped). Computed
fields and ID formats follow terraform-provider-alicloud v1.285.0 (the `d.SetId` of each resource and the computed
attributes of its schema); durations are simulated seconds, in realistic ratios.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from localcloud.store import Cloud

SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"  # pragma: allowlist secret
ACCOUNT_ID = "1234567890123456"
# The back-end range classic SLBs health-check and forward from.
SLB_SOURCE = ipaddress.ip_network("100.64.0.0/10")
EIP_RANGE = ipaddress.ip_network("203.0.113.0/24")  # TEST-NET-3: data only, never contacted

Props = dict[str, Any]


class CloudError(Exception):
    """A refusal, worded like the Alibaba Cloud API's: an error code, a message and an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def plain(value: Any) -> Any:
    """The value with Pulumi's secret wrappers removed (for the cloud's own checks; outputs keep them)."""
    if isinstance(value, dict):
        if SECRET_SIG_KEY in value:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def alibaba_id(prefix: str, length: int = 17) -> str:
    # Hangzhou IDs look like vpc-bp1xxxxxxxxxxxxxxxxx: a region-specific "bp1" and lower-case letters and digits.
    return f"{prefix}-bp1" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(length))


def digits(length: int) -> str:
    return str(secrets.randbelow(9) + 1) + "".join(secrets.choice(string.digits) for _ in range(length - 1))


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def live(cloud: Cloud, token: str) -> list[dict[str, Any]]:
    """Resources of a type that exist (being created counts: the name or address is already taken)."""
    return [r for r in cloud["resources"].values() if r["type"] == token and r["state"] != "deleted"]


def key(token: str, rid: str) -> str:
    """Where a record is kept: IDs are unique only within a type (a backup policy's ID is its instance's)."""
    return f"{token} {rid}"


def get(cloud: Cloud, token: str, rid: str) -> dict[str, Any] | None:
    record: dict[str, Any] | None = cloud["resources"].get(key(token, str(rid)))
    return record


def find(cloud: Cloud, rid: str, token: str, code: str, what: str) -> dict[str, Any]:
    record = get(cloud, token, rid)
    if record is None or record["type"] != token:
        raise CloudError(code, f"The specified {what} {rid} does not exist.", 404)
    return record


def _allocate_ip(cloud: Cloud, network: ipaddress.IPv4Network | ipaddress.IPv6Network, first: int) -> str:
    taken = {
        r["outputs"].get(field) for r in cloud["resources"].values() for field in ("privateIp", "address", "ipAddress")
    }
    for offset in range(first, network.num_addresses - 1):
        candidate = str(network.network_address + offset)
        if candidate not in taken:
            return candidate
    raise CloudError("InvalidVSwitchId.IpNotEnough", f"No free address is left in {network}.")


@dataclass(frozen=True)
class Kind:
    """One resource type: durations (create, update, delete), ID, computed outputs and refusals."""

    token: str
    durations: tuple[float, float, float]
    new_id: Callable[[Props, Cloud], str]
    computed: Callable[[str, Props, Cloud], Props]
    check: Callable[[Props, Cloud, str | None], None] = lambda inputs, cloud, own_id: None
    check_delete: Callable[[dict[str, Any], Cloud], None] = lambda record, cloud: None
    # What the record is in: a zone (for zone loss), for the health of servers.
    zone: Callable[[Props, Cloud], str | None] = lambda inputs, cloud: None


def _unique(token: str, field: str, code: str, what: str) -> Callable[[Props, Cloud, str | None], None]:
    def check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
        name = plain(inputs.get(field))
        for other in live(cloud, token):
            if other["id"] != own_id and plain(other["inputs"].get(field)) == name:
                raise CloudError(code, f"The {what} '{name}' already exists.", 409)

    return check


def _protected(field: str, on: object, code: str, what: str) -> Callable[[dict[str, Any], Cloud], None]:
    def check(record: dict[str, Any], cloud: Cloud) -> None:
        if plain(record["outputs"].get(field)) == on:
            raise CloudError(code, f"The {what} {record['id']} has deletion protection on; turn it off first.", 403)

    return check


def _no_dependents(*rules: tuple[str, str, str]) -> Callable[[dict[str, Any], Cloud], None]:
    """Refuse a deletion while resources of `token` still point at this one through `field`."""

    def check(record: dict[str, Any], cloud: Cloud) -> None:
        for token, field, code in rules:
            for other in live(cloud, token):
                if record["id"] in _refs(plain(other["inputs"].get(field))):
                    raise CloudError(code, f"{record['id']} is still used by {other['id']}.", 409)

    return check


def _exists(field: str, token: str, code: str, what: str) -> Callable[[Props, Cloud, str | None], None]:
    def check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
        find(cloud, inputs.get(field, ""), token, code, what)

    return check


def _both(
    first: Callable[[dict[str, Any], Cloud], None], second: Callable[[dict[str, Any], Cloud], None]
) -> Callable[[dict[str, Any], Cloud], None]:
    def check(record: dict[str, Any], cloud: Cloud) -> None:
        first(record, cloud)
        second(record, cloud)

    return check


def _refs(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return value.split(",")
    return []


_VSW = "alicloud:vpc/switch:Switch"
_SG = "alicloud:ecs/securityGroup:SecurityGroup"
_ECS = "alicloud:ecs/instance:Instance"

# --- VPC -----------------------------------------------------------------------------------------------------------


def _vswitch_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    vpc = find(cloud, inputs.get("vpcId", ""), "alicloud:vpc/network:Network", "InvalidVpcId.NotFound", "VPC")
    try:
        cidr = ipaddress.ip_network(inputs.get("cidrBlock", ""))
    except ValueError:
        raise CloudError("InvalidCidrBlock.Malformed", f"{inputs.get('cidrBlock')} is not a CIDR block.") from None
    vpc_cidr = ipaddress.ip_network(vpc["inputs"]["cidrBlock"])
    if not cidr.subnet_of(vpc_cidr):  # type: ignore[arg-type]
        raise CloudError(
            "InvalidCidrBlock.Malformed", f"The VSwitch CIDR block {cidr} is not within the VPC's block {vpc_cidr}."
        )
    for other in live(cloud, "alicloud:vpc/switch:Switch"):
        same_vpc = other["id"] != own_id and other["inputs"].get("vpcId") == vpc["id"]
        if same_vpc and cidr.overlaps(ipaddress.ip_network(other["inputs"]["cidrBlock"])):
            raise CloudError(
                "InvalidCidrBlock.Overlapped",
                f"The CIDR block {cidr} overlaps with VSwitch {other['id']} ({other['inputs']['cidrBlock']}).",
            )


def _zone_of_vswitch(cloud: Cloud, vswitch_id: str) -> str | None:
    record = get(cloud, "alicloud:vpc/switch:Switch", vswitch_id)
    return record["inputs"].get("zoneId") if record else None


# --- ECS -----------------------------------------------------------------------------------------------------------


def _instance_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    vswitch = find(cloud, inputs.get("vswitchId", ""), _VSW, "InvalidVSwitchId.NotFound", "VSwitch")
    for group_id in inputs.get("securityGroups") or []:
        group = find(cloud, group_id, _SG, "InvalidSecurityGroupId.NotFound", "security group")
        if group["inputs"].get("vpcId") != vswitch["inputs"].get("vpcId"):
            raise CloudError(
                "InvalidSecurityGroupId.VPCMismatch", f"Security group {group_id} is not in the VSwitch's VPC."
            )


def _instance_computed(rid: str, inputs: Props, cloud: Cloud) -> Props:
    vswitch = cloud["resources"][key("alicloud:vpc/switch:Switch", inputs["vswitchId"])]
    private_ip = _allocate_ip(cloud, ipaddress.ip_network(vswitch["inputs"]["cidrBlock"]), 100)
    return {
        "availabilityZone": vswitch["inputs"]["zoneId"],
        "privateIp": private_ip,
        "primaryIpAddress": private_ip,
        "publicIp": "",
        "status": "Running",
        "cpu": 2,
        "memory": 4096,
        "osName": "Alibaba Cloud Linux 3",
        "osType": "linux",
        "createTime": timestamp(),
        "startTime": timestamp(),
        "systemDiskId": alibaba_id("d"),
        "deploymentSetGroupNo": 0,
        "expiredTime": "",
    }


def _eip_association_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    eip_token = "alicloud:ecs/eipAddress:EipAddress"
    eip = find(cloud, inputs.get("allocationId", ""), eip_token, "InvalidAllocationId.NotFound", "EIP")
    for other in live(cloud, "alicloud:ecs/eipAssociation:EipAssociation"):
        if other["id"] == own_id:
            continue
        if other["inputs"].get("allocationId") == eip["id"]:
            raise CloudError(
                "IncorrectEipStatus",
                f"The EIP {eip['id']} is already bound to {other['inputs'].get('instanceId')}; unbind it first.",
            )
        if other["inputs"].get("instanceId") == inputs.get("instanceId"):
            raise CloudError("InvalidAssociation.Duplicated", f"{inputs.get('instanceId')} already has an EIP.")
    kinds = {"SlbInstance": "alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer"}
    token = kinds.get(str(inputs.get("instanceType")), "alicloud:ecs/instance:Instance")
    find(cloud, inputs.get("instanceId", ""), token, "InvalidInstanceId.NotFound", "instance")


def _ram_role_attachment_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    find(cloud, inputs.get("instanceId", ""), _ECS, "InvalidInstanceId.NotFound", "instance")
    _role_named(cloud, inputs.get("ramRoleName"))
    for other in live(cloud, "alicloud:ecs/ramRoleAttachment:RamRoleAttachment"):
        if other["id"] != own_id and other["inputs"].get("instanceId") == inputs.get("instanceId"):
            raise CloudError(
                "InvalidParameter.RamRoleAlreadyAttached", f"{inputs.get('instanceId')} already has a RAM role."
            )


def _rule_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    find(
        cloud,
        inputs.get("securityGroupId", ""),
        "alicloud:ecs/securityGroup:SecurityGroup",
        "InvalidSecurityGroupId.NotFound",
        "security group",
    )
    existing = {r["id"] for r in live(cloud, "alicloud:ecs/securityGroupRule:SecurityGroupRule")} - {own_id}
    if _rule_id(inputs) in existing:
        raise CloudError("InvalidPermission.Duplicate", "The specified rule already exists in the security group.", 409)


def _rule_id(inputs: Props) -> str:
    fields = ("securityGroupId", "type", "ipProtocol", "portRange", "nicType", "cidrIp", "policy", "priority")
    return ":".join(str(_int_if_whole(inputs.get(f, ""))) for f in fields)


def _int_if_whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# --- RAM -----------------------------------------------------------------------------------------------------------


def _role_named(cloud: Cloud, name: Any) -> dict[str, Any]:
    for role in live(cloud, "alicloud:ram/role:Role"):
        if role["inputs"].get("roleName") == name:
            return role
    raise CloudError("EntityNotExist.Role", f"The role {name} does not exist.", 404)


def _role_policy_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    _role_named(cloud, inputs.get("roleName"))
    policies = {p["inputs"].get("policyName") for p in live(cloud, "alicloud:ram/policy:Policy")}
    if inputs.get("policyName") not in policies:
        raise CloudError("EntityNotExist.Policy", f"The policy {inputs.get('policyName')} does not exist.", 404)


def _role_delete_check(record: dict[str, Any], cloud: Cloud) -> None:
    for attachment in live(cloud, "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment"):
        if attachment["inputs"].get("roleName") == record["inputs"].get("roleName"):
            raise CloudError("DeleteConflict.Role.Policy", "The role still has policies attached.", 409)


def _policy_delete_check(record: dict[str, Any], cloud: Cloud) -> None:
    for attachment in live(cloud, "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment"):
        if attachment["inputs"].get("policyName") == record["inputs"].get("policyName"):
            raise CloudError("DeleteConflict.Policy.Role", "The policy is still attached to a role.", 409)


# --- RDS -----------------------------------------------------------------------------------------------------------

_RDS = "alicloud:rds/instance:Instance"


def _rds_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    vswitch_ids = str(inputs.get("vswitchId", "")).split(",")
    zones = [inputs.get("zoneId"), inputs.get("zoneIdSlaveA")]
    zones = [z for z in zones if z and z != "Auto"]
    vswitch_zones = [
        find(cloud, v, _VSW, "InvalidVSwitchId.NotFound", "VSwitch")["inputs"].get("zoneId") for v in vswitch_ids
    ]
    if vswitch_zones != zones[: len(vswitch_zones)] or len(vswitch_zones) != len(zones):
        raise CloudError(
            "InvalidVSwitchZone.Mismatch",
            f"The zones {zones} do not match the zones of the VSwitches {vswitch_ids} ({vswitch_zones}), in order.",
        )


def _rds_computed(rid: str, inputs: Props, cloud: Cloud) -> Props:
    vswitch = cloud["resources"][key("alicloud:vpc/switch:Switch", str(inputs["vswitchId"]).split(",")[0])]
    return {
        "connectionString": f"{rid}.mysql.rds.aliyuncs.com",
        "port": "3306",
        "status": "Running",
        "createTime": timestamp(),
        "dbInstanceType": "Primary",
        "sslStatus": "Yes" if inputs.get("sslAction") == "Open" else "No",
        "vpcId": vswitch["inputs"].get("vpcId"),
        "templates": [],
    }


def _in_instance(field: str, what: str, token: str, code: str) -> Callable[[Props, Cloud, str | None], None]:
    """The instance must exist, and the name must be unique within it."""

    def check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
        instance_id = inputs.get("instanceId") or inputs.get("dbInstanceId")
        find(cloud, instance_id or "", _RDS, "InvalidDBInstanceId.NotFound", "RDS instance")
        for other in live(cloud, token):
            same_instance = (other["inputs"].get("instanceId") or other["inputs"].get("dbInstanceId")) == instance_id
            if other["id"] != own_id and same_instance and other["inputs"].get(field) == inputs.get(field):
                raise CloudError(code, f"The {what} '{inputs.get(field)}' already exists in {instance_id}.", 409)

    return check


def _privilege_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    instance_id = inputs.get("instanceId")
    find(cloud, instance_id or "", _RDS, "InvalidDBInstanceId.NotFound", "RDS instance")
    accounts = {
        a["inputs"].get("accountName")
        for a in live(cloud, "alicloud:rds/rdsAccount:RdsAccount")
        if a["inputs"].get("dbInstanceId") == instance_id
    }
    if inputs.get("accountName") not in accounts:
        raise CloudError("InvalidAccountName.NotFound", f"The account {inputs.get('accountName')} does not exist.", 404)
    databases = {
        d["inputs"].get("dataBaseName")
        for d in live(cloud, "alicloud:rds/database:Database")
        if d["inputs"].get("instanceId") == instance_id
    }
    for name in inputs.get("dbNames") or []:
        if name not in databases:
            raise CloudError("InvalidDBName.NotFound", f"The database {name} does not exist.", 404)


def _rds_child_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    find(cloud, inputs.get("instanceId", ""), _RDS, "InvalidDBInstanceId.NotFound", "RDS instance")


# --- SLB -----------------------------------------------------------------------------------------------------------

_SLB = "alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer"
_GROUP = "alicloud:slb/serverGroup:ServerGroup"


def _slb_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    vswitch = find(cloud, inputs.get("vswitchId", ""), _VSW, "InvalidVSwitchId.NotFound", "VSwitch")
    master = inputs.get("masterZoneId")
    if master and master != vswitch["inputs"].get("zoneId"):
        raise CloudError(
            "InvalidParameter.MasterZoneId", f"The master zone {master} is not the zone of VSwitch {vswitch['id']}."
        )


def _slb_computed(rid: str, inputs: Props, cloud: Cloud) -> Props:
    vswitch = cloud["resources"][key("alicloud:vpc/switch:Switch", inputs["vswitchId"])]
    return {
        "address": _allocate_ip(cloud, ipaddress.ip_network(vswitch["inputs"]["cidrBlock"]), 200),
        "addressIpVersion": "ipv4",
        "status": "active",
        "name": inputs.get("loadBalancerName"),
    }


def _listener_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    slb = find(cloud, inputs.get("loadBalancerId", ""), _SLB, "InvalidLoadBalancerId.NotFound", "load balancer")
    group_id = inputs.get("serverGroupId")
    if group_id:
        group = find(cloud, group_id, _GROUP, "InvalidParameter.VServerGroupId", "VServer group")
        if group["inputs"].get("loadBalancerId") != slb["id"]:
            raise CloudError("InvalidParameter.VServerGroupId", f"{group_id} belongs to another load balancer.")
    if inputs.get("protocol") == "https":
        certificate_id = plain(inputs.get("serverCertificateId")) or ""
        if not certificate_id:
            raise CloudError("MissingParameter.ServerCertificateId", "An HTTPS listener needs a server certificate.")
        find(cloud, certificate_id, _CERTIFICATE, "ServerCertificateId.NotFound", "server certificate")
    if inputs.get("listenerForward") == "on":
        target = _int_if_whole(inputs.get("forwardPort"))
        if not any(
            other["inputs"].get("loadBalancerId") == slb["id"]
            and _int_if_whole(other["inputs"].get("frontendPort")) == target
            and other["inputs"].get("protocol") == "https"
            for other in live(cloud, "alicloud:slb/listener:Listener")
        ):
            raise CloudError(
                "ForwardPort.NotExist", f"No HTTPS listener on port {target} of {slb['id']} to redirect to.", 404
            )
    port = _int_if_whole(inputs.get("frontendPort"))
    for other in live(cloud, "alicloud:slb/listener:Listener"):
        if other["id"] == own_id or other["inputs"].get("loadBalancerId") != slb["id"]:
            continue
        if _int_if_whole(other["inputs"].get("frontendPort")) == port:
            raise CloudError("ListenerAlreadyExists", f"A listener on port {port} already exists on {slb['id']}.", 409)


def _member_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    find(cloud, inputs.get("serverGroupId", ""), _GROUP, "InvalidParameter.VServerGroupId", "VServer group")
    find(cloud, inputs.get("serverId", ""), "alicloud:ecs/instance:Instance", "InvalidInstanceId.NotFound", "instance")
    own = _member_id(inputs)
    for other in live(cloud, "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment"):
        if other["id"] != own_id and other["id"] == own:
            raise CloudError(
                "BackendServer.AlreadyExist",
                f"Server {inputs.get('serverId')} is already a member of {inputs.get('serverGroupId')} on this port.",
                409,
            )


def _member_id(inputs: Props) -> str:
    return f"{inputs.get('serverGroupId')}:{inputs.get('serverId')}:{_int_if_whole(inputs.get('port'))}"


def _listener_delete_check(record: dict[str, Any], cloud: Cloud) -> None:
    """An HTTPS listener that another listener redirects to stays until that one is gone."""
    inputs = record["inputs"]
    if inputs.get("protocol") != "https":
        return
    for other in live(cloud, "alicloud:slb/listener:Listener"):
        if (
            other["inputs"].get("loadBalancerId") == inputs.get("loadBalancerId")
            and other["inputs"].get("listenerForward") == "on"
            and _int_if_whole(other["inputs"].get("forwardPort")) == _int_if_whole(inputs.get("frontendPort"))
        ):
            raise CloudError("ListenerForwardedTo", f"{other['id']} still redirects to {record['id']}.", 409)


_CERTIFICATE = "alicloud:slb/serverCertificate:ServerCertificate"


def _certificate_id(inputs: Props, cloud: Cloud) -> str:
    # UploadServerCertificate answers IDs like 1234567890123456_18f2a3b4c5d_1714763408_-709470326: the account, the
    # upload time in hex milliseconds and two hashes.
    millis = int(datetime.now(UTC).timestamp() * 1000) + secrets.randbelow(1000)
    return f"{ACCOUNT_ID}_{millis:x}_{digits(10)}_-{digits(9)}"


def _certificate_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    """Either a CAS certificate (ID, name and region) or a PEM pair, as UploadServerCertificate wants."""
    cas = [inputs.get(f) for f in ("alicloudCertificateId", "alicloudCertificateName", "alicloudCertificateRegionId")]
    pem = [plain(inputs.get(f)) for f in ("serverCertificate", "privateKey")]
    if any(cas):
        if not all(cas):
            raise CloudError(
                "MissingParameter.AliCloudCertificate",
                "A CAS certificate needs its ID, name and region (AliCloudCertificateId, -Name, -RegionId).",
            )
    elif not all(pem):
        raise CloudError(
            "MissingParameter.ServerCertificate",
            "Give a CAS certificate or both the PEM certificate and its private key.",
        )
    elif not str(pem[0]).lstrip().startswith("-----BEGIN CERTIFICATE-----") or "PRIVATE KEY-----" not in str(pem[1]):
        raise CloudError("InvalidParameter.ServerCertificate", "The certificate or private key is not in PEM format.")


# --- CloudMonitor ----------------------------------------------------------------------------------------------------

_CONTACT = "alicloud:cms/alarmContact:AlarmContact"
_CONTACT_GROUP = "alicloud:cms/alarmContactGroup:AlarmContactGroup"
_ALARM = "alicloud:cms/alarm:Alarm"


def _account_wide_name(token: str, field: str, code: str, what: str) -> Callable[[Props, Cloud, str | None], None]:
    """A name that is its resource's ID, in the whole account.

    The API's Put* calls create or overwrite by name, so a second stack naming the same contact would silently take
    over the first one's (and its destroy would delete it for both). The local cloud refuses instead: what matters here
    is that two stacks never share one.
    """
    unique = _unique(token, field, code, what)

    def check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
        name = str(plain(inputs.get(field)) or "")
        if not 2 <= len(name) <= 40 and token == _CONTACT:
            raise CloudError("InvalidParameter.ContactName", f"The contact name {name!r} must be 2-40 characters.")
        unique(inputs, cloud, own_id)

    return check


def _contact_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    _account_wide_name(_CONTACT, "alarmContactName", "ContactAlreadyExists", "alarm contact")(inputs, cloud, own_id)
    channels = ("channelsAliim", "channelsDingWebHook", "channelsMail", "channelsSms")
    if not any(plain(inputs.get(c)) for c in channels):
        raise CloudError("InvalidParameter.Channels", "A contact needs at least one channel (mail, SMS, IM, webhook).")


def _contact_group_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    _account_wide_name(_CONTACT_GROUP, "alarmContactGroupName", "ContactGroupAlreadyExists", "alarm contact group")(
        inputs, cloud, own_id
    )
    for name in inputs.get("contacts") or []:
        find(cloud, name, _CONTACT, "ContactNotExists", "alarm contact")


def _contact_delete_check(record: dict[str, Any], cloud: Cloud) -> None:
    for group in live(cloud, _CONTACT_GROUP):
        if record["id"] in (group["inputs"].get("contacts") or []):
            raise CloudError("ContactInUse", f"The contact {record['id']} is still in group {group['id']}.", 409)


def _contact_group_delete_check(record: dict[str, Any], cloud: Cloud) -> None:
    for alarm in live(cloud, _ALARM):
        if record["id"] in (alarm["inputs"].get("contactGroups") or []):
            raise CloudError(
                "ContactGroupInUse", f"The group {record['id']} is still used by alarm {alarm['id']}.", 409
            )


_COMPARISONS = ("<=", "<", ">", ">=", "==", "!=")


def _alarm_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    groups = inputs.get("contactGroups") or []
    if not groups:
        raise CloudError("InvalidParameter.ContactGroups", "An alarm rule needs at least one contact group.")
    for name in groups:
        find(cloud, name, _CONTACT_GROUP, "ContactGroupNotExists", "alarm contact group")
    levels = [
        level
        for level in ("escalationsCritical", "escalationsWarn", "escalationsInfo")
        if inputs.get(level) not in (None, {}, [])
    ]
    if not levels:
        raise CloudError("InvalidParameter.Escalations", "An alarm rule needs a critical, warn or info escalation.")
    for level in levels:
        escalation = inputs[level]
        escalation = escalation[0] if isinstance(escalation, list) else escalation
        if escalation.get("comparisonOperator", "==") not in _COMPARISONS:
            raise CloudError("InvalidParameter.ComparisonOperator", f"{escalation.get('comparisonOperator')!r}.")
        try:
            float(escalation.get("threshold", ""))
        except (TypeError, ValueError):
            raise CloudError("InvalidParameter.Threshold", "The threshold must be a number.") from None
    silence = _int_if_whole(inputs.get("silenceTime", 86400))
    if not 300 <= silence <= 86400:
        raise CloudError("InvalidParameter.SilenceTime", f"The silence time {silence} is not within [300, 86400].")
    dimensions = inputs.get("metricDimensions")
    if dimensions:
        try:
            json.loads(dimensions)
        except ValueError:
            raise CloudError("InvalidParameter.Resources", "The metric dimensions are not a JSON list.") from None


def _alarm_id(inputs: Props, cloud: Cloud) -> str:
    # resource.UniqueId(): "terraform-", the UTC time to the 1/10000 s, and an 8-digit hex counter.
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")[:18]
    return f"terraform-{stamp}{secrets.randbelow(2**32):08x}"


# --- DNS, OOS ------------------------------------------------------------------------------------------------------


def _dns_check(inputs: Props, cloud: Cloud, own_id: str | None) -> None:
    fields = ("domainName", "rr", "type", "value", "line")
    wanted = [inputs.get(f) for f in fields]
    for other in live(cloud, "alicloud:dns/alidnsRecord:AlidnsRecord"):
        if other["id"] != own_id and [other["inputs"].get(f) for f in fields] == wanted:
            raise CloudError("DomainRecordDuplicate", "The DNS record already exists.", 409)


def _no_computed(rid: str, inputs: Props, cloud: Cloud) -> Props:
    return {}


KINDS: dict[str, Kind] = {
    kind.token: kind
    for kind in [
        Kind(
            "alicloud:vpc/network:Network",
            (5, 2, 5),
            lambda i, c: alibaba_id("vpc"),
            lambda rid, i, c: {
                "routerId": alibaba_id("vrt"),
                "routeTableId": alibaba_id("vtb"),
                "routerTableId": "",
                "status": "Available",
                "createTime": timestamp(),
                "regionId": c.get("region", "cn-hangzhou"),
                "resourceGroupId": "rg-acfm" + digits(11),
                "name": i.get("vpcName"),
                "ipv6CidrBlocks": [],
            },
            check_delete=_no_dependents(
                ("alicloud:vpc/switch:Switch", "vpcId", "DependencyViolation.VSwitch"),
                ("alicloud:ecs/securityGroup:SecurityGroup", "vpcId", "DependencyViolation.SecurityGroup"),
            ),
        ),
        Kind(
            "alicloud:vpc/switch:Switch",
            (5, 2, 5),
            lambda i, c: alibaba_id("vsw"),
            lambda rid, i, c: {
                "status": "Available",
                "createTime": timestamp(),
                "name": i.get("vswitchName"),
                "availabilityZone": i.get("zoneId"),
                "ipv6CidrBlock": "",
            },
            check=_vswitch_check,
            check_delete=_no_dependents(
                ("alicloud:ecs/instance:Instance", "vswitchId", "DependencyViolation.Instance"),
                (_RDS, "vswitchId", "DependencyViolation.RDS"),
                (_SLB, "vswitchId", "DependencyViolation.SLB"),
            ),
            zone=lambda i, c: i.get("zoneId"),
        ),
        Kind(
            "alicloud:ecs/securityGroup:SecurityGroup",
            (2, 1, 2),
            lambda i, c: alibaba_id("sg"),
            lambda rid, i, c: {"createTime": timestamp(), "name": i.get("securityGroupName")},
            check=_exists("vpcId", "alicloud:vpc/network:Network", "InvalidVpcId.NotFound", "VPC"),
            check_delete=_no_dependents(
                ("alicloud:ecs/instance:Instance", "securityGroups", "DependencyViolation.Instance")
            ),
        ),
        Kind(
            "alicloud:ecs/securityGroupRule:SecurityGroupRule",
            (1, 1, 1),
            lambda i, c: _rule_id(i),
            lambda rid, i, c: {"securityGroupRuleId": alibaba_id("sgr")},
            check=_rule_check,
        ),
        Kind(
            "alicloud:ecs/instance:Instance",
            (60, 30, 30),
            lambda i, c: alibaba_id("i", 17),
            _instance_computed,
            check=_instance_check,
            check_delete=_protected("deletionProtection", True, "InvalidOperation.DeletionProtection", "instance"),
            zone=lambda i, c: _zone_of_vswitch(c, i.get("vswitchId", "")),
        ),
        Kind(
            "alicloud:ecs/ramRoleAttachment:RamRoleAttachment",
            (3, 3, 3),
            lambda i, c: f"{i.get('instanceId')}:{i.get('ramRoleName')}",
            _no_computed,
            check=_ram_role_attachment_check,
        ),
        Kind(
            "alicloud:ecs/eipAddress:EipAddress",
            (5, 2, 5),
            lambda i, c: alibaba_id("eip"),
            lambda rid, i, c: {
                "ipAddress": _allocate_ip(c, EIP_RANGE, 10),
                "status": "Available",
                "createTime": timestamp(),
                "allocationId": rid,
            },
            check_delete=_both(
                _protected("deletionProtection", True, "OperationDenied.DeletionProtection", "EIP"),
                _no_dependents(("alicloud:ecs/eipAssociation:EipAssociation", "allocationId", "IncorrectEipStatus")),
            ),
        ),
        Kind(
            "alicloud:ecs/eipAssociation:EipAssociation",
            (5, 5, 5),
            lambda i, c: f"{i.get('allocationId')}:{i.get('instanceId')}",
            _no_computed,
            check=_eip_association_check,
        ),
        Kind(
            "alicloud:ram/role:Role",
            (1, 1, 1),
            lambda i, c: str(i.get("roleName")),
            lambda rid, i, c: {
                "arn": f"acs:ram::{ACCOUNT_ID}:role/{str(i.get('roleName')).lower()}",
                "roleId": digits(19),
                "createTime": timestamp(),
                "name": i.get("roleName"),
                "document": i.get("assumeRolePolicyDocument"),
            },
            check=_unique("alicloud:ram/role:Role", "roleName", "EntityAlreadyExists.Role", "role"),
            check_delete=_role_delete_check,
        ),
        Kind(
            "alicloud:ram/policy:Policy",
            (1, 1, 1),
            lambda i, c: str(i.get("policyName")),
            lambda rid, i, c: {
                "attachmentCount": 0,
                "createTime": timestamp(),
                "defaultVersion": "v1",
                "versionId": "v1",
                "type": "Custom",
                "name": i.get("policyName"),
                "document": i.get("policyDocument"),
            },
            check=_unique("alicloud:ram/policy:Policy", "policyName", "EntityAlreadyExists.Policy", "policy"),
            check_delete=_policy_delete_check,
        ),
        Kind(
            "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment",
            (1, 1, 1),
            lambda i, c: f"role:{i.get('policyName')}:{i.get('policyType')}:{i.get('roleName')}",
            _no_computed,
            check=_role_policy_check,
        ),
        Kind(
            _RDS,
            (1500, 300, 300),
            lambda i, c: alibaba_id("rm"),
            _rds_computed,
            check=_rds_check,
            check_delete=_protected("deletionProtection", True, "OperationDenied.DeletionProtection", "RDS instance"),
            zone=lambda i, c: i.get("zoneId"),
        ),
        Kind(
            "alicloud:rds/database:Database",
            (30, 10, 30),
            lambda i, c: f"{i.get('instanceId')}:{i.get('dataBaseName')}",
            lambda rid, i, c: {"status": "Running", "name": i.get("dataBaseName")},
            check=_in_instance("dataBaseName", "database", "alicloud:rds/database:Database", "InvalidDBName.Duplicate"),
        ),
        Kind(
            "alicloud:rds/rdsAccount:RdsAccount",
            (30, 10, 10),
            lambda i, c: f"{i.get('dbInstanceId')}:{i.get('accountName')}",
            lambda rid, i, c: {
                "status": "Available",
                "instanceId": i.get("dbInstanceId"),
                "name": i.get("accountName"),
                "type": i.get("accountType"),
                "description": i.get("accountDescription"),
            },
            check=_in_instance(
                "accountName", "account", "alicloud:rds/rdsAccount:RdsAccount", "InvalidAccountName.Duplicate"
            ),
        ),
        Kind(
            "alicloud:rds/accountPrivilege:AccountPrivilege",
            (20, 20, 20),
            lambda i, c: f"{i.get('instanceId')}:{i.get('accountName')}:{i.get('privilege')}",
            _no_computed,
            check=_privilege_check,
        ),
        Kind(
            "alicloud:rds/backupPolicy:BackupPolicy",
            (10, 10, 5),
            lambda i, c: str(i.get("instanceId")),
            _no_computed,
            check=_rds_child_check,
        ),
        Kind(
            _SLB,
            (30, 10, 10),
            lambda i, c: alibaba_id("lb"),
            _slb_computed,
            check=_slb_check,
            check_delete=_protected("deleteProtection", "on", "DeleteProtectionIsOn", "load balancer"),
            zone=lambda i, c: i.get("masterZoneId"),
        ),
        Kind(
            _GROUP,
            (3, 3, 3),
            lambda i, c: alibaba_id("rsp", 11),
            _no_computed,
            check=_exists("loadBalancerId", _SLB, "InvalidLoadBalancerId.NotFound", "load balancer"),
            check_delete=_no_dependents(
                ("alicloud:slb/listener:Listener", "serverGroupId", "RspoolVipExist"),
                (
                    "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment",
                    "serverGroupId",
                    "DependencyViolation.BackendServer",
                ),
            ),
        ),
        Kind(
            "alicloud:slb/listener:Listener",
            (10, 10, 5),
            lambda i, c: f"{i.get('loadBalancerId')}:{i.get('protocol')}:{_int_if_whole(i.get('frontendPort'))}",
            _no_computed,
            check=_listener_check,
            check_delete=_listener_delete_check,
        ),
        Kind(
            _CERTIFICATE,
            (3, 2, 3),
            _certificate_id,
            lambda rid, i, c: {"resourceGroupId": "rg-acfm" + digits(11), "name": i.get("name") or rid},
            check=_certificate_check,
            check_delete=_no_dependents(
                ("alicloud:slb/listener:Listener", "serverCertificateId", "CertificateAndPrivateKeyIsRefered")
            ),
        ),
        Kind(
            _CONTACT,
            (2, 2, 2),
            lambda i, c: str(i.get("alarmContactName")),
            _no_computed,
            check=_contact_check,
            check_delete=_contact_delete_check,
        ),
        Kind(
            _CONTACT_GROUP,
            (2, 2, 2),
            lambda i, c: str(i.get("alarmContactGroupName")),
            lambda rid, i, c: {"enableSubscribed": bool(i.get("enableSubscribed", False))},
            check=_contact_group_check,
            check_delete=_contact_group_delete_check,
        ),
        Kind(
            _ALARM,
            (2, 2, 2),
            _alarm_id,
            lambda rid, i, c: {
                "status": "OK",
                "effectiveInterval": i.get("effectiveInterval") or "00:00-23:59",
                "webhook": i.get("webhook") or "",
                # Computed lists and maps the provider reads back empty: absent from the state, the real provider's
                # diff would plan them as "to be computed" and show every alarm as changed on each preview.
                "prometheus": [],
                "targets": [],
                "dimensions": {},
            },
            check=_alarm_check,
        ),
        Kind(
            "alicloud:slb/serverGroupServerAttachment:ServerGroupServerAttachment",
            (5, 5, 5),
            lambda i, c: _member_id(i),
            _no_computed,
            check=_member_check,
        ),
        Kind(
            "alicloud:dns/alidnsRecord:AlidnsRecord",
            (2, 2, 2),
            lambda i, c: digits(17),
            lambda rid, i, c: {"status": "ENABLE", "line": i.get("line") or "default"},
            check=_dns_check,
        ),
        Kind(
            "alicloud:oos/secretParameter:SecretParameter",
            (2, 2, 2),
            lambda i, c: str(i.get("secretParameterName")),
            lambda rid, i, c: {"createTime": timestamp()},
            check=_unique(
                "alicloud:oos/secretParameter:SecretParameter",
                "secretParameterName",
                "EntityAlreadyExists.Parameter",
                "parameter",
            ),
        ),
    ]
}


def kind(token: str) -> Kind:
    if token not in KINDS:
        raise CloudError("InvalidResourceType.NotSupported", f"The local cloud does not implement {token}.", 501)
    return KINDS[token]
