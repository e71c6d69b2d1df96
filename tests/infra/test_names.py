"""Every name and description the program sends is inside the character set and length the API documents for it.

The mocks accept any string; the cloud does not (a listener description with a space, an account description with
parentheses). The rules are the provider's documentation, aliyun/terraform-provider-alicloud at 81c43b6
(website/docs/r/<resource>.html.markdown, the argument's line), unless noted. Where the provider documents no set,
the rule is a conservative one (letters, digits, `.`, `_`, `-`, starting with a letter) so that nothing relies on an
undocumented character.
"""

from __future__ import annotations

import re

import pytest

from plan.offline import Evaluation
from tests.conftest import STACKS
from tests.mutations import changed

_NOT_A_URL = r"(?!https?://)"
# Letters, digits, `.`, `_`, `-`, starting with a letter: used where the provider documents no character set.
_CONSERVATIVE = r"[A-Za-z][A-Za-z0-9._-]"

# (type token, input) -> (pattern the whole value must match, where the rule is written)
RULES: dict[tuple[str, str], tuple[str, str]] = {
    ("alicloud:vpc/network:Network", "vpcName"): (rf"{_NOT_A_URL}.{{1,128}}", "vpc.html.markdown vpc_name"),
    ("alicloud:vpc/network:Network", "description"): (rf"{_NOT_A_URL}.{{1,256}}", "vpc / vswitch description"),
    ("alicloud:vpc/switch:Switch", "vswitchName"): (rf"{_NOT_A_URL}.{{1,128}}", "vswitch.html.markdown l.136"),
    ("alicloud:ecs/securityGroup:SecurityGroup", "securityGroupName"): (
        r"[A-Za-z][A-Za-z0-9:_.-]{1,127}",
        "security_group.html.markdown l.74",
    ),
    ("alicloud:ecs/securityGroup:SecurityGroup", "description"): (
        rf"{_NOT_A_URL}.{{2,256}}",
        "security_group.html.markdown l.69",
    ),
    ("alicloud:ecs/securityGroupRule:SecurityGroupRule", "description"): (
        r".{1,512}",
        "security_group_rule.html.markdown l.75",
    ),
    ("alicloud:ecs/eipAddress:EipAddress", "addressName"): (f"{_CONSERVATIVE}{{1,127}}", "undocumented: conservative"),
    ("alicloud:ecs/eipAddress:EipAddress", "description"): (f"{_CONSERVATIVE}{{1,255}}", "undocumented: conservative"),
    ("alicloud:ram/role:Role", "roleName"): (r"[A-Za-z0-9.-]{1,64}", "RAM CreateRole API (not in the provider docs)"),
    ("alicloud:ram/role:Role", "description"): (r".{1,1024}", "ram_role.html.markdown l.68"),
    ("alicloud:ram/policy:Policy", "policyName"): (r"[A-Za-z0-9-]{1,128}", "ram_policy.html.markdown l.73"),
    ("alicloud:ram/policy:Policy", "description"): (r".{1,1024}", "ram_policy.html.markdown l.71"),
    ("alicloud:dns/alidnsRecord:AlidnsRecord", "remark"): (f"{_CONSERVATIVE}{{1,255}}", "undocumented: conservative"),
    ("alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer", "loadBalancerName"): (
        r"[A-Za-z0-9/._](?:[A-Za-z0-9/._-]{0,78}[A-Za-z0-9/._])?",
        "slb_load_balancer.html.markdown l.74-75",
    ),
    ("alicloud:slb/serverGroup:ServerGroup", "name"): (f"{_CONSERVATIVE}{{1,79}}", "undocumented: conservative"),
    ("alicloud:slb/listener:Listener", "description"): (r"[A-Za-z0-9/._-]{1,256}", "slb_listener.html.markdown l.151"),
    ("alicloud:rds/instance:Instance", "instanceName"): (r".{2,256}", "db_instance.html.markdown l.596"),
    ("alicloud:rds/rdsAccount:RdsAccount", "accountDescription"): (
        r"[A-Za-z][A-Za-z0-9_-]{1,255}",
        "rds_account.html.markdown l.88",
    ),
    ("alicloud:rds/database:Database", "description"): (
        rf"{_NOT_A_URL}[A-Za-z][A-Za-z0-9_-]{{1,255}}",
        "db_database.html.markdown l.102 (and ROS ALIYUN::RDS::Database DBDescription)",
    ),
    ("alicloud:ecs/instance:Instance", "instanceName"): (
        r"[A-Za-z0-9._][A-Za-z0-9._-]{1,127}",
        "instance.html.markdown l.125",
    ),
    ("alicloud:ecs/instance:Instance", "hostName"): (
        r"(?!.*[.-]{2})[A-Za-z0-9][A-Za-z0-9._-]{0,62}[A-Za-z0-9]",
        "instance.html.markdown l.145-146 (Linux)",
    ),
    ("alicloud:oos/secretParameter:SecretParameter", "secretParameterName"): (
        r"(?!(?i:aliyun|acs|alibaba|alicloud|oos))[A-Za-z0-9/_-]{2,180}",
        "oos_secret_parameter.html.markdown (secret_parameter_name)",
    ),
    ("alicloud:oos/secretParameter:SecretParameter", "description"): (
        r".{1,200}",
        "oos_secret_parameter.html.markdown (description)",
    ),
    ("alicloud:slb/serverCertificate:ServerCertificate", "name"): (
        r"[A-Za-z0-9/._-]{1,80}",
        "CLB API UploadServerCertificate, ServerCertificateName (1-80 characters; the provider documents none)",
    ),
    ("alicloud:cms/alarmContact:AlarmContact", "alarmContactName"): (
        f"{_CONSERVATIVE}{{1,39}}",
        "cms_alarm_contact.html.markdown alarm_contact_name (2-40 characters; set undocumented: conservative)",
    ),
    ("alicloud:cms/alarmContactGroup:AlarmContactGroup", "alarmContactGroupName"): (
        f"{_CONSERVATIVE}{{1,39}}",
        "undocumented: conservative",
    ),
    ("alicloud:cms/alarm:Alarm", "name"): (f"{_CONSERVATIVE}{{1,63}}", "undocumented: conservative"),
}
# Inputs that name something checked elsewhere (the settings model) or refer to a resource created here.
NOT_NAMES = {
    ("alicloud:rds/rdsAccount:RdsAccount", "accountName"),
    ("alicloud:rds/database:Database", "dataBaseName"),
    ("alicloud:rds/accountPrivilege:AccountPrivilege", "accountName"),
    ("alicloud:dns/alidnsRecord:AlidnsRecord", "domainName"),
    ("alicloud:ram/rolePolicyAttachment:RolePolicyAttachment", "roleName"),
    ("alicloud:ram/rolePolicyAttachment:RolePolicyAttachment", "policyName"),
    ("alicloud:ecs/ramRoleAttachment:RamRoleAttachment", "ramRoleName"),
    # The CAS certificate's name, as CAS knows it (checked by the settings model).
    ("alicloud:slb/serverCertificate:ServerCertificate", "alicloudCertificateName"),
    # The schema migration takes the database's outputs only to wait for them; it sends them to no API.
    ("pulumi-python:dynamic/ecs:SchemaMigration", "databaseName"),
}
_NAME_LIKE = re.compile(r"(?i)(name|description|remark)$")


def name_problems(ev: Evaluation) -> list[str]:
    problems = []
    for r in ev.resources:
        for key in r.inputs:
            if not _NAME_LIKE.search(key) or (r.type, key) in NOT_NAMES:
                continue
            value = r.value(key)
            if (r.type, key) not in RULES:
                problems.append(f"{r.urn}: {key}={value!r} has no documented rule here; add it to RULES")
                continue
            pattern, source = RULES[(r.type, key)]
            if not isinstance(value, str) or not re.fullmatch(pattern, value, re.S):
                problems.append(f"{r.urn}: {key}={value!r} is outside the documented set ({source}: {pattern})")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_name_and_description_is_in_its_documented_set(evaluations: dict[str, Evaluation], stack: str) -> None:
    assert name_problems(evaluations[stack]) == []


@pytest.mark.parametrize(
    ("resource", "key", "value"),
    [
        ("lb-http", "description", "ha-webapp-dev HTTP"),  # a space
        ("database-account", "accountDescription", "Application account (ReadWrite)"),  # spaces, parentheses
        ("database-db", "description", "ha-webapp-dev application data"),  # spaces
        ("lb-slb", "loadBalancerName", "-ha-webapp-dev-slb"),  # begins with a hyphen
    ],
)
def test_a_value_outside_its_set_is_found(
    evaluations: dict[str, Evaluation], resource: str, key: str, value: str
) -> None:
    assert name_problems(changed(evaluations["dev"], resource, {key: value}))


def test_a_new_unruled_name_is_found(evaluations: dict[str, Evaluation]) -> None:
    assert name_problems(changed(evaluations["dev"], "lb-servers", {"description": "x"}))
