"""ha-webapp's policy rules for `pulumi preview/up --policy-pack policy`.

Mandatory rules guard what would make a stack unsafe or not highly available (a failed rule stops the update);
advisory rules guard bookkeeping (a warning). The rules read only resource inputs and options, so the tests run them
offline against the resources the mock runtime records.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

VSWITCH = "alicloud:vpc/switch:Switch"
ECS = "alicloud:ecs/instance:Instance"
SG_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
RDS = "alicloud:rds/instance:Instance"
RDS_ACCOUNT = "alicloud:rds/rdsAccount:RdsAccount"
SLB = "alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer"
EIP = "alicloud:ecs/eipAddress:EipAddress"
OOS_PARAMETER = "alicloud:oos/secretParameter:SecretParameter"  # pragma: allowlist secret
LISTENER = "alicloud:slb/listener:Listener"
SERVER_CERTIFICATE = "alicloud:slb/serverCertificate:ServerCertificate"
ALARM = "alicloud:cms/alarm:Alarm"
ALARM_CONTACT = "alicloud:cms/alarmContact:AlarmContact"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"  # pragma: allowlist secret

# Where a secret may legitimately be an input: the account a password opens, the encrypted parameter that hands it
# out, the certificate a private key belongs to, the contact whose webhook URL carries a token.
PASSWORD_HOLDERS = {
    (RDS_ACCOUNT, "accountPassword"),
    (OOS_PARAMETER, "value"),
    (SERVER_CERTIFICATE, "privateKey"),
    (ALARM_CONTACT, "channelsDingWebHook"),
    # The generator's own output, which `pulumi up` shows the pack resolved (in a preview it is still unknown).
    (RANDOM_PASSWORD, "result"),
}
# What holds the program's own values and never reaches a cloud API: the stack's exports and our components' outputs.
# Under `pulumi up` the pack sees them resolved, with their secret marks dropped (pulumi_policy 1.21 hands a stack
# policy its resources' properties unwrapped), so a password kept secret there would read as one in clear; that the
# program keeps them secret is checked without the pack (tests/infra/test_secrets.py).
PROGRAM_OWN_TYPE_PREFIXES = ("pulumi:pulumi:Stack", "ha-webapp:")
# Inputs that would let someone log in to an app server with a password instead of a key pair.
SERVER_PASSWORD_INPUTS = ("password", "kmsEncryptedPassword", "passwordInherit")
# Passwords are at least this long; shorter values (ports, flags) would match by accident.
_MIN_PASSWORD_LENGTH = 8

PROTECTED_STACKS = ("prod",)
# Stacks that must serve HTTPS, with HTTP redirected (the settings refuse `https.certificate: none` there too).
HTTPS_STACKS = ("prod",)
# TLS 1.2 and later (the listener's own default, tls_cipher_policy_1_0, allows TLS 1.0).
MODERN_TLS_POLICIES = ("tls_cipher_policy_1_2", "tls_cipher_policy_1_2_strict", "tls_cipher_policy_1_2_strict_with_1_3")
# The metrics a protected stack must watch: backend health, 5xx, the database's CPU, storage and connections, servers'
# CPU (namespace, metric).
REQUIRED_ALARMS = (
    ("acs_slb_dashboard", "UnhealthyServerCount"),
    ("acs_slb_dashboard", "InstanceStatusCode5xx"),
    ("acs_rds_dashboard", "CpuUsage"),
    ("acs_rds_dashboard", "DiskUsage"),
    ("acs_rds_dashboard", "ConnectionUsage"),
    ("acs_ecs_dashboard", "CPUUtilization"),
)
REQUIRED_TAGS = ("project", "stack")
# Internet ingress is for the load balancer's listeners; nothing else listens to the whole internet.
LISTENER_PORTS = (80, 443)

# What the provider SDK says about the resource types of the services this project uses (deprecated, taggable),
# written by `python -m policy.sdk_facts` from the SDK's own markers; this pack's venv has no SDK, and a test keeps
# the file current.
_FACTS = json.loads((Path(__file__).parent / "sdk_facts.json").read_text(encoding="utf-8"))
DEPRECATED_TYPES: Mapping[str, str] = _FACTS["deprecated"]
TAGGABLE_TYPES: frozenset[str] = frozenset(_FACTS["taggable"])


def stack_of(urn: str) -> str:
    """The stack name in a URN (urn:pulumi:<stack>::<project>::<type>::<name>)."""
    return urn.split("::", 1)[0].rsplit(":", 1)[-1]


def _config(args: Any, key: str, default: Any) -> Any:
    return (args.get_config() or {}).get(key, default)


# --- high availability -------------------------------------------------------------------------------------------


def _two_zones(args: StackValidationArgs, report: ReportViolation) -> None:
    switches = [r for r in args.resources if r.resource_type == VSWITCH]
    zones = {r.props.get("zoneId") for r in switches}
    if len(switches) != 2 or len(zones) != 2:
        report(f"expected two VSwitches in two different zones, found zones {sorted(map(str, zones))}", None)
        return
    zone_of = {r.urn: r.props.get("zoneId") for r in switches}
    serving = set()
    for server in (r for r in args.resources if r.resource_type == ECS):
        vswitches = server.property_dependencies.get("vswitchId", [])
        serving.update(zone_of[v.urn] for v in vswitches if v.urn in zone_of)
    for zone in sorted(map(str, zones - serving)):
        report(f"no app server in zone {zone}: losing the other zone would take the site down", None)


two_zones = StackValidationPolicy(
    name="ha-two-zones",
    description="The stack spans exactly two zones, each with a VSwitch and at least one app server.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_two_zones,
)


def _rds_multi_zone(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RDS:
        return
    props = args.props
    if props.get("category") != "HighAvailability":
        report(f"RDS category is {props.get('category')!r}; expected HighAvailability (primary plus standby)", None)
    primary, standby = props.get("zoneId"), props.get("zoneIdSlaveA")
    if not standby or standby == primary:
        report(f"RDS standby zone {standby!r} must be set and differ from the primary zone {primary!r}", None)
    vswitches = str(props.get("vswitchId") or "").split(",")
    if len([v for v in vswitches if v]) != 2:
        report("RDS vswitchId must name two VSwitches, primary zone first, separated by a comma", None)


rds_multi_zone = ResourceValidationPolicy(
    name="rds-multi-zone",
    description="The database has a standby in a second zone, on its own VSwitch.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_rds_multi_zone,
)


# --- network exposure ----------------------------------------------------------------------------------------------


def _ports(port_range: str) -> range:
    start, _, end = port_range.partition("/")
    low, high = int(start), int(end or start)
    return range(low, high + 1) if low > 0 else range(1, 65536)  # "-1/-1" means every port


def _no_internet_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SG_RULE or args.props.get("type") != "ingress":
        return
    source = args.props.get("cidrIp") or args.props.get("ipv6CidrIp")
    if not source or ipaddress.ip_network(source, strict=False).prefixlen != 0:
        return
    allowed = set(_config(args, "listenerPorts", LISTENER_PORTS))
    ports = _ports(str(args.props.get("portRange") or "-1/-1"))
    if not set(ports) <= allowed:
        report(f"ingress from {source} on ports {args.props.get('portRange')}: only {sorted(allowed)} may be", None)


no_internet_ingress = ResourceValidationPolicy(
    name="no-internet-ingress",
    description="No security group admits the whole internet, except on the load balancer's listener ports.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_internet_ingress,
)


def _servers_private(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ECS:
        return
    if (args.props.get("internetMaxBandwidthOut") or 0) > 0:
        report("app servers get no public address; traffic comes through the load balancer", None)


servers_private = ResourceValidationPolicy(
    name="app-servers-private",
    description="App servers have no public IP address.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_servers_private,
)


# What launches an ECS instance and carries its metadata options, each with the SDK 4.0.0 input `http_tokens`
# (pulumi_alicloud/ecs/instance.py, ecs_launch_template.py, launch_template.py; provider docs/r/instance: "required:
# forcefully uses the security-enhanced mode (IMDSv2)", default "optional").
METADATA_OPTION_HOLDERS = (
    ECS,
    "alicloud:ecs/ecsLaunchTemplate:EcsLaunchTemplate",
    "alicloud:ecs/launchTemplate:LaunchTemplate",
)


def _metadata_token_required(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in METADATA_OPTION_HOLDERS:
        return
    tokens = args.props.get("httpTokens")
    if tokens != "required":
        report(
            f"httpTokens is {tokens!r}; expected 'required' (metadata only with a session token): in the default "
            "'optional' mode one forged request from the app reads the server's RAM role credentials",
            None,
        )


metadata_token_required = ResourceValidationPolicy(
    name="ecs-metadata-token-required",
    description="ECS instances (and launch templates) answer instance metadata only with a session token (IMDSv2).",
    # Mandatory: the servers' RAM role reads the database password; its credentials are on the metadata service.
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_metadata_token_required,
)


def _rds_not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RDS:
        return
    for entry in args.props.get("securityIps") or []:
        network = ipaddress.ip_network(str(entry), strict=False)
        if not network.is_private:
            report(f"RDS whitelist entry {entry} is not a private range; only the app subnets may connect", None)


rds_not_public = ResourceValidationPolicy(
    name="rds-private-whitelist",
    description="The database whitelist holds private ranges only.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_rds_not_public,
)


# --- secrets -------------------------------------------------------------------------------------------------------


def _strings(value: Any) -> Iterable[str]:
    """Every string in a property value, plus the decoded text of base64 strings (user data is base64)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value
        try:
            decoded: str | None = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = None
        if decoded is not None:
            yield decoded


def _no_plaintext_passwords(args: StackValidationArgs, report: ReportViolation) -> None:
    # Every holder of each password: one password is held by several (the generator, the account, the parameter), and
    # the engine's resource order varies, so the message names them all, sorted.
    passwords: dict[str, set[str]] = {}
    for r in args.resources:
        for type_token, key in PASSWORD_HOLDERS:
            value = r.props.get(key) if r.resource_type == type_token else None
            if isinstance(value, str) and len(value) >= _MIN_PASSWORD_LENGTH:
                passwords.setdefault(value, set()).add(f"{r.name}.{key}")
    for r in args.resources:
        if r.resource_type == ECS:
            for key in SERVER_PASSWORD_INPUTS:
                if r.props.get(key):
                    report(f"{r.name}: {key} allows password login to an app server; use a key pair or none", r.urn)
        if r.resource_type.startswith(PROGRAM_OWN_TYPE_PREFIXES):
            continue
        for key, value in r.props.items():
            if (r.resource_type, key) in PASSWORD_HOLDERS:
                continue
            for text in _strings(value):
                for password, holders in passwords.items():
                    if password in text:
                        report(f"{r.name}.{key} contains the password of {', '.join(sorted(holders))} in clear", r.urn)


no_plaintext_passwords = StackValidationPolicy(
    name="no-plaintext-passwords",
    description=(
        "Passwords appear only where they are used (the database account, the OOS encrypted parameter), never in "
        "user data, tags or other inputs, and app servers have no login password."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_plaintext_passwords,
)


# --- protection ----------------------------------------------------------------------------------------------------

# Resource type -> (deletion protection input, the value that means "on").
_PROTECTION = {RDS: ("deletionProtection", True), SLB: ("deleteProtection", "on"), EIP: ("deletionProtection", True)}


def _prod_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in _PROTECTION:
        return
    stack = stack_of(args.urn)
    if stack not in _config(args, "protectedStacks", PROTECTED_STACKS):
        return
    key, on = _PROTECTION[args.resource_type]
    if args.props.get(key) != on:
        report(f"{key} must be {on!r} on stack {stack}", None)
    if not args.opts.protect:
        report(f"Pulumi `protect` must be set on stack {stack}", None)


prod_deletion_protection = ResourceValidationPolicy(
    name="prod-deletion-protection",
    description="On protected stacks the database, load balancer and EIP carry deletion protection and `protect`.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_prod_protection,
)


# --- the edge and alarms ------------------------------------------------------------------------------------------


def _modern_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != LISTENER or args.props.get("protocol") != "https":
        return
    policy = args.props.get("tlsCipherPolicy")
    if policy not in _config(args, "tlsPolicies", MODERN_TLS_POLICIES):
        report(
            f"HTTPS listener TLS policy {policy!r} allows TLS before 1.2; expected one of {MODERN_TLS_POLICIES}", None
        )


modern_tls = ResourceValidationPolicy(
    name="https-modern-tls",
    description="Every HTTPS listener sets a TLS 1.2+ policy (the listener's default allows TLS 1.0).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_modern_tls,
)


def _https_required(args: StackValidationArgs, report: ReportViolation) -> None:
    listeners = [r for r in args.resources if r.resource_type == LISTENER]
    if not listeners or stack_of(listeners[0].urn) not in _config(args, "httpsStacks", HTTPS_STACKS):
        return
    https = [r for r in listeners if r.props.get("protocol") == "https"]
    if not https:
        report(f"stack {stack_of(listeners[0].urn)} must serve HTTPS: no HTTPS listener", None)
        return
    for listener in https:
        certificates = listener.property_dependencies.get("serverCertificateId", [])
        if not listener.props.get("serverCertificateId") and not certificates:
            report(f"{listener.name}: HTTPS listener without a server certificate", listener.urn)
    ports = {r.props.get("frontendPort") for r in https}
    for listener in (r for r in listeners if r.props.get("protocol") == "http"):
        if listener.props.get("listenerForward") != "on" or listener.props.get("forwardPort") not in ports:
            report(f"{listener.name}: HTTP must redirect to the HTTPS listener (listenerForward on)", listener.urn)


https_required = StackValidationPolicy(
    name="https-required",
    description="On the HTTPS stacks (prod) the SLB serves HTTPS with a certificate and HTTP redirects to it.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_https_required,
)


def _alarms_watch_the_stack(args: StackValidationArgs, report: ReportViolation) -> None:
    stacks = {stack_of(r.urn) for r in args.resources}
    if not stacks & set(_config(args, "protectedStacks", PROTECTED_STACKS)):
        return
    alarms = [r for r in args.resources if r.resource_type == ALARM and r.props.get("enabled", True)]
    watched = {(r.props.get("project"), r.props.get("metric")) for r in alarms if r.props.get("contactGroups")}
    for namespace, metric in REQUIRED_ALARMS:
        if (namespace, metric) not in watched:
            report(f"no enabled alarm with a contact group watches {namespace} {metric}", None)


alarms_watch_the_stack = StackValidationPolicy(
    name="alarms-watch-the-stack",
    description="Protected stacks have enabled alarms, sent to a contact group, on backend health, 5xx, RDS CPU, "
    "storage and connections, and the app servers' CPU.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_alarms_watch_the_stack,
)


# --- hygiene -------------------------------------------------------------------------------------------------------


def _no_deprecated(args: ResourceValidationArgs, report: ReportViolation) -> None:
    reason = DEPRECATED_TYPES.get(args.resource_type)
    if reason:
        report(f"{args.resource_type} is deprecated: {reason}", None)


no_deprecated_resources = ResourceValidationPolicy(
    name="no-deprecated-resources",
    description="No resource type the provider SDK marks deprecated.",
    # Mandatory: a deprecated resource is one the provider may drop, and its replacement usually manages state
    # differently, so it is cheaper to refuse it than to migrate it later.
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_deprecated,
)


def _required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in TAGGABLE_TYPES:
        return
    tags = args.props.get("tags") or {}
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        report(f"tags {sorted(tags)} lack {missing}", None)
    elif tags.get("stack") != stack_of(args.urn):
        report(f"tag stack={tags.get('stack')!r} but the resource belongs to stack {stack_of(args.urn)!r}", None)


required_tags = ResourceValidationPolicy(
    name="required-tags",
    description="Taggable resources carry the project and stack tags.",
    # Advisory: tags drive cost reports and clean-up, not safety; a missing tag should not block a fix at 3 am.
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_required_tags,
)

ALL = [
    two_zones,
    rds_multi_zone,
    no_internet_ingress,
    servers_private,
    metadata_token_required,
    rds_not_public,
    no_plaintext_passwords,
    prod_deletion_protection,
    modern_tls,
    https_required,
    alarms_watch_the_stack,
    no_deprecated_resources,
    required_tags,
]
