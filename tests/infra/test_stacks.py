"""The real program, evaluated per stack under the mock runtime, holds every invariant of the HA topology.

Each invariant is also run against a deliberately broken copy of a stack and must report it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from infra import user_data
from plan.offline import Evaluation, Resource, evaluate, stack_config
from tests import invariants
from tests.conftest import STACKS
from tests.mutations import changed, plain, without


@pytest.mark.parametrize("check", invariants.ALL.values(), ids=list(invariants.ALL))
@pytest.mark.parametrize("stack", STACKS)
def test_invariant_holds(evaluations: dict[str, Evaluation], stack: str, check: invariants.Check) -> None:
    violations = check(evaluations[stack])
    assert violations == [], "\n".join(violations)


Breaker = Callable[[Evaluation], Evaluation]
BROKEN: list[tuple[str, str, str, Breaker]] = [
    (
        "vswitches-in-one-zone",
        "prod",
        "two_zones",
        lambda ev: changed(ev, "network-vsw-b", {"zoneId": "cn-hangzhou-h"}),
    ),
    (
        "servers-in-one-zone",
        "dev",
        "servers_in_both_zones",
        lambda ev: changed(ev, "app-b1", {"vswitchId": "network-vsw-a-id"}),
    ),
    ("rds-single-zone", "prod", "rds_multi_zone", lambda ev: changed(ev, "database-rds", {"zoneIdSlaveA": None})),
    (
        "rds-vswitches-swapped",
        "prod",
        "rds_multi_zone",
        lambda ev: changed(ev, "database-rds", {"vswitchId": "network-vsw-b-id,network-vsw-a-id"}),
    ),
    ("rds-mysql-5.7", "dev", "rds_multi_zone", lambda ev: changed(ev, "database-rds", {"engineVersion": "5.7"})),
    (
        "rds-whitelist-whole-vpc",
        "prod",
        "rds_whitelist_is_app_subnets",
        lambda ev: changed(ev, "database-rds", {"securityIps": ["10.30.0.0/16"]}),
    ),
    (
        "health-check-on-root",
        "prod",
        "health_check_on_listener",
        lambda ev: changed(ev, "lb-https", {"healthCheckUri": "/"}),
    ),
    (
        "health-check-off",
        "dev",
        "health_check_on_listener",
        lambda ev: changed(ev, "lb-https", {"healthCheck": "off"}),
    ),
    (
        "health-check-port-pinned",
        "prod",
        "health_check_on_listener",
        lambda ev: changed(ev, "lb-https", {"healthCheckConnectPort": 8080}),
    ),
    ("server-not-a-member", "prod", "all_servers_behind_slb", lambda ev: without(ev, "app-a2-member")),
    (
        "group-lists-servers",
        "dev",
        "all_servers_behind_slb",
        lambda ev: changed(ev, "lb-servers", {"servers": [{"serverIds": ["app-a1-id"], "port": 8080}]}),
    ),
    ("eip-on-an-ecs", "prod", "eip_on_slb", lambda ev: changed(ev, "lb-eip-slb", {"instanceType": "EcsInstance"})),
    (
        "eip-rebound-before-unbound",
        "dev",
        "eip_on_slb",
        lambda ev: changed(ev, "lb-eip-slb", delete_before_replace=False),
    ),
    (
        "slb-by-spec",
        "prod",
        "slb_pay_by_clcu",
        lambda ev: changed(ev, "lb-slb", {"instanceChargeType": None, "loadBalancerSpec": "slb.s2.medium"}),
    ),
    ("dev-answers-www", "dev", "dns_record_per_stack", lambda ev: changed(ev, "lb-dns", {"rr": "www"})),
    (
        "app-port-open-to-world",
        "prod",
        "no_ingress_from_anywhere",
        lambda ev: changed(ev, "network-sg-app-from-slb", {"cidrIp": "0.0.0.0/0"}),
    ),
    (
        "app-port-from-vpc",
        "dev",
        "no_ingress_from_anywhere",
        lambda ev: changed(ev, "network-sg-app-from-slb", {"cidrIp": "10.10.0.0/16"}),
    ),
    (
        "parameter-value-in-clear",
        "prod",
        "password_like_inputs_are_secret",
        lambda ev: plain(ev, "database-password-parameter", "value"),
    ),
    (
        "db-password-in-clear",
        "dev",
        "password_like_inputs_are_secret",
        lambda ev: plain(ev, "database-account", "accountPassword"),
    ),
    ("prod-rds-unprotected", "prod", "protection_matches_stack", lambda ev: changed(ev, "database-rds", protect=False)),
    (
        "prod-slb-deletable",
        "prod",
        "protection_matches_stack",
        lambda ev: changed(ev, "lb-slb", {"deleteProtection": "off"}),
    ),
    (
        "dev-eip-protected",
        "dev",
        "protection_matches_stack",
        lambda ev: changed(ev, "lb-eip", {"deletionProtection": True}),
    ),
    (
        "name-without-stack",
        "preprod",
        "physical_names_carry_stack",
        lambda ev: changed(ev, "network-vpc", {"vpcName": "ha-webapp-vpc"}),
    ),
    ("vpc-untagged", "prod", "taggable_resources_tagged", lambda ev: changed(ev, "network-vpc", {"tags": None})),
    (
        "deprecated-input",
        "dev",
        "nothing_deprecated",
        lambda ev: changed(ev, "network-vsw-a", {"availabilityZone": "cn-hangzhou-h"}),
    ),
    (
        "deprecated-resource",
        "dev",
        "nothing_deprecated",
        lambda ev: changed(ev, "lb-slb", type="alicloud:slb/loadBalancer:LoadBalancer"),
    ),
    (
        "server-with-public-ip",
        "prod",
        "servers_private_without_password",
        lambda ev: changed(ev, "app-b2", {"internetMaxBandwidthOut": 5}),
    ),
    (
        "server-with-password",
        "dev",
        "servers_private_without_password",
        lambda ev: changed(ev, "app-a1", {"password": "hunter2"}),
    ),
    (
        "server-outside-components",
        "prod",
        "components_own_every_resource",
        lambda ev: changed(ev, "app-a1", parent=None),
    ),
    (
        "url-not-exported",
        "prod",
        "exports_complete",
        lambda ev: dataclasses.replace(ev, exports={k: v for k, v in ev.exports.items() if k != "url"}),
    ),
    (
        "db-password-export-in-clear",
        "dev",
        "exports_complete",
        lambda ev: dataclasses.replace(ev, secret_exports=set()),
    ),
]


def not_waiting_for(ev: Evaluation, name: str, dependency: str) -> Evaluation:
    resource = next(r for r in ev.resources if r.name == name)
    kept = tuple(d for d in resource.dependencies if not d.endswith(f"::{dependency}"))
    assert kept != resource.dependencies, f"{name} did not depend on {dependency}"
    return changed(ev, name, dependencies=kept)


def without_database_inputs(ev: Evaluation, name: str) -> Evaluation:
    """The step no longer takes the database's and account's outputs, so nothing orders it after them."""
    resource = next(r for r in ev.resources if r.name == name)
    dropped = {u for key in ("databaseName", "databaseUser") for u in resource.property_dependencies.get(key, ())}
    assert dropped, f"{name} took no database outputs"
    links = {k: v for k, v in resource.property_dependencies.items() if k not in ("databaseName", "databaseUser")}
    kept = tuple(d for d in resource.dependencies if d not in dropped)
    return changed(
        ev, name, {"databaseName": None, "databaseUser": None}, dependencies=kept, property_dependencies=links
    )


def runs_migration_on(ev: Evaluation, server: str) -> Evaluation:
    migration = next(r for r in ev.resources if r.name == "app-a-migration")
    target = next(r for r in ev.resources if r.name == server)
    links = {**migration.property_dependencies, "instanceId": (target.urn,)}
    return changed(ev, "app-a-migration", {"instanceId": f"{server}-id"}, property_dependencies=links)


def boot_with(ev: Evaluation, name: str, extra: str) -> Evaluation:
    server = next(r for r in ev.resources if r.name == name)
    text = base64.b64decode(str(server.value("userData"))).decode() + extra
    return changed(ev, name, {"userData": base64.b64encode(text.encode()).decode()})


def with_policy(ev: Evaluation, statement: dict[str, Any]) -> Evaluation:
    return changed(ev, "app-read-secrets", {"policyDocument": json.dumps({"Version": "1", "Statement": [statement]})})


BROKEN += [
    (
        "password-in-user-data",
        "prod",
        "user_data_holds_no_secret",
        lambda ev: boot_with(ev, "app-b1", f"# {ev.exports['db_password']}\n"),
    ),
    (
        "token-in-user-data",
        "dev",
        "user_data_holds_no_secret",
        lambda ev: boot_with(ev, "app-a1", "    GITLAB_TOKEN=glpat-123\n"),
    ),
    (
        "role-reads-every-secret",
        "prod",
        "servers_read_only_their_secret",
        lambda ev: with_policy(
            ev, {"Effect": "Allow", "Action": ["kms:GetSecretValue", "oos:GetSecretParameter"], "Resource": ["*"]}
        ),
    ),
    (
        "role-may-decrypt",
        "dev",
        "servers_read_only_their_secret",
        lambda ev: with_policy(ev, {"Effect": "Allow", "Action": ["kms:*"], "Resource": ["*"]}),
    ),
    ("server-without-role", "prod", "servers_read_only_their_secret", lambda ev: without(ev, "app-b2-role")),
    (
        "role-for-anyone",
        "dev",
        "servers_read_only_their_secret",
        lambda ev: changed(
            ev,
            "app-role",
            {
                "assumeRolePolicyDocument": json.dumps(
                    {
                        "Version": "1",
                        "Statement": [
                            {
                                "Action": "sts:AssumeRole",
                                "Effect": "Allow",
                                "Principal": {"RAM": ["acs:ram::1234567890123456:root"]},
                            }
                        ],
                    }
                )
            },
        ),
    ),
    (
        "password-in-a-kms-secret",
        "dev",
        "secret_parameter_needs_no_kms_instance",
        lambda ev: changed(ev, "database-password-parameter", type="alicloud:kms/secret:Secret"),
    ),
    (
        "parameter-with-a-fixed-name",
        "prod",
        "secret_parameter_needs_no_kms_instance",
        lambda ev: changed(ev, "database-password-parameter", {"secretParameterName": "ha-webapp-prod-db-password"}),
    ),
    # OOS deletes an encrypted parameter at once, with no recovery window: only protect and the order guard it.
    (
        "prod-parameter-unprotected",
        "prod",
        "password_parameter_deletion_is_guarded",
        lambda ev: changed(ev, "database-password-parameter", protect=False),
    ),
    (
        "parameter-deleted-before-its-replacement",
        "dev",
        "password_parameter_deletion_is_guarded",
        lambda ev: changed(ev, "database-password-parameter", delete_before_replace=True),
    ),
    ("rds-tls-optional", "prod", "rds_requires_tls", lambda ev: changed(ev, "database-rds", {"forceEncryption": 0})),
    (
        "rds-tls-by-parameter",
        "dev",
        "rds_requires_tls",
        lambda ev: changed(
            ev,
            "database-rds",
            {"forceEncryption": None, "parameters": [{"name": "require_secure_transport", "value": "ON"}]},
        ),
    ),
    (
        "metadata-without-token",
        "dev",
        "servers_private_without_password",
        lambda ev: changed(ev, "app-a1", {"httpTokens": "optional"}),
    ),
    ("zone-b-does-not-wait", "prod", "rollout_zone_by_zone", lambda ev: not_waiting_for(ev, "app-b2", "app-a-healthy")),
    (
        "gate-before-membership",
        "dev",
        "rollout_zone_by_zone",
        lambda ev: not_waiting_for(ev, "app-a-healthy", "app-a1-member"),
    ),
    (
        "gate-misses-a-server",
        "prod",
        "rollout_zone_by_zone",
        lambda ev: changed(ev, "app-a-healthy", {"serverIds": ["app-a1-id"]}),
    ),
    (
        "gate-asks-another-listener",
        "dev",
        "rollout_zone_by_zone",
        # The HTTP listener only redirects: its backends' health says nothing.
        lambda ev: changed(ev, "app-b-healthy", {"listenerPort": 80}),
    ),
    (
        "membership-removed-first",
        "prod",
        "rollout_zone_by_zone",
        lambda ev: changed(ev, "app-b1-member", delete_before_replace=True),
    ),
    ("no-migration", "dev", "migration_before_zone_a_serves", lambda ev: without(ev, "app-a-migration")),
    (
        "membership-before-migration",
        "prod",
        "migration_before_zone_a_serves",
        lambda ev: not_waiting_for(ev, "app-a2-member", "app-a-migration"),
    ),
    (
        "migration-before-account",
        "preprod",
        "migration_before_zone_a_serves",
        lambda ev: without_database_inputs(ev, "app-a-migration"),
    ),
    (
        "migration-on-zone-b",
        "prod",
        "migration_before_zone_a_serves",
        lambda ev: runs_migration_on(ev, "app-b1"),
    ),
    (
        "membership-weight-tuned",
        "prod",
        "memberships_vary_only_in_their_id",
        lambda ev: changed(ev, "app-a2-member", {"weight": 50}),
    ),
    (
        "image-updated-in-place",
        "dev",
        "image_change_replaces_servers",
        lambda ev: changed(ev, "app-a1", replace_on_changes=("instanceType", "userData")),
    ),
    (
        "server-deletion-protected",
        "prod",
        "image_change_replaces_servers",
        lambda ev: changed(ev, "app-b1", {"deletionProtection": True}),
    ),
]


BROKEN += [
    ("no-redirect", "prod", "https_at_the_edge", lambda ev: changed(ev, "lb-http", {"listenerForward": None})),
    (
        "redirect-elsewhere",
        "dev",
        "https_at_the_edge",
        lambda ev: changed(ev, "lb-http", {"forwardPort": 8443}),
    ),
    (
        "tls-1.0-allowed",
        "prod",
        "https_at_the_edge",
        lambda ev: changed(ev, "lb-https", {"tlsCipherPolicy": "tls_cipher_policy_1_0"}),
    ),
    (
        "tls-policy-default",
        "preprod",
        "https_at_the_edge",
        lambda ev: changed(ev, "lb-https", {"tlsCipherPolicy": None}),
    ),
    ("no-certificate", "prod", "https_at_the_edge", lambda ev: without(ev, "lb-certificate")),
    (
        "other-cas-certificate",
        "dev",
        "https_at_the_edge",
        lambda ev: changed(ev, "lb-certificate", {"alicloudCertificateId": "1"}),
    ),
    ("no-https-listener", "prod", "https_at_the_edge", lambda ev: without(ev, "lb-https")),
    (
        "redirect-replaced-in-place",
        "dev",
        "https_at_the_edge",
        lambda ev: changed(ev, "lb-http", delete_before_replace=False),
    ),
    ("rds-cpu-alarm-removed", "prod", "alarms_reach_the_contacts", lambda ev: without(ev, "alarms-rds-cpu")),
    ("zone-alarm-removed", "dev", "alarms_reach_the_contacts", lambda ev: without(ev, "alarms-zone-unhealthy")),
    (
        "alarm-to-nobody",
        "prod",
        "alarms_reach_the_contacts",
        lambda ev: changed(ev, "alarms-http-5xx", {"contactGroups": ["someone-elses-group"]}),
    ),
    (
        "alarm-on-another-instance",
        "preprod",
        "alarms_reach_the_contacts",
        lambda ev: changed(ev, "alarms-rds-storage", {"metricDimensions": '[{"instanceId": "lb-slb-id"}]'}),
    ),
    (
        "app-cpu-misses-a-server",
        "prod",
        "alarms_reach_the_contacts",
        lambda ev: changed(ev, "alarms-app-cpu", {"metricDimensions": '[{"instanceId": "app-a1-id"}]'}),
    ),
    (
        "contact-missing-from-group",
        "prod",
        "alarms_reach_the_contacts",
        lambda ev: changed(ev, "alarms-group", {"contacts": ["ha-webapp-prod-oncall"]}),
    ),
    (
        "alarm-disabled",
        "dev",
        "alarms_reach_the_contacts",
        lambda ev: changed(ev, "alarms-app-cpu", {"enabled": False}),
    ),
]


def test_every_invariant_has_a_broken_case() -> None:
    assert {case[2] for case in BROKEN} == set(invariants.ALL)


@pytest.mark.parametrize(("stack", "check", "breaker"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_invariant_catches_broken_topology(
    evaluations: dict[str, Evaluation], stack: str, check: str, breaker: Breaker
) -> None:
    assert invariants.ALL[check](breaker(evaluations[stack])), f"{check} did not notice"


def unique_names(evaluations: dict[str, Evaluation]) -> list[str]:
    # One resource may carry a name twice (instance and host name); count resources, not inputs.
    uses = {(r.urn, r.type, name) for ev in evaluations.values() for r, name in invariants.physical_names(ev)}
    names = Counter((type_token, name) for _, type_token, name in uses)
    return [f"{t} name {n!r} is used {c} times across stacks" for (t, n), c in names.items() if c > 1]


def test_physical_names_unique_across_stacks(evaluations: dict[str, Evaluation]) -> None:
    assert unique_names(evaluations) == []
    clash = changed(evaluations["dev"], "network-vpc", {"vpcName": "ha-webapp-prod-vpc"})
    assert unique_names({**evaluations, "dev": clash}), "a shared name went unnoticed"


def boot_document(server: Resource) -> dict[str, Any]:
    text = base64.b64decode(server.value("userData")).decode()
    assert text.startswith("#cloud-config\n")
    return dict(yaml.safe_load(text))


@pytest.mark.parametrize("stack", STACKS)
def test_user_data_hands_the_runtime_settings_to_the_image(evaluations: dict[str, Evaluation], stack: str) -> None:
    ev = evaluations[stack]
    settings = invariants.settings_of(ev)
    documents = [boot_document(s) for s in ev.of_type(invariants.ECS)]
    assert all(d == documents[0] for d in documents), "every server of a stack boots with the same settings"
    (env_file,) = documents[0]["write_files"]
    assert (env_file["path"], env_file["permissions"]) == (user_data.ENV_FILE, "0600")
    assert env_file["content"] == user_data.env_file(
        {
            "APP_ENV": stack,
            "APP_PORT": str(settings.app.port),
            "DB_HOST": ev.exports["db_host"],
            "DB_PORT": ev.exports["db_port"],
            "DB_NAME": settings.database.name,
            "DB_USER": settings.database.user,
            "DB_PASSWORD_PARAMETER": ev.exports["db_password_parameter"],
            "DB_PASSWORD_ROTATION": "1",  # pragma: allowlist secret
            "DB_SSL_MODE": "REQUIRED",
            "ALIBABA_CLOUD_ECS_METADATA": f"ha-webapp-{stack}-app",
            "ALIBABA_CLOUD_IMDSV1_DISABLED": "true",
            "ALIBABA_CLOUD_REGION": settings.region,
        }
    )


@pytest.mark.parametrize("stack", STACKS)
def test_sizes_and_retention_follow_the_stack_file(evaluations: dict[str, Evaluation], stack: str) -> None:
    ev = evaluations[stack]
    settings = invariants.settings_of(ev)
    servers = ev.of_type(invariants.ECS)
    assert len(servers) == 2 * settings.app.servers_per_zone
    assert {s.value("instanceType") for s in servers} == {settings.app.instance_type}
    rds = ev.of_type(invariants.RDS)[0]
    assert (rds.value("instanceType"), rds.value("instanceStorage")) == (
        settings.database.instance_class,
        settings.database.storage_gb,
    )
    (backup,) = ev.of_type(invariants.BACKUP)
    assert backup.value("backupRetentionPeriod") == settings.database.backup_retention_days


def test_the_program_warns_about_nothing(evaluations: dict[str, Evaluation]) -> None:
    assert {s: ev.warnings for s, ev in evaluations.items()} == {s: [] for s in STACKS}


def test_ssh_opens_only_to_a_configured_admin_network(evaluations: dict[str, Evaluation]) -> None:
    def ssh_sources(ev: Evaluation) -> list[str]:
        return [r.value("cidrIp") for r in ev.of_type(invariants.SG_RULE) if r.value("portRange") == "22/22"]

    assert ssh_sources(evaluations["prod"]) == [], "SSH is closed by default"
    network = json.loads(stack_config("prod")[0]["ha-webapp:network"])
    with_admin = evaluate(
        "prod", overrides={"ha-webapp:network": json.dumps({**network, "adminCidr": "203.0.113.0/24"})}
    )
    assert ssh_sources(with_admin) == ["203.0.113.0/24"]
    assert invariants.no_ingress_from_anywhere(with_admin) == []


PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBofflinetestcertificate\n-----END CERTIFICATE-----\n"
PEM_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0\n-----END PRIVATE KEY-----\n"  # pragma: allowlist secret
)
WEBHOOK = (
    "https://oapi.dingtalk.com/robot/send?access_token=0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # pragma: allowlist secret
)


def https_settings(stack: str, **changes: Any) -> str:
    return json.dumps({**json.loads(stack_config(stack)[0]["ha-webapp:https"]), **changes})


def uploaded_certificate(stack: str) -> Evaluation:
    """The stack with a PEM certificate and key uploaded from secrets, and an alarm webhook given as a secret."""
    cas = {"casCertificateId": None, "casCertificateName": None, "casRegion": None}
    https = {k: v for k, v in json.loads(https_settings(stack, certificate="uploaded", **cas)).items() if v is not None}
    return evaluate(
        stack,
        overrides={"ha-webapp:https": json.dumps(https)},
        secrets={
            "ha-webapp:httpsCertificate": PEM_CERTIFICATE,
            "ha-webapp:httpsPrivateKey": PEM_KEY,
            "ha-webapp:alarmWebhookUrl": WEBHOOK,
        },
    )


@pytest.mark.parametrize("stack", STACKS)
def test_an_uploaded_certificate_and_a_webhook_hold_every_invariant(stack: str) -> None:
    ev = uploaded_certificate(stack)
    violations = [v for check in invariants.ALL.values() for v in check(ev)]
    assert violations == []
    (certificate,) = ev.of_type(invariants.SERVER_CERTIFICATE)
    assert certificate.is_secret("privateKey") and certificate.is_secret("serverCertificate")
    (webhook,) = [c for c in ev.of_type(invariants.ALARM_CONTACT) if c.value("channelsDingWebHook")]
    assert webhook.is_secret("channelsDingWebHook")
    assert f"ha-webapp-{stack}-webhook" in next(iter(ev.of_type(invariants.ALARM_GROUP))).value("contacts")


def test_a_stack_that_opts_out_serves_http_only() -> None:
    ev = evaluate("dev", overrides={"ha-webapp:https": json.dumps({"certificate": "none"})})
    assert invariants.https_at_the_edge(ev) == []
    assert ev.exports["url"] == "http://dev.my-sample-domain.xyz"
    (listener,) = ev.of_type(invariants.LISTENER)
    assert (listener.value("protocol"), listener.value("frontendPort"), listener.value("listenerForward")) == (
        "http",
        80,
        "off",
    )
    # The release gates ask the listener that serves: 80 here, 443 with HTTPS.
    assert {g.value("listenerPort") for g in ev.of_type(invariants.HEALTH_GATE)} == {80}


@pytest.mark.parametrize("stack", STACKS)
def test_the_database_is_utf8mb4(evaluations: dict[str, Evaluation], stack: str) -> None:
    """Pinned on purpose against the provider doc's note "utf8mb4 only supports versions 5.5 and 5.6"
    (terraform-provider-alicloud@81c43b6 website/docs/r/db_database.html.markdown l.93), which is stale: the RDS API
    reference of CreateDatabase (alibabacloud.com/help/en/rds/developer-reference/api-rds-2014-08-15-createdatabase) and
    ROS's ALIYUN::RDS::Database list utf8, gbk, latin1 and utf8mb4 for MySQL with no version limit, the provider sends
    CharacterSetName as given (resource_alicloud_db_database.go l.58-80, l.111-113: no validation), and utf8mb4 is
    MySQL 8.0's own default. character_set is ForceNew: "fixing" it to utf8 would replace the database and its data."""
    (database,) = evaluations[stack].of_type(invariants.RDS_DATABASE)
    (instance,) = evaluations[stack].of_type(invariants.RDS)
    assert (instance.value("engine"), instance.value("engineVersion")) == ("MySQL", "8.0")
    assert database.value("characterSet") == "utf8mb4", database.urn
