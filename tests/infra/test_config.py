"""Settings validation: a table of good and bad stack settings, each bad one named by its key."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pulumi
import pytest

from infra.config import Settings, SettingsError, parse_settings
from plan import offline
from plan.offline import stack_config

PROJECT = "ha-webapp"
DELETE = object()

BASE: dict[str, Any] = {
    "alicloud:region": "cn-hangzhou",
    "ha-webapp:imageId": "m-bp1g7004ksh0oeuc1ne8",
    "ha-webapp:network": {
        "vpcCidr": "10.30.0.0/16",
        "zones": [
            {"id": "cn-hangzhou-h", "vswitchCidr": "10.30.1.0/24"},
            {"id": "cn-hangzhou-i", "vswitchCidr": "10.30.2.0/24"},
        ],
    },
    "ha-webapp:app": {"instanceType": "ecs.g7.large"},
    "ha-webapp:database": {"instanceClass": "mysql.n2.medium.2c"},
    "ha-webapp:https": {
        "certificate": "cas",
        "casCertificateId": "7751234",
        "casCertificateName": "www-example-com",
        "casRegion": "cn-hangzhou",
    },
    "ha-webapp:alarms": {"contacts": [{"name": "oncall", "email": "oncall@example.com"}]},
}
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def settings_with(changes: dict[str, Any]) -> dict[str, str]:
    """BASE with `changes` applied ("ha-webapp:network.zones[1].id" paths), as Pulumi would pass it."""
    config = copy.deepcopy(BASE)
    for path, value in changes.items():
        top, _, rest = path.partition(".") if not path.startswith("alicloud:") else (path, "", "")
        parts = [top] + [p for p in re.split(r"\.|\[(\d+)\]", rest) if p]
        target: Any = config
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last: Any = int(parts[-1]) if isinstance(target, list) else parts[-1]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def parse(changes: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> Settings:
    return parse_settings(PROJECT, "prod", settings_with(changes), secret_keys)


UPLOADED = {"certificate": "uploaded"}
SECRETS = ("ha-webapp:httpsCertificate", "ha-webapp:httpsPrivateKey")


BAD = [
    # (id, changes, key named in the error, what the error says)
    ("cidr-malformed", {"ha-webapp:network.vpcCidr": "10.30.0.0/33"}, "ha-webapp:network.vpcCidr", "CIDR"),
    ("cidr-host-bits", {"ha-webapp:network.zones[0].vswitchCidr": "10.30.1.5/24"}, "zones[0].vswitchCidr", "host bits"),
    ("vpc-public-range", {"ha-webapp:network.vpcCidr": "8.8.0.0/16"}, "ha-webapp:network.vpcCidr", "private range"),
    ("vpc-too-small", {"ha-webapp:network.vpcCidr": "10.30.0.0/28"}, "ha-webapp:network.vpcCidr", "/8 and /24"),
    (
        "vswitch-outside-vpc",
        {"ha-webapp:network.zones[1].vswitchCidr": "10.99.2.0/24"},
        "ha-webapp:network.zones[1].vswitchCidr",
        "not inside the VPC",
    ),
    (
        "vswitches-overlap",
        {"ha-webapp:network.zones[1].vswitchCidr": "10.30.1.128/25"},
        "ha-webapp:network.zones[1].vswitchCidr",
        "overlaps zones[0]",
    ),
    (
        "one-zone",
        {"ha-webapp:network.zones": [{"id": "cn-hangzhou-h", "vswitchCidr": "10.30.1.0/24"}]},
        "ha-webapp:network.zones",
        "at least 2",
    ),
    (
        "three-zones",
        {
            "ha-webapp:network.zones": [
                {"id": f"cn-hangzhou-{z}", "vswitchCidr": f"10.30.{i}.0/24"} for i, z in enumerate("hij", 1)
            ]
        },
        "ha-webapp:network.zones",
        "at most 2",
    ),
    ("same-zone-twice", {"ha-webapp:network.zones[1].id": "cn-hangzhou-h"}, "zones[1].id", "two different zones"),
    ("zone-not-in-region", {"ha-webapp:network.zones[1].id": "cn-shanghai-b"}, "zones[1].id", "not in region"),
    ("admin-cidr-world", {"ha-webapp:network.adminCidr": "0.0.0.0/0"}, "ha-webapp:network.adminCidr", "at most a /16"),
    ("image-id-malformed", {"ha-webapp:imageId": "ami-0abcdef1234567890"}, "ha-webapp:imageId", "custom image ID"),
    ("image-id-missing", {"ha-webapp:imageId": DELETE}, "ha-webapp:imageId", "required"),
    ("instance-type-malformed", {"ha-webapp:app.instanceType": "g7.large"}, "ha-webapp:app.instanceType", "ecs."),
    ("db-class-malformed", {"ha-webapp:database.instanceClass": "db.t3.micro"}, "database.instanceClass", "MySQL"),
    ("storage-below-minimum", {"ha-webapp:database.storageGb": 10}, "ha-webapp:database.storageGb", "20"),
    ("storage-off-step", {"ha-webapp:database.storageGb": 23}, "ha-webapp:database.storageGb", "multiple of 5"),
    ("zero-servers", {"ha-webapp:app.serversPerZone": 0}, "ha-webapp:app.serversPerZone", "greater than or equal"),
    ("too-many-servers", {"ha-webapp:app.serversPerZone": 51}, "ha-webapp:app.serversPerZone", "less than or equal"),
    ("port-out-of-range", {"ha-webapp:app.port": 70000}, "ha-webapp:app.port", "65535"),
    ("port-zero", {"ha-webapp:app.port": 0}, "ha-webapp:app.port", "greater than or equal to 1"),
    ("health-path-relative", {"ha-webapp:app.healthCheckPath": "health"}, "app.healthCheckPath", "starting with '/'"),
    (
        "domain-invalid",
        {"ha-webapp:dns": {"domain": "not a domain", "subDomain": "www"}},
        "ha-webapp:dns.domain",
        "domain name",
    ),
    (
        "subdomain-invalid",
        {"ha-webapp:dns": {"domain": "example.com", "subDomain": "Www!"}},
        "ha-webapp:dns.subDomain",
        "DNS label",
    ),
    ("subdomain-missing", {"ha-webapp:dns": {"domain": "example.com"}}, "ha-webapp:dns.subDomain", "required"),
    ("retention-too-short", {"ha-webapp:database.backupRetentionDays": 3}, "backupRetentionDays", "greater than"),
    ("retention-too-long", {"ha-webapp:database.backupRetentionDays": 1000}, "backupRetentionDays", "less than"),
    ("unknown-key", {"ha-webapp:imagId": "m-bp1g7004ksh0oeuc1ne8"}, "ha-webapp:imagId", "unknown key"),
    ("unknown-nested-key", {"ha-webapp:app.instancetype": "ecs.g7.large"}, "ha-webapp:app.instancetype", "unknown"),
    ("wrong-type-count", {"ha-webapp:app.serversPerZone": "two"}, "ha-webapp:app.serversPerZone", "valid integer"),
    ("wrong-type-bool", {"ha-webapp:protect": "maybe"}, "ha-webapp:protect", "valid boolean"),
    ("section-not-object", {"ha-webapp:network": "10.30.0.0/16"}, "ha-webapp:network", "object"),
    ("section-missing", {"ha-webapp:database": DELETE}, "ha-webapp:database", "required"),
    ("region-missing", {"alicloud:region": DELETE}, "alicloud:region", "required"),
    ("region-malformed", {"alicloud:region": "Hangzhou"}, "alicloud:region", "region ID"),
    ("db-user-reserved", {"ha-webapp:database.user": "root"}, "ha-webapp:database.user", "reserved"),
    ("key-pair-malformed", {"ha-webapp:app.keyPairName": "1 key"}, "ha-webapp:app.keyPairName", "key pair"),
    # Pay-by-spec CLBs cannot be bought since 2025-06-01; the SLB is PayByCLCU and the spec is gone.
    ("slb-spec-retired", {"ha-webapp:loadBalancer": {"spec": "slb.s2.small"}}, "loadBalancer.spec", "pay-by-CLCU"),
    ("eip-bandwidth-zero", {"ha-webapp:loadBalancer": {"eipBandwidthMbps": 0}}, "eipBandwidthMbps", "greater"),
    ("gate-timeout-too-short", {"ha-webapp:app.healthGateTimeoutSeconds": 5}, "healthGateTimeoutSeconds", "60"),
    ("migration-timeout-too-short", {"ha-webapp:app.migrationTimeoutSeconds": 30}, "migrationTimeoutSeconds", "60"),
    # The stack's update lock is held while the migration runs: more than 6 hours is a mistake, not a big table.
    (
        "migration-timeout-too-long",
        {"ha-webapp:app.migrationTimeoutSeconds": 86400},
        "migrationTimeoutSeconds",
        "21600",
    ),
    ("allow-replacement-not-bool", {"ha-webapp:allowReplacement": "sometimes"}, "allowReplacement", "boolean"),
    ("allow-health-check-change-not-bool", {"ha-webapp:allowHealthCheckChange": "1"}, "allowHealthCheck", "boolean"),
    # The app runs as an unprivileged user: no port below 1024, and never SSH's.
    ("port-privileged", {"ha-webapp:app.port": 80}, "ha-webapp:app.port", "1024"),
    ("port-just-below-1024", {"ha-webapp:app.port": 1023}, "ha-webapp:app.port", "1024"),
    (
        "port-ssh-with-ssh-open",
        {"ha-webapp:app.port": 22, "ha-webapp:network.adminCidr": "203.0.113.0/24"},
        "ha-webapp:app.port",
        "SSH",
    ),
    # Strict types: nothing is coerced.
    ("count-bool", {"ha-webapp:app.serversPerZone": True}, "ha-webapp:app.serversPerZone", "valid integer"),
    ("count-float", {"ha-webapp:app.serversPerZone": 2.0}, "ha-webapp:app.serversPerZone", "valid integer"),
    ("count-string", {"ha-webapp:app.serversPerZone": "2"}, "ha-webapp:app.serversPerZone", "valid integer"),
    ("size-string", {"ha-webapp:database.storageGb": "25"}, "ha-webapp:database.storageGb", "valid integer"),
    ("protect-yes", {"ha-webapp:protect": "yes"}, "ha-webapp:protect", "valid boolean"),
    ("protect-one", {"ha-webapp:protect": "1"}, "ha-webapp:protect", "valid boolean"),
    # Zone IDs are the region plus a letter, with the dash when the region ends in a letter.
    ("zone-without-dash", {"ha-webapp:network.zones[1].id": "cn-hangzhoui"}, "zones[1].id", "zone ID"),
    (
        "zone-dash-after-number",
        {
            "alicloud:region": "ap-southeast-1",
            "ha-webapp:network.zones[0].id": "ap-southeast-1a",
            "ha-webapp:network.zones[1].id": "ap-southeast-1-b",
        },
        "zones[1].id",
        "zone ID",
    ),
    ("zone-empty", {"ha-webapp:network.zones[0].id": ""}, "zones[0].id", "zone ID"),
    # The admin network: at most a /16, and a range operators can connect from.
    ("admin-cidr-slash-15", {"ha-webapp:network.adminCidr": "198.50.0.0/15"}, "network.adminCidr", "at most a /16"),
    ("admin-cidr-zero-network", {"ha-webapp:network.adminCidr": "0.0.0.0/16"}, "network.adminCidr", "routable"),
    ("admin-cidr-zero-host", {"ha-webapp:network.adminCidr": "0.0.0.0/32"}, "network.adminCidr", "routable"),
    ("admin-cidr-loopback", {"ha-webapp:network.adminCidr": "127.0.0.0/24"}, "network.adminCidr", "routable"),
    ("admin-cidr-multicast", {"ha-webapp:network.adminCidr": "224.0.0.0/24"}, "network.adminCidr", "routable"),
    ("admin-cidr-reserved", {"ha-webapp:network.adminCidr": "240.0.0.0/24"}, "network.adminCidr", "reserved"),
    # Names RDS for MySQL refuses (its forbidden keywords and MySQL's system schemas).
    ("db-name-mysql", {"ha-webapp:database.name": "mysql"}, "ha-webapp:database.name", "reserved"),
    ("db-name-test", {"ha-webapp:database.name": "test"}, "ha-webapp:database.name", "reserved"),
    ("db-name-keyword", {"ha-webapp:database.name": "select"}, "ha-webapp:database.name", "reserved"),
    ("db-name-schema", {"ha-webapp:database.name": "information_schema"}, "ha-webapp:database.name", "reserved"),
    ("db-name-sys", {"ha-webapp:database.name": "sys"}, "ha-webapp:database.name", "reserved"),
    ("db-user-keyword", {"ha-webapp:database.user": "guest"}, "ha-webapp:database.user", "reserved"),
    # Every key of every namespace is known or refused.
    ("namespace-typo", {"ha-webap:protect": "true"}, "ha-webap:protect", "unknown namespace"),
    ("provider-key-typo", {"alicloud:regoin": "cn-hangzhou"}, "alicloud:regoin", "unknown key"),
    ("unused-provider", {"random:seed": "1"}, "random:seed", "unknown namespace"),
    ("no-namespace", {"imageId": "m-bp1g7004ksh0oeuc1ne8"}, "imageId", "namespace"),
    ("credential-in-stack-file", {"alicloud:accessKey": "LTAI-example"}, "alicloud:accessKey", "credential"),
    ("provider-bool", {"alicloud:skipRegionValidation": "maybe"}, "alicloud:skipRegionValidation", "boolean"),
    ("provider-int", {"alicloud:maxRetryTimeout": "soon"}, "alicloud:maxRetryTimeout", "integer"),
    # HTTPS: explicit, complete, and never off on prod.
    ("https-missing", {"ha-webapp:https": DELETE}, "ha-webapp:https", "required"),
    ("prod-http-only", {"ha-webapp:https": {"certificate": "none"}}, "ha-webapp:https.certificate", "must serve HTTPS"),
    ("https-certificate-unknown", {"ha-webapp:https.certificate": "letsencrypt"}, "https.certificate", "'cas'"),
    ("cas-id-missing", {"ha-webapp:https.casCertificateId": DELETE}, "https.casCertificateId", "required when"),
    ("cas-name-missing", {"ha-webapp:https.casCertificateName": DELETE}, "https.casCertificateName", "required"),
    ("cas-id-malformed", {"ha-webapp:https.casCertificateId": "cert-1"}, "https.casCertificateId", "digits"),
    ("cas-id-a-number", {"ha-webapp:https.casCertificateId": 7751234}, "https.casCertificateId", "valid string"),
    ("tls-1.0", {"ha-webapp:https.tlsPolicy": "tls_cipher_policy_1_0"}, "ha-webapp:https.tlsPolicy", "1_2"),
    ("tls-1.1", {"ha-webapp:https.tlsPolicy": "tls_cipher_policy_1_1"}, "ha-webapp:https.tlsPolicy", "1_2"),
    (
        "cas-fields-with-upload",
        {"ha-webapp:https.certificate": "uploaded"},
        "ha-webapp:https.casCertificateId",
        "only used when",
    ),
    ("uploaded-without-pem", {"ha-webapp:https": UPLOADED}, "ha-webapp:httpsPrivateKey", "required when"),
    # A secret in clear in the stack file is refused, and the message never quotes it.
    # pragma: allowlist nextline secret
    ("private-key-in-clear", {"ha-webapp:httpsPrivateKey": "not-a-secret-key"}, "httpsPrivateKey", "--secret"),
    ("webhook-in-clear", {"ha-webapp:alarmWebhookUrl": "https://example.com/hook"}, "alarmWebhookUrl", "in clear"),
    # Alarms: someone to tell, a valid address, CloudMonitor's limits.
    ("alarms-missing", {"ha-webapp:alarms": DELETE}, "ha-webapp:alarms", "required"),
    ("alarms-nobody", {"ha-webapp:alarms.contacts": []}, "ha-webapp:alarms.contacts", "at least 1"),
    ("alarm-email-malformed", {"ha-webapp:alarms.contacts[0].email": "oncall"}, "contacts[0].email", "e-mail"),
    ("alarm-contact-name", {"ha-webapp:alarms.contacts[0].name": "On Call"}, "contacts[0].name", "lower-case"),
    ("alarm-sms-malformed", {"ha-webapp:alarms.contacts[0].sms": "+86 138"}, "contacts[0].sms", "digits"),
    (
        "alarm-contact-twice",
        {"ha-webapp:alarms.contacts": [{"name": "a1", "email": "a@example.com"}, {"name": "a1", "email": "b@x.org"}]},
        "ha-webapp:alarms.contacts[1].name",
        "already",
    ),
    ("alarm-silence-short", {"ha-webapp:alarms.silenceSeconds": 60}, "alarms.silenceSeconds", "greater than"),
    ("alarm-silence-long", {"ha-webapp:alarms.silenceSeconds": 90000}, "alarms.silenceSeconds", "less than"),
    ("alarm-severity", {"ha-webapp:alarms.severity": "page"}, "ha-webapp:alarms.severity", "'critical'"),
    ("alarm-rule-unknown", {"ha-webapp:alarms.rules": ["diskFull"]}, "ha-webapp:alarms.rules[0]", "'rdsCpu'"),
    ("alarm-rule-twice", {"ha-webapp:alarms.rules": ["rdsCpu", "rdsCpu"]}, "ha-webapp:alarms.rules", "twice"),
    ("alarm-no-rules", {"ha-webapp:alarms.rules": []}, "ha-webapp:alarms.rules", "at least 1"),
    ("alarm-threshold-100+", {"ha-webapp:alarms.thresholds": {"rdsCpuPercent": 120}}, "rdsCpuPercent", "less than"),
    ("alarm-threshold-typo", {"ha-webapp:alarms.thresholds": {"rdsCpu": 70}}, "thresholds.rdsCpu", "unknown key"),
]


def test_secret_values_are_never_quoted_in_problems() -> None:
    secret = "-----BEGIN PRIVATE KEY-----abc"  # pragma: allowlist secret
    with pytest.raises(SettingsError) as raised:
        parse({"ha-webapp:httpsPrivateKey": secret, "ha-webapp:alarmWebhookUrl": "https://hook.example.com/t0k3n"})
    assert "abc" not in str(raised.value) and "t0k3n" not in str(raised.value)


def test_uploaded_certificate_needs_both_secrets_set_as_secrets() -> None:
    no_cas = {f"ha-webapp:https.{k}": DELETE for k in ("casCertificateId", "casCertificateName", "casRegion")}
    changes = {**no_cas, "ha-webapp:https.certificate": "uploaded", SECRETS[0]: PEM, SECRETS[1]: PEM}
    assert parse(changes, SECRETS).https.certificate == "uploaded"
    with pytest.raises(SettingsError) as raised:
        parse({**no_cas, "ha-webapp:https.certificate": "uploaded", SECRETS[0]: PEM}, SECRETS[:1])
    assert [p.key for p in raised.value.problems] == ["ha-webapp:httpsPrivateKey"]


def test_a_certificate_secret_without_an_upload_is_refused() -> None:
    with pytest.raises(SettingsError) as raised:
        parse({SECRETS[0]: PEM}, SECRETS[:1])
    assert [p.key for p in raised.value.problems] == ["ha-webapp:httpsCertificate"]


def test_dev_may_opt_out_of_https_prod_may_not() -> None:
    config = settings_with({"ha-webapp:https": {"certificate": "none"}})
    assert parse_settings(PROJECT, "dev", config).https.certificate == "none"
    with pytest.raises(SettingsError):
        parse_settings(PROJECT, "prod", config)


@pytest.mark.parametrize(("changes", "key", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_settings_are_rejected_naming_the_key(changes: dict[str, Any], key: str, expected: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse(changes)
    matching = [p for p in raised.value.problems if key in p.key]
    assert matching, f"no problem names {key!r}: {raised.value}"
    assert any(expected in p.message for p in matching), f"{key!r}: expected {expected!r} in {raised.value}"


@pytest.mark.parametrize(("changes", "key"), [(c[1], c[2]) for c in BAD], ids=[c[0] for c in BAD])
def test_the_program_stops_on_bad_settings_before_registering_anything(
    changes: dict[str, Any], key: str, registrations: list[str]
) -> None:
    config = settings_with(changes)
    stack_keys, _ = stack_config("prod")
    # The evaluator re-imports the program's modules per run, so the program raises its own SettingsError class.
    with pytest.raises(pulumi.RunError) as raised:
        offline.evaluate("prod", overrides={k: config.get(k) for k in {*stack_keys, *config}})
    assert key in str(raised.value)
    assert registrations == ["pulumi:pulumi:Stack"], "a resource was registered before the settings were refused"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        parse(
            {
                "ha-webapp:imageId": "ami-1",
                "ha-webapp:network.zones[0].vswitchCidr": "10.30.1.5/24",  # malformed...
                "ha-webapp:network.zones[1].id": "cn-shanghai-b",  # ...does not hide this cross-field problem
                "ha-webapp:app.port": 0,
            }
        )
    keys = [p.key for p in raised.value.problems]
    assert keys == [
        "ha-webapp:imageId",
        "ha-webapp:network.zones[0].vswitchCidr",
        "ha-webapp:app.port",
        "ha-webapp:network.zones[1].id",
    ]
    assert str(raised.value).startswith("invalid settings for stack 'prod' (4 problems):\n  - ha-webapp:imageId: ")


GOOD = [
    ("minimal-defaults", {}),
    ("admin-cidr", {"ha-webapp:network.adminCidr": "203.0.113.0/24"}),
    (
        "zone-letter-style",
        {
            "alicloud:region": "ap-southeast-1",
            "ha-webapp:network.zones[0].id": "ap-southeast-1a",
            "ha-webapp:network.zones[1].id": "ap-southeast-1b",
        },
    ),
    (
        "dns-and-sizes",
        {
            "ha-webapp:dns": {"domain": "example.com", "subDomain": "pre-prod"},
            "ha-webapp:app.serversPerZone": 50,
            "ha-webapp:database.storageGb": 32000,
        },
    ),
    ("protect-on", {"ha-webapp:protect": "true"}),
    ("protect-capitalised", {"ha-webapp:protect": "True"}),
    ("port-lowest-unprivileged", {"ha-webapp:app.port": 1024}),
    ("port-highest", {"ha-webapp:app.port": 65535}),
    ("admin-cidr-slash-16", {"ha-webapp:network.adminCidr": "198.51.0.0/16"}),
    ("admin-cidr-one-host", {"ha-webapp:network.adminCidr": "203.0.113.7/32"}),
    ("admin-cidr-private-vpn", {"ha-webapp:network.adminCidr": "10.8.0.0/16"}),
    ("provider-settings", {"alicloud:profile": "ops", "alicloud:maxRetryTimeout": "60"}),
    ("engine-setting", {"pulumi:disable-default-providers": '["alicloud"]'}),
    ("db-name-not-a-keyword", {"ha-webapp:database.name": "shop_db"}),
    ("tls-1.3", {"ha-webapp:https.tlsPolicy": "tls_cipher_policy_1_2_strict_with_1_3"}),
    (
        "alarms-everything",
        {
            "ha-webapp:alarms": {
                "contacts": [{"name": "oncall", "email": "oncall@example.com", "sms": "13800000000"}],
                "severity": "critical",
                "silenceSeconds": 300,
                "rules": ["zoneUnhealthy", "http5xx"],
                "thresholds": {"serverErrorsPerSecond": 1, "appCpuPercent": 100},
            }
        },
    ),
]


@pytest.mark.parametrize("changes", [c[1] for c in GOOD], ids=[c[0] for c in GOOD])
def test_good_settings_parse(changes: dict[str, Any]) -> None:
    settings = parse(changes)
    assert settings.stack == "prod"
    assert settings.name_prefix == "ha-webapp-prod"


def test_defaults_live_in_the_model() -> None:
    settings = parse({})
    assert (settings.app.servers_per_zone, settings.app.port, settings.app.health_check_path) == (1, 8080, "/health")
    assert (settings.database.backup_retention_days, settings.protect, settings.dns) == (7, False, None)
    assert settings.https.tls_policy == "tls_cipher_policy_1_2_strict"
    assert (settings.alarms.severity, settings.alarms.silence_seconds, len(settings.alarms.rules)) == ("info", 3600, 7)


@pytest.mark.parametrize("stack", ["dev", "preprod", "prod"])
def test_each_stack_file_is_valid(stack: str) -> None:
    config, _ = stack_config(stack)
    settings = parse_settings(PROJECT, stack, config)
    assert settings.tags == {"project": "ha-webapp", "stack": stack, "managed-by": "pulumi"}
