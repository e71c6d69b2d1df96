"""The topology's invariants as checks over one evaluated stack: each returns its violations, URN first.

They are plain functions so that each can be run against the real stacks (no violation) and against a deliberately
broken copy of a stack (at least one violation): every check is seen failing.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable

from infra.config import SLB_SOURCE_CIDR, Settings, parse_settings
from plan.offline import Evaluation, Resource
from plan.topology import (  # the resource types the plan reads, named once
    ALARM,
    DNS,
    ECS,
    EIP,
    EIP_ASSOCIATION,
    LISTENER,
    MEMBER,
    RDS,
    SCHEMA_MIGRATION,
    SERVER_CERTIFICATE,
    SERVER_GROUP,
    SLB,
    VSWITCH,
)
from policy.sdk_facts import deprecated_inputs, deprecated_resource, resource_class

SG_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
RDS_DATABASE = "alicloud:rds/database:Database"
BACKUP = "alicloud:rds/backupPolicy:BackupPolicy"
OOS_PARAMETER = "alicloud:oos/secretParameter:SecretParameter"  # pragma: allowlist secret
RAM_ROLE = "alicloud:ram/role:Role"
RAM_POLICY = "alicloud:ram/policy:Policy"
RAM_ROLE_ATTACHMENT = "alicloud:ecs/ramRoleAttachment:RamRoleAttachment"
RDS_ACCOUNT = "alicloud:rds/rdsAccount:RdsAccount"
RDS_PRIVILEGE = "alicloud:rds/accountPrivilege:AccountPrivilege"
HEALTH_GATE = "pulumi-python:dynamic/slb:HealthGate"
ALARM_CONTACT = "alicloud:cms/alarmContact:AlarmContact"
ALARM_GROUP = "alicloud:cms/alarmContactGroup:AlarmContactGroup"
# Our own dynamic resources: not from a provider SDK, so they have no SDK deprecation markers to check.
OWN_TYPES_PREFIX = "pulumi-python:dynamic"

# Fixed by the product: the public name of each environment.
SUB_DOMAINS = {"dev": "dev", "preprod": "pre-prod", "prod": "www"}
PROTECTED_STACKS = {"prod"}
# Resources that, besides one attachment per server, could also claim SLB membership; none may be used.
OTHER_MEMBERSHIP_OWNERS = {
    "alicloud:slb/backendServer:BackendServer",
    "alicloud:slb/attachment:Attachment",
    "alicloud:slb/masterSlaveServerGroup:MasterSlaveServerGroup",
}
# Inputs that hold a physical name; each must carry the stack name and be unique across stacks.
NAME_INPUTS = {
    "vpcName",
    "vswitchName",
    "securityGroupName",
    "instanceName",
    "hostName",
    "loadBalancerName",
    "addressName",
}
NAME_INPUTS_BY_TYPE = {
    SERVER_GROUP: {"name"},
    SERVER_CERTIFICATE: {"name"},
    ALARM: {"name"},
    ALARM_CONTACT: {"alarmContactName"},
    ALARM_GROUP: {"alarmContactGroupName"},
}
# Inputs that hold a secret value (not the name of one, like an OOS secretParameterName).
PASSWORD_LIKE = re.compile(r"password(?!inherit)|secretdata$|privatekey|accesskeysecret|securitytoken", re.I)
# Secret inputs whose names say nothing: the value of an encrypted parameter.
SECRET_INPUTS_BY_TYPE = {
    OOS_PARAMETER: {"value"},
    SERVER_CERTIFICATE: {"serverCertificate", "privateKey"},
    ALARM_CONTACT: {"channelsDingWebHook"},
}
EXPORTS = {
    "url",
    "eip_address",
    "slb_id",
    "vpc_id",
    "vswitch_ids",
    "app_server_ids",
    "db_host",
    "db_port",
    "db_name",
    "db_user",
    "db_password",
    "db_password_parameter",
    "replacement_pins",
    "health_check_pins",
}

Check = Callable[[Evaluation], list[str]]


def settings_of(ev: Evaluation) -> Settings:
    """The settings the stack was evaluated with (its stack file plus any overrides)."""
    return parse_settings("ha-webapp", ev.stack, ev.config, ev.secret_keys)


def _one(ev: Evaluation, type_token: str) -> Resource:
    found = ev.of_type(type_token)
    assert len(found) == 1, f"expected exactly one {type_token}, found {[r.urn for r in found]}"
    return found[0]


def _zone_of_vswitch(ev: Evaluation) -> dict[str, str]:
    by_id = ev.by_id()
    return {id_: r.value("zoneId") for id_, r in by_id.items() if r.type == VSWITCH}


def two_zones(ev: Evaluation) -> list[str]:
    switches = ev.of_type(VSWITCH)
    zones = [s.value("zoneId") for s in switches]
    if len(switches) != 2 or len(set(zones)) != 2:
        return [f"{[s.urn for s in switches]}: expected two VSwitches in two different zones, got zones {zones}"]
    return []


def servers_in_both_zones(ev: Evaluation) -> list[str]:
    zone_of = _zone_of_vswitch(ev)
    servers = ev.of_type(ECS)
    per_zone = Counter(zone_of.get(s.value("vswitchId")) for s in servers)
    missing = [z for z in zone_of.values() if per_zone[z] == 0]
    return [f"{[s.urn for s in servers]}: no app server in zone {z} (per zone: {dict(per_zone)})" for z in missing]


def rds_multi_zone(ev: Evaluation) -> list[str]:
    rds = _one(ev, RDS)
    zone_of = _zone_of_vswitch(ev)
    primary, standby = rds.value("zoneId"), rds.value("zoneIdSlaveA")
    vswitches = str(rds.value("vswitchId")).split(",")
    problems = []
    if (rds.value("engine"), rds.value("engineVersion"), rds.value("category")) != ("MySQL", "8.0", "HighAvailability"):
        problems.append(f"{rds.urn}: expected MySQL 8.0 HighAvailability")
    if not primary or primary == standby:
        problems.append(f"{rds.urn}: primary zone {primary} and standby zone {standby} must differ")
    if [zone_of.get(v) for v in vswitches] != [primary, standby]:
        problems.append(f"{rds.urn}: vswitchId {vswitches} must be the VSwitches of {primary} and {standby}, in order")
    return problems


def rds_whitelist_is_app_subnets(ev: Evaluation) -> list[str]:
    rds = _one(ev, RDS)
    app_cidrs = sorted(s.value("cidrBlock") for s in ev.of_type(VSWITCH))
    allowed = sorted(rds.value("securityIps") or [])
    if allowed != app_cidrs:
        return [f"{rds.urn}: whitelist {allowed} must be exactly the app VSwitches {app_cidrs}"]
    return []


def serving_listener(ev: Evaluation) -> Resource:
    """The listener that forwards to the app servers (the other one, if any, only redirects)."""
    found = [r for r in ev.of_type(LISTENER) if r.value("serverGroupId")]
    assert len(found) == 1, f"expected one listener with a server group, found {[r.urn for r in found]}"
    return found[0]


def health_check_on_listener(ev: Evaluation) -> list[str]:
    listener = serving_listener(ev)
    expected_path = settings_of(ev).app.health_check_path
    https = settings_of(ev).https.certificate != "none"
    got = {
        k: listener.value(k)
        for k in ("protocol", "frontendPort", "healthCheck", "healthCheckUri", "healthCheckHttpCode")
    }
    want = {
        "protocol": "https" if https else "http",
        "frontendPort": 443 if https else 80,
        "healthCheck": "on",
        "healthCheckUri": expected_path,
        "healthCheckHttpCode": "http_2xx",
    }
    problems = [] if got == want else [f"{listener.urn}: expected {want}, got {got}"]
    # Each server is checked on the port it joined with; a pinned port would change in place, ahead of the servers,
    # when the app port changes (infra/load_balancer.py).
    if listener.value("healthCheckConnectPort") is not None:
        problems.append(f"{listener.urn}: healthCheckConnectPort {listener.value('healthCheckConnectPort')} is pinned")
    return problems


def all_servers_behind_slb(ev: Evaluation) -> list[str]:
    by_id = ev.by_id()
    slb = _one(ev, SLB)
    listener = serving_listener(ev)
    group = by_id.get(listener.value("serverGroupId"))
    problems = []
    if group is None or group.type != SERVER_GROUP or by_id.get(group.value("loadBalancerId")) is not slb:
        return [f"{listener.urn}: must forward to a server group of {slb.urn}"]
    if group.value("servers"):
        problems.append(f"{group.urn}: lists servers itself; membership belongs to one attachment per server")
    problems += [f"{r.urn}: a second owner of membership" for r in ev.resources if r.type in OTHER_MEMBERSHIP_OWNERS]
    members = Counter(m.value("serverId") for m in ev.of_type(MEMBER) if by_id.get(m.value("serverGroupId")) is group)
    for server in ev.of_type(ECS):
        count = members[next(i for i, r in by_id.items() if r is server)]
        if count != 1:
            problems.append(f"{server.urn}: is a member of {group.urn} {count} times, expected exactly once")
    return problems


def eip_on_slb(ev: Evaluation) -> list[str]:
    by_id = ev.by_id()
    association = _one(ev, EIP_ASSOCIATION)
    eip = by_id.get(association.value("allocationId"))
    target = by_id.get(association.value("instanceId"))
    if (
        eip is None
        or eip.type != EIP
        or target is None
        or target.type != SLB
        or (association.value("instanceType") != "SlbInstance")
    ):
        return [f"{association.urn}: must associate the EIP with the SLB (instanceType SlbInstance)"]
    if not association.delete_before_replace:
        # allocation_id/instance_id are ForceNew and an EIP binds one instance at a time: unbind before rebinding.
        return [f"{association.urn}: must be deleted before it is replaced (the EIP is still bound to the old SLB)"]
    return []


def slb_pay_by_clcu(ev: Evaluation) -> list[str]:
    """A CLB bought by specification is refused since 2025-06-01: pay-as-you-go, pay-by-CLCU, no specification."""
    slb = _one(ev, SLB)
    got = {k: slb.value(k) for k in ("paymentType", "instanceChargeType", "loadBalancerSpec", "specification")}
    want = {"paymentType": "PayAsYouGo", "instanceChargeType": "PayByCLCU"} | dict.fromkeys(
        ("loadBalancerSpec", "specification")
    )
    return [] if got == want else [f"{slb.urn}: expected {want}, got {got}"]


def dns_record_per_stack(ev: Evaluation) -> list[str]:
    record = _one(ev, DNS)
    want = {"rr": SUB_DOMAINS[ev.stack], "type": "A", "value": ev.exports["eip_address"]}
    got = {k: record.value(k) for k in want}
    return [] if got == want else [f"{record.urn}: expected {want}, got {got}"]


def no_ingress_from_anywhere(ev: Evaluation) -> list[str]:
    settings = settings_of(ev)
    problems = []
    for rule in ev.of_type(SG_RULE):
        if rule.value("type") != "ingress":
            continue
        source = rule.value("cidrIp") or rule.value("ipv6CidrIp")
        network = ipaddress.ip_network(source) if source else None
        if network is None or network.prefixlen == 0:
            problems.append(f"{rule.urn}: ingress from {source or 'an unspecified source'}")
        ports = rule.value("portRange")
        if ports == f"{settings.app.port}/{settings.app.port}" and source != SLB_SOURCE_CIDR:
            problems.append(f"{rule.urn}: app port open to {source}, expected only {SLB_SOURCE_CIDR}")
        if ports == "22/22" and source != settings.network.admin_cidr:
            problems.append(f"{rule.urn}: SSH open to {source} but the admin CIDR is {settings.network.admin_cidr}")
    return problems


def password_like_inputs_are_secret(ev: Evaluation) -> list[str]:
    return [
        f"{r.urn}: input {key} is not secret"
        for r in ev.resources
        for key, value in r.inputs.items()
        if (PASSWORD_LIKE.search(key) or key in SECRET_INPUTS_BY_TYPE.get(r.type, set()))
        and value is not None
        and not r.is_secret(key)
    ]


def protection_matches_stack(ev: Evaluation) -> list[str]:
    protected = ev.stack in PROTECTED_STACKS
    want_on = {RDS: "deletionProtection", EIP: "deletionProtection", SLB: "deleteProtection", RDS_DATABASE: None}
    problems = []
    for type_token, flag in want_on.items():
        resource = _one(ev, type_token)
        if resource.protect != protected:
            problems.append(f"{resource.urn}: Pulumi protect is {resource.protect}, expected {protected}")
        if flag is not None and resource.value(flag) not in ((True, "on") if protected else (False, "off")):
            expected = "on" if protected else "off"
            problems.append(f"{resource.urn}: {flag} is {resource.value(flag)}, expected {expected}")
    return problems


def physical_names_carry_stack(ev: Evaluation) -> list[str]:
    return [
        f"{r.urn}: physical name {name!r} does not carry the stack name"
        for r, name in physical_names(ev)
        if not name.startswith(f"ha-webapp-{ev.stack}-")
    ]


def physical_names(ev: Evaluation) -> list[tuple[Resource, str]]:
    return [
        (r, str(r.value(key)))
        for r in ev.resources
        for key in NAME_INPUTS | NAME_INPUTS_BY_TYPE.get(r.type, set())
        if r.value(key) is not None
    ]


def taggable_resources_tagged(ev: Evaluation) -> list[str]:
    problems = []
    for r in ev.resources:
        cls = resource_class(r.type)
        if cls is None or "tags" not in _args_properties(cls):
            continue
        tags = r.value("tags") or {}
        if tags.get("project") != "ha-webapp" or tags.get("stack") != ev.stack:
            problems.append(f"{r.urn}: tags {tags} lack project/stack")
    return problems


def _args_properties(cls: type) -> set[str]:
    import importlib

    args_cls = getattr(importlib.import_module(cls.__module__), f"{cls.__name__}Args")
    return {name for name, value in vars(args_cls).items() if isinstance(value, property)}


def nothing_deprecated(ev: Evaluation) -> list[str]:
    problems = []
    for r in ev.resources:
        if not r.custom or r.type.startswith(OWN_TYPES_PREFIX):
            continue
        if resource_class(r.type) is None:
            problems.append(f"{r.urn}: {r.type} is not a resource of the installed SDKs")
            continue
        if reason := deprecated_resource(r.type):
            problems.append(f"{r.urn}: {r.type} is deprecated: {reason}")
        deprecated = deprecated_inputs(r.type)
        problems += [f"{r.urn}: input {k} is deprecated: {deprecated[k]}" for k in r.inputs if k in deprecated]
    return problems


def servers_private_without_password(ev: Evaluation) -> list[str]:
    problems = []
    image_id = settings_of(ev).image_id
    for server in ev.of_type(ECS):
        if server.value("internetMaxBandwidthOut") != 0:
            problems.append(f"{server.urn}: has a public address")
        if server.value("password") or server.value("kmsEncryptedPassword") or server.value("passwordInherit"):
            problems.append(f"{server.urn}: allows password login")
        if server.value("imageId") != image_id:
            problems.append(f"{server.urn}: image {server.value('imageId')} is not ha-webapp:imageId {image_id}")
        if server.value("httpTokens") != "required" or server.value("systemDiskEncrypted") is not True:
            problems.append(f"{server.urn}: metadata must need a session token and the system disk be encrypted")
    return problems


def user_data_holds_no_secret(ev: Evaluation) -> list[str]:
    """Boot settings name where secrets are (a KMS secret), never carry one."""
    password = str(ev.exports["db_password"])
    problems = []
    for server in ev.of_type(ECS):
        text = base64.b64decode(str(server.value("userData"))).decode()
        if password in text:
            problems.append(f"{server.urn}: user data carries the database password")
        problems += [
            f"{server.urn}: user data sets {line.split('=')[0]}, a secret"
            for line in text.splitlines()
            if re.match(r"\s*[A-Z_]*(PASSWORD|SECRET_KEY|TOKEN)=", line)
        ]
    return problems


def servers_read_only_their_secret(ev: Evaluation) -> list[str]:
    """Each server has the app role; the role may only read the password's OOS encrypted parameter (and the KMS secret
    OOS keeps it in, which GetSecretParameter with decryption needs), from ECS only."""
    ids = _ids(ev)
    role = _one(ev, RAM_ROLE)
    policy = _one(ev, RAM_POLICY)
    parameter = _one(ev, OOS_PARAMETER)
    name, region = parameter.value("secretParameterName"), settings_of(ev).region
    wanted = [f"acs:kms:{region}:*:secret/oos/{name}", f"acs:oos:{region}:*:secretparameter/{name}"]
    problems = []
    trust = json.loads(str(role.value("assumeRolePolicyDocument")))
    principals = [p for st in trust["Statement"] for p in st.get("Principal", {}).get("Service", [])]
    if principals != ["ecs.aliyuncs.com"]:
        problems.append(f"{role.urn}: may be assumed by {principals}, expected ECS only")
    statements = json.loads(str(policy.value("policyDocument")))["Statement"]
    allowed = [(st.get("Effect"), sorted(st.get("Action", [])), sorted(st.get("Resource", []))) for st in statements]
    if allowed != [("Allow", ["kms:GetSecretValue", "oos:GetSecretParameter"], wanted)]:
        problems.append(f"{policy.urn}: allows {allowed}, expected only reading {wanted}")
    attached = Counter(
        a.value("instanceId")
        for a in ev.of_type(RAM_ROLE_ATTACHMENT)
        if a.value("ramRoleName") == role.value("roleName")
    )
    problems += [
        f"{s.urn}: has the app role {attached[ids[s.urn]]} times" for s in ev.of_type(ECS) if attached[ids[s.urn]] != 1
    ]
    return problems


def secret_parameter_needs_no_kms_instance(ev: Evaluation) -> list[str]:
    """The password lives in an OOS encrypted parameter under KMS's default service key: no dedicated KMS instance
    (a monthly cost) and no KMS 3.0 secret, which needs one. Its name changes on every creation (a random suffix),
    so destroy-then-up and replacements never reuse a name."""
    kms = [r.urn for r in ev.resources if r.type.startswith("alicloud:kms/")]
    if kms:
        return [f"{urn}: a KMS 3.0 secret needs a dedicated KMS instance (a monthly cost)" for urn in kms]
    problems = []
    parameter = _one(ev, OOS_PARAMETER)
    if parameter.value("keyId") or parameter.value("dkmsInstanceId") or parameter.value("type") != "Secret":
        problems.append(
            f"{parameter.urn}: expected type Secret under the default service key (no keyId, no dkmsInstanceId)"
        )
    name = str(parameter.value("secretParameterName"))
    if not re.fullmatch(rf"ha-webapp-{ev.stack}-db-password-[a-z0-9]{{6}}", name):
        problems.append(f"{parameter.urn}: name {name!r} has no per-creation suffix")
    return problems


def password_parameter_deletion_is_guarded(ev: Evaluation) -> list[str]:
    """A KMS secret is deleted with a recovery window unless told otherwise; an OOS encrypted parameter has none:
    DeleteSecretParameter takes only the name and region (provider@81c43b6 resource_alicloud_oos_secret_parameter.go
    l.280-315; alibabacloud-oos20190601 3.7.0 DeleteSecretParameterRequest), and OOS has no call to restore one. So
    what stands in for the window is that nothing deletes the parameter by accident: Pulumi `protect` on protected
    stacks (a destroy stops there), and a replacement that creates the new parameter (under a new name) before the
    old one is deleted, so that no server ever boots while no password parameter exists."""
    parameter = _one(ev, OOS_PARAMETER)
    protected = ev.stack in PROTECTED_STACKS
    problems = []
    if parameter.protect != protected:
        problems.append(f"{parameter.urn}: Pulumi protect is {parameter.protect}, expected {protected}")
    if parameter.delete_before_replace:
        problems.append(f"{parameter.urn}: a replacement would delete the only copy of the password first")
    return problems


def rds_requires_tls(ev: Evaluation) -> list[str]:
    """TLS on and forced through the SSL call (force_encryption=1), not the require_secure_transport parameter, which
    the provider applies before SSL is open (resource_alicloud_db_instance.go@81c43b6, l.766 before l.1544)."""
    rds = _one(ev, RDS)
    parameters = {p["name"]: p["value"] for p in rds.value("parameters") or []}
    problems = []
    if rds.value("sslAction") != "Open" or rds.value("forceEncryption") != 1:
        problems.append(f"{rds.urn}: TLS must be on and forced (sslAction Open, forceEncryption 1)")
    if "require_secure_transport" in parameters:
        problems.append(f"{rds.urn}: require_secure_transport is applied before SSL is open; use forceEncryption")
    return problems


def components_own_every_resource(ev: Evaluation) -> list[str]:
    components = {r.urn for r in ev.resources if not r.custom}
    return [f"{r.urn}: is not inside a component" for r in ev.resources if r.custom and r.parent not in components]


def exports_complete(ev: Evaluation) -> list[str]:
    problems = []
    if set(ev.exports) != EXPORTS:
        problems.append(f"exports {sorted(ev.exports)} differ from {sorted(EXPORTS)}")
    if ev.secret_exports != {"db_password"}:
        problems.append(f"secret exports are {sorted(ev.secret_exports)}, expected only db_password")
    settings = settings_of(ev)
    scheme = "http" if settings.https.certificate == "none" else "https"
    if settings.dns and ev.exports.get("url") != f"{scheme}://{settings.dns.sub_domain}.{settings.dns.domain}":
        problems.append(f"url {ev.exports.get('url')} is not the stack's DNS name")
    if len(ev.exports.get("app_server_ids") or []) != len(ev.of_type(ECS)):
        problems.append("app_server_ids does not list every app server")
    return problems


def _ids(ev: Evaluation) -> dict[str, str]:
    """Resource URN -> the ID it got offline."""
    return {r.urn: id_ for id_, r in ev.by_id().items()}


def rollout_zone_by_zone(ev: Evaluation) -> list[str]:
    """Zone after zone: a zone's servers wait for the previous zone's gate, which waits for its members' health."""
    by_urn, by_id, ids = ev.by_urn(), ev.by_id(), _ids(ev)
    slb, listener = _one(ev, SLB), serving_listener(ev)
    zone_of = _zone_of_vswitch(ev)
    member_of = {m.value("serverId"): m for m in ev.of_type(MEMBER)}
    problems: list[str] = []
    previous_gate: Resource | None = None
    for zone in [z.id for z in settings_of(ev).network.zones]:
        servers = [s for s in ev.of_type(ECS) if zone_of.get(s.value("vswitchId")) == zone]
        server_ids = sorted(ids[s.urn] for s in servers)
        gates = [g for g in ev.of_type(HEALTH_GATE) if sorted(g.value("serverIds") or []) == server_ids]
        if len(gates) != 1:
            problems.append(f"zone {zone}: no single health gate waits for exactly its servers {server_ids}")
            continue
        gate = gates[0]
        if by_id.get(gate.value("loadBalancerId")) is not slb or gate.value("listenerPort") != listener.value(
            "frontendPort"
        ):
            problems.append(f"{gate.urn}: does not ask the stack's SLB about its serving listener")
        for server in servers:
            member = member_of.get(ids[server.urn])
            if member is None or member.urn not in gate.dependencies:
                problems.append(f"{gate.urn}: does not wait until {server.urn} is a member of the SLB")
            gates_waited_for = [d for d in server.dependencies if d in by_urn and by_urn[d].type == HEALTH_GATE]
            expected = [previous_gate.urn] if previous_gate else []
            if gates_waited_for != expected:
                problems.append(f"{server.urn}: waits for gates {gates_waited_for}, expected {expected}")
        previous_gate = gate
    for member in ev.of_type(MEMBER):
        if "serverId" not in member.replace_on_changes or member.delete_before_replace:
            problems.append(f"{member.urn}: a new server must get a new membership before the old one is removed")
    return problems


def _waits_for(ev: Evaluation, resource: Resource) -> set[str]:
    """Every URN `resource` waits for, directly or through what it waits for."""
    by_urn = ev.by_urn()
    seen: set[str] = set()
    todo = [resource]
    while todo:
        current = todo.pop()
        for urn in (*current.dependencies, *(u for us in current.property_dependencies.values() for u in us)):
            if urn not in seen and urn in by_urn:
                seen.add(urn)
                todo.append(by_urn[urn])
    return seen


def migration_before_zone_a_serves(ev: Evaluation) -> list[str]:
    """One schema migration per stack, on zone A's first server, after the database, its account and the server's
    role; every zone A membership waits for it, and so (through them) every zone's gate and zone B."""
    migrations = ev.of_type(SCHEMA_MIGRATION)
    if len(migrations) != 1:
        return [f"expected exactly one {SCHEMA_MIGRATION}, found {[m.urn for m in migrations]}"]
    migration = migrations[0]
    by_urn, ids, zone_of = ev.by_urn(), _ids(ev), _zone_of_vswitch(ev)
    zone_a = settings_of(ev).network.zones[0].id
    zone_a_servers = sorted((s for s in ev.of_type(ECS) if zone_of.get(s.value("vswitchId")) == zone_a), key=_name)
    problems: list[str] = []
    runs_on = [by_urn[u] for u in migration.property_dependencies.get("instanceId", ()) if u in by_urn]
    if not zone_a_servers or [r.urn for r in runs_on] != [zone_a_servers[0].urn]:
        problems.append(f"{migration.urn}: runs on {[r.urn for r in runs_on]}, not on zone {zone_a}'s first server")
    after = _waits_for(ev, migration)
    # Directly, not only through the server's boot settings (which name them today, but need not).
    direct = [by_urn[u] for u in (*migration.dependencies, *(u for us in migration.property_dependencies.values() for
                                                             u in us)) if u in by_urn]  # fmt: skip
    for token in (RDS_DATABASE, RDS_PRIVILEGE):
        if not any(r.type == token for r in direct):
            problems.append(f"{migration.urn}: does not itself wait for the {token.rsplit(':', 1)[-1]}")
    if not any(by_urn[u].type == RDS_ACCOUNT for u in after):
        problems.append(f"{migration.urn}: does not wait for the database account")
    roles = [r for r in ev.of_type(RAM_ROLE_ATTACHMENT) if runs_on and r.value("instanceId") == ids.get(runs_on[0].urn)]
    if not roles or roles[0].urn not in after:
        problems.append(f"{migration.urn}: may start before its server's RAM role (the password) is attached")
    zone_a_ids = {ids[s.urn] for s in zone_a_servers}
    for member in ev.of_type(MEMBER):
        if member.value("serverId") in zone_a_ids and migration.urn not in member.dependencies:
            problems.append(f"{member.urn}: a zone A server joins the SLB before the schema migration")
    for gate in ev.of_type(HEALTH_GATE):
        if migration.urn not in _waits_for(ev, gate):
            problems.append(f"{gate.urn}: does not come after the schema migration")
    return problems


def _name(resource: Resource) -> str:
    return resource.name


# The inputs that make a membership's ID (group:server:port); all inputs are ForceNew.
MEMBERSHIP_ID_INPUTS = {"serverGroupId", "serverId", "port"}


def memberships_vary_only_in_their_id(ev: Evaluation) -> list[str]:
    """Every membership input is ForceNew and its ID is group:server:port, so any other input that could change
    (a weight, a description naming the server) would replace a membership by itself: add the same backend, then
    remove it. Those inputs must be constants, the same for every membership."""
    members = ev.of_type(MEMBER)
    others = [{k: m.value(k) for k in m.inputs if k not in MEMBERSHIP_ID_INPUTS | {"__provider"}} for m in members]
    want = {"weight": 100, "type": "ecs"}
    return [
        f"{m.urn}: inputs besides group, server and port are {o}, expected exactly {want}"
        for m, o in zip(members, others, strict=True)
        if o != want
    ]


def image_change_replaces_servers(ev: Evaluation) -> list[str]:
    """A new image (or anything else that would restart a server in place) creates a new server first."""
    problems = []
    for server in ev.of_type(ECS):
        if not {"imageId", "instanceType", "userData"} <= set(server.replace_on_changes):
            problems.append(f"{server.urn}: replaceOnChanges {server.replace_on_changes} lets a release restart it")
        if server.delete_before_replace or server.value("deletionProtection"):
            problems.append(f"{server.urn}: must be created before, and deletable after, its replacement")
    return problems


MODERN_TLS = {"tls_cipher_policy_1_2", "tls_cipher_policy_1_2_strict", "tls_cipher_policy_1_2_strict_with_1_3"}


def https_at_the_edge(ev: Evaluation) -> list[str]:
    """With a certificate: HTTPS on 443 with it and a TLS 1.2+ policy, and 80 only redirects there. Without (an explicit
    opt-out, never on prod): HTTP on 80 only, no certificate."""
    settings = settings_of(ev)
    listeners = {(r.value("protocol"), r.value("frontendPort")): r for r in ev.of_type(LISTENER)}
    certificates = ev.of_type(SERVER_CERTIFICATE)
    by_id = ev.by_id()
    if settings.https.certificate == "none":
        problems = [f"{ev.stack}: HTTP only, but on a stack that must serve HTTPS"] if ev.stack == "prod" else []
        if set(listeners) != {("http", 80)} or certificates:
            problems.append(f"{ev.stack}: opted out of HTTPS, expected only HTTP on 80, got {sorted(listeners)}")
        return problems
    https, http = listeners.get(("https", 443)), listeners.get(("http", 80))
    problems = []
    if set(listeners) != {("https", 443), ("http", 80)} or https is None or http is None:
        return [f"{ev.stack}: expected HTTPS on 443 and HTTP on 80, got {sorted(listeners)}"]
    if https.value("tlsCipherPolicy") not in MODERN_TLS or https.value("tlsCipherPolicy") != settings.https.tls_policy:
        problems.append(
            f"{https.urn}: TLS policy {https.value('tlsCipherPolicy')!r}, expected {settings.https.tls_policy}"
        )
    certificate = by_id.get(https.value("serverCertificateId"))
    if certificate is None or certificate.type != SERVER_CERTIFICATE:
        problems.append(f"{https.urn}: presents no server certificate of this stack")
    elif settings.https.certificate == "cas" and (
        certificate.value("alicloudCertificateId"),
        certificate.value("alicloudCertificateName"),
        certificate.value("alicloudCertificateRegionId"),
    ) != (settings.https.cas_certificate_id, settings.https.cas_certificate_name, settings.https.cas_region):
        problems.append(f"{certificate.urn}: is not the CAS certificate of ha-webapp:https")
    elif settings.https.certificate == "uploaded" and not (
        certificate.is_secret("serverCertificate") and certificate.is_secret("privateKey")
    ):
        problems.append(f"{certificate.urn}: the uploaded certificate and key must be secret inputs")
    redirect = {k: http.value(k) for k in ("listenerForward", "forwardPort", "serverGroupId", "healthCheck")}
    if redirect != {"listenerForward": "on", "forwardPort": 443, "serverGroupId": None, "healthCheck": None}:
        problems.append(f"{http.urn}: must only redirect to 443 (listenerForward on, forwardPort 443), got {redirect}")
    if not http.delete_before_replace:
        problems.append(f"{http.urn}: replacing it on port 80 needs the old listener deleted first")
    return problems


# rule -> (namespace, metric) of its alarm.
ALARM_METRICS = {
    "unhealthyBackend": ("acs_slb_dashboard", "UnhealthyServerCount"),
    "zoneUnhealthy": ("acs_slb_dashboard", "UnhealthyServerCount"),
    "http5xx": ("acs_slb_dashboard", "InstanceStatusCode5xx"),
    "rdsCpu": ("acs_rds_dashboard", "CpuUsage"),
    "rdsStorage": ("acs_rds_dashboard", "DiskUsage"),
    "rdsConnections": ("acs_rds_dashboard", "ConnectionUsage"),
    "appCpu": ("acs_ecs_dashboard", "CPUUtilization"),
}


def alarms_reach_the_contacts(ev: Evaluation) -> list[str]:
    """Every alarm the settings ask for exists, watches this stack's resources, and goes to the stack's contact group,
    which holds every contact of the settings."""
    settings = settings_of(ev)
    by_id, problems = ev.by_id(), []
    groups = ev.of_type(ALARM_GROUP)
    if len(groups) != 1:
        return [f"{ev.stack}: expected one alarm contact group, got {[g.urn for g in groups]}"]
    group = groups[0]
    wanted = {f"ha-webapp-{ev.stack}-{c.name}" for c in settings.alarms.contacts}
    contacts = {c.value("alarmContactName"): c for c in ev.of_type(ALARM_CONTACT)}
    if not wanted <= set(group.value("contacts") or []) or not wanted <= set(contacts):
        problems.append(f"{group.urn}: contacts {group.value('contacts')}, expected {sorted(wanted)}")
    for contact in settings.alarms.contacts:
        resource = contacts.get(f"ha-webapp-{ev.stack}-{contact.name}")
        if resource is not None and resource.value("channelsMail") != contact.email:
            problems.append(f"{resource.urn}: mails {resource.value('channelsMail')}, expected {contact.email}")
    watched = Counter((a.value("project"), a.value("metric")) for a in ev.of_type(ALARM))
    expected = Counter(ALARM_METRICS[rule] for rule in settings.alarms.rules)
    if watched != expected:
        problems.append(
            f"{ev.stack}: alarms watch {sorted(watched.elements())}, expected {sorted(expected.elements())}"
        )
    targets = {"acs_slb_dashboard": {SLB}, "acs_rds_dashboard": {RDS}, "acs_ecs_dashboard": {ECS}}
    for alarm in ev.of_type(ALARM):
        if alarm.value("contactGroups") != [group.value("alarmContactGroupName")]:
            problems.append(f"{alarm.urn}: goes to {alarm.value('contactGroups')}, not the stack's contact group")
        if alarm.value("silenceTime") != settings.alarms.silence_seconds or alarm.value("enabled") is not True:
            problems.append(f"{alarm.urn}: must be enabled with the stack's silence period")
        ids = [d.get("instanceId") for d in json.loads(str(alarm.value("metricDimensions") or "[]"))]
        watched_types = {by_id[i].type for i in ids if i in by_id}
        if not ids or len(watched_types) != 1 or watched_types != targets.get(str(alarm.value("project"))):
            problems.append(f"{alarm.urn}: watches {ids}, not this stack's {alarm.value('project')} resources")
        if alarm.value("metric") == "CPUUtilization" and sorted(ids) != sorted(
            _ids(ev)[s.urn] for s in ev.of_type(ECS)
        ):
            problems.append(f"{alarm.urn}: does not watch every app server")
        levels = [k for k in ("escalationsCritical", "escalationsWarn", "escalationsInfo") if alarm.value(k)]
        if len(levels) != 1:
            problems.append(f"{alarm.urn}: has escalation levels {levels}, expected exactly one")
    return problems


ALL: dict[str, Check] = {
    check.__name__: check
    for check in (
        two_zones,
        servers_in_both_zones,
        rds_multi_zone,
        rds_whitelist_is_app_subnets,
        health_check_on_listener,
        all_servers_behind_slb,
        eip_on_slb,
        slb_pay_by_clcu,
        dns_record_per_stack,
        no_ingress_from_anywhere,
        password_like_inputs_are_secret,
        protection_matches_stack,
        physical_names_carry_stack,
        taggable_resources_tagged,
        nothing_deprecated,
        servers_private_without_password,
        components_own_every_resource,
        exports_complete,
        rollout_zone_by_zone,
        migration_before_zone_a_serves,
        memberships_vary_only_in_their_id,
        image_change_replaces_servers,
        user_data_holds_no_secret,
        servers_read_only_their_secret,
        secret_parameter_needs_no_kms_instance,
        password_parameter_deletion_is_guarded,
        rds_requires_tls,
        https_at_the_edge,
        alarms_reach_the_contacts,
    )
}
