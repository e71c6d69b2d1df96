"""Stack settings: every key a stack file may hold, its type, default and limits, and the one loader.

`load_settings` is the only reader of the stack's config. It hands the raw map to `parse_settings`, which is pure
(the tests feed it tables of good and bad input) and returns a frozen `Settings` or raises `SettingsError` listing
every problem with its full config key, before the program registers any resource.
"""

from __future__ import annotations

import ipaddress
import json
import re
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

T = TypeVar("T")

PROJECT = "ha-webapp"
REGION_KEY = "alicloud:region"

# The classic SLB forwards traffic and sends its health checks from this range (Alibaba Cloud's documented source
# range for CLB back-end traffic); app servers accept the app port from it and from nowhere else.
SLB_SOURCE_CIDR = "100.64.0.0/10"

# A VPC or VSwitch must use private address space (RFC 1918); Alibaba Cloud refuses other ranges for new VPCs.
_PRIVATE_RANGES = tuple(ipaddress.ip_network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+(-\d+)?")
# A zone is its region plus a letter: after a dash when the region ends in a letter (cn-hangzhou-h), directly after the
# region's number otherwise (ap-southeast-1a).
ZONE_RE = re.compile(r"[a-z]{2}(-[a-z]+)+(-[a-z]|-\d+[a-z])")
# A custom image ID; also checked by the image hand-off (pipeline/image_handoff.py) before it writes one.
IMAGE_ID_RE = re.compile(r"m-[0-9a-z]{8,32}")
_INSTANCE_TYPE_RE = re.compile(r"ecs\.[a-z0-9-]+\.[a-z0-9]+")
_DB_CLASS_RE = re.compile(r"(rds\.)?mysql\.[a-z0-9]+(\.[a-z0-9]+)+")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"(?=.{{4,253}}$)({_LABEL}\.)+[a-z]{{2,63}}")
_SUBDOMAIN_RE = re.compile(_LABEL)
# The CLB accepts 2-80 characters of this set for a health-check URI, starting with "/".
_HEALTH_PATH_RE = re.compile(r"/[A-Za-z0-9\-/.%?#&_=]{1,79}")
_KEY_PAIR_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{1,127}")
_DB_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}[a-z0-9]")
_DB_USER_RE = re.compile(r"[a-z][a-z0-9_]{0,30}[a-z0-9]")
_RESERVED_DB_USERS = frozenset({"root", "admin", "mysql", "aliyun_root", "replicator", "sys"})
# RDS for MySQL refuses these as database (and account) names: "Forbidden keywords", ApsaraDB RDS developer reference,
# https://www.alibabacloud.com/help/en/rds/developer-reference/forbidden-keywords (MySQL's reserved words plus RDS's own
# system names such as eagleye, guest, replicator, test, xtrabak), and MySQL's system schemas.
_RDS_FORBIDDEN_NAMES = frozenset(
    """
    action add admin all alter analyze and as asc asensitive before between bigint binary blob both by call cascade
    case change char character check collate column condition connection constraint continue convert create cross
    current_date current_time current_timestamp current_user cursor database databases day_hour day_microsecond
    day_minute day_second dec decimal declare default delayed delete desc describe deterministic distinct distinctrow
    div double drop dual each eagleye else elseif enclosed escaped exists exit explain false fetch float float4 float8
    for force foreign from fulltext goto grant group guest having high_priority hour_microsecond hour_minute
    hour_second if ignore in index infile information_schema inner inout insensitive insert int int1 int2 int3 int4
    int8 integer interval into is iterate join key keys kill label leading leave left like limit linear lines load
    localtime localtimestamp lock long longblob longtext loop low_priority match mediumblob mediumint mediumtext
    middleint minute_microsecond minute_second mod modifies mysql natural no_write_to_binlog not null numeric on
    optimize option optionally or order out outer outfile performance_schema precision primary procedure purge raid0
    range read reads real references regexp release rename repeat replace replicator require restrict return revoke
    right rlike root schema schemas second_microsecond select sensitive separator set show smallint spatial specific
    sql sqlexception sqlstate sqlwarning sql_big_result sql_calc_found_rows sql_small_result ssl starting
    straight_join sys table terminated test then tinyblob tinyint tinytext to trailing trigger true undo union unique
    unlock unsigned update usage use using utc_date utc_time utc_timestamp values varbinary varchar varcharacter
    varying when where while with write xor xtrabak year_month zerofill aurora
    """.split()  # noqa: SIM905 (the documented list, kept readable as it is written there)
)


def matching(pattern: re.Pattern[str], expected: str) -> AfterValidator:
    """A pydantic check that the whole value matches `pattern`; its error names what is `expected` (also used by
    pipeline.app_pin)."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"expected {expected}, got {value!r}")
        return value

    return AfterValidator(check)


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"expected an IPv4 network in CIDR form such as 10.0.1.0/24, got {value!r} ({exc})") from None
    return str(network)


def _private_cidr(value: str) -> str:
    network = ipaddress.IPv4Network(_cidr(value))
    if not any(network.subnet_of(r) for r in _PRIVATE_RANGES):  # type: ignore[arg-type]
        raise ValueError(f"expected a private range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, got {value}")
    return value


def _admin_cidr(value: str) -> str:
    network = ipaddress.IPv4Network(_cidr(value))
    # SSH from a whole continent is not an admin range; an office, a VPN or a bastion is a /16 or narrower.
    if network.prefixlen < 16:
        raise ValueError(f"expected the admin network, at most a /16 (an office, VPN or bastion), got {value}")
    # 0.0.0.0/8 is "this network" (0.0.0.0/16 opens SSH to nobody real and reads like "anywhere"); loopback,
    # link-local, multicast and reserved ranges are never where an operator connects from.
    unroutable = ipaddress.IPv4Network("0.0.0.0/8")
    if network.subnet_of(unroutable) or network.is_loopback or network.is_link_local or network.is_multicast:
        raise ValueError(f"expected a network operators connect from, got {value} (not a routable source range)")
    if network.is_reserved:
        raise ValueError(f"expected a network operators connect from, got {value} (a reserved range)")
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]
PrivateCidr = Annotated[str, AfterValidator(_private_cidr)]
AdminCidr = Annotated[str, AfterValidator(_admin_cidr)]


class _Section(BaseModel):
    # camelCase keys in the stack files (Pulumi's convention), snake_case in Python; a typo is an error, not a no-op.
    # Strict: `true`, 2.0 or "2" is not a count and "25" is not a size; a stack file says what it means.
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, alias_generator=to_camel, populate_by_name=False
    )


class ZoneSettings(_Section):
    """One availability zone of the stack and the CIDR of its VSwitch."""

    id: Annotated[str, matching(ZONE_RE, "a zone ID such as cn-hangzhou-h or ap-southeast-1a")]
    vswitch_cidr: PrivateCidr


def _vpc_prefix(value: str) -> str:
    prefix = ipaddress.IPv4Network(value).prefixlen
    if not 8 <= prefix <= 24:
        raise ValueError(f"expected a VPC block between /8 and /24, got /{prefix}")
    return value


class NetworkSettings(_Section):
    """The VPC and its two zones: the first is zone A (primary), the second zone B (standby)."""

    vpc_cidr: Annotated[PrivateCidr, AfterValidator(_vpc_prefix)]
    # Exactly two: zone A hosts the RDS primary and the SLB master, zone B their standbys.
    zones: Annotated[list[ZoneSettings], Field(min_length=2, max_length=2)]
    admin_cidr: AdminCidr | None = None


def _app_port(value: int) -> int:
    if not 1024 <= value <= 65535:
        # The app runs as an unprivileged user (packer/files), which cannot bind below 1024; 22 would also be SSH's.
        why = "22 is SSH's port; " if value == 22 else ""
        raise ValueError(
            f"expected a port greater than or equal to 1024 and at most 65535 ({why}the app runs as an unprivileged "
            f"user, which cannot bind a port below 1024), got {value}"
        )
    return value


class AppSettings(_Section):
    """The app servers: how many per zone, what they run, and how the load balancer checks them."""

    instance_type: Annotated[str, matching(_INSTANCE_TYPE_RE, "an ECS instance type such as ecs.g7.large")]
    servers_per_zone: Annotated[int, Field(ge=1, le=50)] = 1
    port: Annotated[int, AfterValidator(_app_port)] = 8080
    health_check_path: Annotated[
        str, matching(_HEALTH_PATH_RE, "a path of 2-80 URL characters starting with '/', such as /health")
    ] = "/health"
    system_disk_gb: Annotated[int, Field(ge=20, le=500)] = 40
    # How long a release waits for a zone's new servers to pass the load balancer's health check (boot, cloud-init,
    # app start, then healthy_threshold checks) before it stops, leaving the old servers in service.
    health_gate_timeout_seconds: Annotated[int, Field(ge=60, le=3600)] = 600
    # How long a release waits for its database migrations (run once, on zone A's first new server, after its first
    # boot) before it stops, with no new server behind the load balancer. Long enough for a schema change that
    # rebuilds a large table; at most 6 hours, because the stack's update lock is held the whole time.
    migration_timeout_seconds: Annotated[int, Field(ge=60, le=21600)] = 1800
    key_pair_name: Annotated[str, matching(_KEY_PAIR_RE, "an ECS key pair name")] | None = None


def _not_reserved(value: str) -> str:
    if value in _RESERVED_DB_USERS or value in _RDS_FORBIDDEN_NAMES:
        raise ValueError(f"{value!r} is reserved by RDS or MySQL; expected an application account name such as app")
    return value


def _not_forbidden_db_name(value: str) -> str:
    if value in _RDS_FORBIDDEN_NAMES:
        raise ValueError(f"{value!r} is reserved by RDS or MySQL; expected an application database name such as appdb")
    return value


class DatabaseSettings(_Section):
    """The multi-zone RDS MySQL 8.0 instance and the application's database and account."""

    instance_class: Annotated[str, matching(_DB_CLASS_RE, "an RDS MySQL class such as mysql.n2.medium.2c")]
    # MySQL 8.0 High-availability on ESSD starts at 20 GB and grows in steps of 5 GB.
    storage_gb: Annotated[int, Field(ge=20, le=32000, multiple_of=5)] = 20
    backup_retention_days: Annotated[int, Field(ge=7, le=730)] = 7
    # Bump to rotate the account password: a new one is generated, stored as a new KMS secret version, and the app
    # servers are rolled (their boot settings name the version) so that they read it.
    password_version: Annotated[int, Field(ge=1, le=9999)] = 1
    name: Annotated[
        str,
        matching(_DB_NAME_RE, "a database name of lower-case letters, digits and _"),
        AfterValidator(_not_forbidden_db_name),
    ] = "appdb"
    user: Annotated[
        str,
        matching(_DB_USER_RE, "an account name of lower-case letters, digits and _"),
        AfterValidator(_not_reserved),
    ] = "app"


def _retired_spec(value: Any) -> None:
    raise ValueError(
        "is no longer used: pay-by-specification CLBs cannot be bought since 2025-06-01 and the load balancer is "
        f"pay-by-CLCU (billed by use, no specification); remove this key (got {value!r})"
    )


class LoadBalancerSettings(_Section):
    """The classic load balancer and the EIP in front of it."""

    # Retired: kept only to refuse it with an explanation instead of a bare "unknown key". Never set on a valid stack.
    spec: Annotated[Any, AfterValidator(_retired_spec)] = None
    eip_bandwidth_mbps: Annotated[int, Field(ge=1, le=500)] = 10


class DnsSettings(_Section):
    """The public name of the stack: an A record `<subDomain>.<domain>` pointing at the EIP."""

    domain: Annotated[str, matching(_DOMAIN_RE, "a lower-case domain name such as example.com")]
    sub_domain: Annotated[str, matching(_SUBDOMAIN_RE, "one lower-case DNS label such as www")]


# Stacks that must serve HTTPS: a settings rule here, and the policy pack's `https-required` rule at deploy time.
HTTPS_REQUIRED_STACKS = frozenset({"prod"})
# TLS 1.2 and later only. The listener's own default is tls_cipher_policy_1_0 (TLS 1.0+), so it is always set:
# terraform-provider-alicloud@81c43b6 alicloud/resource_alicloud_slb_listener.go l.344-349 (default, five values).
TLS_POLICIES = ("tls_cipher_policy_1_2", "tls_cipher_policy_1_2_strict", "tls_cipher_policy_1_2_strict_with_1_3")
TlsPolicy = Literal["tls_cipher_policy_1_2", "tls_cipher_policy_1_2_strict", "tls_cipher_policy_1_2_strict_with_1_3"]
# A certificate issued or uploaded in Certificate Management Service (CAS) is referred to by its numeric ID
# (UploadServerCertificate's AliCloudCertificateId, e.g. 775****).
_CAS_ID_RE = re.compile(r"[0-9]{1,20}")
_CAS_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# Stack-file keys that hold a secret: set with `pulumi config set --secret`, read with require_secret, never part of
# the settings model (whose error messages may quote a value). The value says what it is, for error messages.
SECRET_KEYS: dict[str, str] = {
    "httpsCertificate": "the PEM certificate chain of the HTTPS listener",
    "httpsPrivateKey": "the PEM private key of that certificate",  # pragma: allowlist secret
    # pragma: allowlist nextline secret
    "alarmWebhookUrl": "the alarm webhook URL (a DingTalk chatbot URL carries its access token)",
}


class HttpsSettings(_Section):
    """HTTPS at the load balancer: where the certificate comes from, or an explicit opt-out, and the TLS policy."""

    # cas: a certificate already in Certificate Management Service, by ID; uploaded: the PEM certificate and key given
    # as the secrets ha-webapp:httpsCertificate and ha-webapp:httpsPrivateKey; none: HTTP only (never on prod).
    certificate: Literal["cas", "uploaded", "none"]
    cas_certificate_id: (
        Annotated[str, matching(_CAS_ID_RE, "a CAS certificate ID (digits), such as 7751234")] | None
    ) = None
    cas_certificate_name: Annotated[str, matching(_CAS_NAME_RE, "the certificate's name in CAS")] | None = None
    # The region CAS keeps the certificate in (cn-hangzhou for certificates bought on the China site).
    cas_region: Annotated[str, matching(REGION_RE, "an Alibaba Cloud region ID such as cn-hangzhou")] | None = None
    tls_policy: TlsPolicy = "tls_cipher_policy_1_2_strict"


AlarmRule = Literal["unhealthyBackend", "zoneUnhealthy", "http5xx", "rdsCpu", "rdsStorage", "rdsConnections", "appCpu"]
ALARM_RULES: tuple[AlarmRule, ...] = typing.get_args(AlarmRule)
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}")
_PHONE_RE = re.compile(r"[0-9]{6,20}")
_CONTACT_RE = re.compile(r"[a-z][a-z0-9-]{0,18}[a-z0-9]")
Percent = Annotated[int, Field(ge=1, le=100)]


class AlarmContactSettings(_Section):
    """A person or team that receives the stack's alarms."""

    # Contact names are account-wide in CloudMonitor (the contact's ID is its name); the stack prefix is added.
    name: Annotated[str, matching(_CONTACT_RE, "2-20 lower-case letters, digits and -, such as oncall")]
    email: Annotated[str, matching(_EMAIL_RE, "an e-mail address such as oncall@example.com")]
    # A mobile number (digits only): critical alarms then also call and text it.
    sms: Annotated[str, matching(_PHONE_RE, "a phone number of 6-20 digits")] | None = None


class AlarmThresholds(_Section):
    """When each alarm fires; the defaults suit every stack, a stack file changes what must differ."""

    server_errors_per_second: Annotated[int, Field(ge=1, le=100000)] = 5
    rds_cpu_percent: Percent = 80
    rds_storage_percent: Percent = 80
    rds_connections_percent: Percent = 80
    app_cpu_percent: Percent = 85


class AlarmsSettings(_Section):
    """CloudMonitor alarms on the stack: who is told, how loudly, how often, and about what."""

    contacts: Annotated[list[AlarmContactSettings], Field(min_length=1, max_length=10)]
    # critical: phone call, SMS, e-mail and webhook (pages); warn: SMS, e-mail, webhook; info: e-mail and webhook.
    severity: Literal["critical", "warn", "info"] = "info"
    # While an alarm stays on, it is repeated at most this often (CloudMonitor's silence_time, 300-86400 s).
    silence_seconds: Annotated[int, Field(ge=300, le=86400)] = 3600
    rules: Annotated[list[AlarmRule], Field(min_length=1)] = list(ALARM_RULES)
    thresholds: AlarmThresholds = AlarmThresholds()


class Settings(_Section):
    """Everything one stack needs, validated before any resource is registered."""

    project: str
    stack: str
    region: Annotated[str, matching(REGION_RE, "an Alibaba Cloud region ID such as cn-hangzhou")]
    image_id: Annotated[str, matching(IMAGE_ID_RE, "a custom image ID such as m-bp1g7004ksh0oeuc1ne8")]
    network: NetworkSettings
    app: AppSettings
    database: DatabaseSettings
    load_balancer: LoadBalancerSettings = LoadBalancerSettings()
    dns: DnsSettings | None = None
    https: HttpsSettings
    alarms: AlarmsSettings
    # Provider-side deletion protection plus Pulumi `protect` on the stateful and address-holding resources; on such a
    # stack, settings that would replace the VPC, the VSwitches or the database are refused (infra/guard.py)...
    protect: bool = False
    # ...unless this is set, on purpose, for the one update that makes such a change.
    allow_replacement: bool = False
    # On any deployed stack a new health-check path is refused (infra/guard.py), unless this is set for the one update
    # that makes it, once the servers in service answer the new path too.
    allow_health_check_change: bool = False

    @property
    def name_prefix(self) -> str:
        """Prefix of every physical name, so that two stacks never collide in one account."""
        return f"{self.project}-{self.stack}"

    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.project, "stack": self.stack, "managed-by": "pulumi"}


# The stack-file keys in the project's namespace, and whether each holds an object (passed as JSON by Pulumi).
_KEYS: dict[str, bool] = {
    "imageId": False,
    "network": True,
    "app": True,
    "database": True,
    "loadBalancer": True,
    "dns": True,
    "https": True,
    "alarms": True,
    "protect": False,
    "allowReplacement": False,
    "allowHealthCheckChange": False,
}


# Top-level booleans arrive as strings; these are the spellings the Pulumi SDK's Config.get_bool reads.
_BOOLEANS = {"true": True, "True": True, "false": False, "False": False}

# Keys of other namespaces a stack file may hold. `alicloud:` keys are the provider's settings
# (pulumi_alicloud/config/vars.py) that an operator may legitimately set for this program; credentials are refused
# (they come from the environment or the pipeline's OIDC role, never from a committed file), and so are the
# provider's undocumented legacy endpoints. The value says what the provider expects: "int", "bool" or "str".
_PROVIDER_KEYS: dict[str, dict[str, str]] = {
    "alicloud": {
        "region": "str",
        "profile": "str",
        "sharedCredentialsFile": "str",
        "assumeRole": "str",
        "assumeRoleWithOidc": "str",
        "ecsRoleName": "str",
        "credentialsUri": "str",
        "accountId": "str",
        "protocol": "str",
        "sourceIp": "str",
        "secureTransport": "str",
        "endpoints": "str",
        "signVersion": "str",
        "configurationSource": "str",
        "features": "str",
        "clientConnectTimeout": "int",
        "clientReadTimeout": "int",
        "maxRetryTimeout": "int",
        "skipRegionValidation": "bool",
    },
    # Engine settings a stack may carry (Pulumi's documented `pulumi:` config keys).
    "pulumi": {"disable-default-providers": "str", "autonaming": "str"},
}
_CREDENTIAL_IN_FILE = "a credential does not belong in a stack file; use the environment or the pipeline's role"
_REFUSED_PROVIDER_KEYS = dict.fromkeys(
    ("alicloud:accessKey", "alicloud:secretKey", "alicloud:securityToken"), _CREDENTIAL_IN_FILE
)


@dataclass(frozen=True)
class Problem:
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class SettingsError(pulumi.RunError):
    """Invalid stack settings; a RunError so that `pulumi up` prints the list without a traceback."""

    def __init__(self, stack: str, problems: list[Problem]) -> None:
        self.stack = stack
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid settings for stack '{stack}' ({len(problems)} {noun}):\n{lines}")


def parse_settings(project: str, stack: str, config: Mapping[str, str], secret_keys: Collection[str] = ()) -> Settings:
    """Validate one stack's raw config (the `namespace:key` -> string map Pulumi hands a program, and which of its
    keys are secret). Secret values are checked for presence and secrecy only, and never quoted."""
    problems: list[Problem] = []
    raw: dict[str, Any] = {"project": project, "stack": stack}
    secrets_given: set[str] = set()
    if REGION_KEY in config:
        raw["region"] = config[REGION_KEY]

    prefix = f"{project}:"
    for full_key, value in config.items():
        if not full_key.startswith(prefix):
            problems.extend(_other_namespace_problems(full_key, value, project))
            continue
        key = full_key[len(prefix) :]
        if key in SECRET_KEYS:
            if full_key not in secret_keys:
                problems.append(
                    Problem(
                        full_key,
                        f"holds {SECRET_KEYS[key]} in clear; remove it from the stack file and set it with "
                        f"`pulumi config set --secret {key}`",
                    )
                )
            elif value.strip():
                secrets_given.add(key)
            continue
        if key not in _KEYS:
            known = ", ".join(prefix + k for k in [*_KEYS, *SECRET_KEYS])
            problems.append(Problem(full_key, f"unknown key (known keys: {known})"))
            continue
        if key in ("protect", "allowReplacement", "allowHealthCheckChange"):
            if value not in _BOOLEANS:
                problems.append(Problem(full_key, f"input should be a valid boolean (true or false), got {value!r}"))
                continue
            raw[key] = _BOOLEANS[value]
        elif _KEYS[key]:
            try:
                raw[key] = json.loads(value)
            except (TypeError, json.JSONDecodeError):
                problems.append(Problem(full_key, f"expected an object (a YAML mapping), got {value!r}"))
                continue
        else:
            raw[key] = value

    settings: Settings | None = None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_from_pydantic(exc, project))

    # Cross-field checks read the raw network section and use every part of it that parsed on its own, so that one
    # pass reports a malformed CIDR and a duplicate zone together.
    region = settings.region if settings else _parsed(_region, raw.get("region"))
    problems.extend(_network_problems(raw.get("network"), region, project))
    if settings is not None:
        problems.extend(_https_problems(settings, secrets_given))
        problems.extend(_alarm_problems(settings))

    if problems:
        raise SettingsError(stack, problems)
    assert settings is not None
    return settings


def _other_namespace_problems(full_key: str, value: str, project: str) -> list[Problem]:
    """A key outside the project's namespace: a provider's known setting, or a typo that must not pass silently."""
    namespace, colon, name = full_key.partition(":")
    if not colon:
        return [Problem(full_key, f"expected <namespace>:<key>, such as {project}:{full_key}")]
    if full_key in _REFUSED_PROVIDER_KEYS:
        return [Problem(full_key, _REFUSED_PROVIDER_KEYS[full_key])]
    known = _PROVIDER_KEYS.get(namespace)
    if known is None:
        namespaces = ", ".join([project, *_PROVIDER_KEYS])
        return [Problem(full_key, f"unknown namespace {namespace!r} (known namespaces: {namespaces})")]
    if name not in known:
        return [Problem(full_key, f"unknown key (known {namespace} keys: {', '.join(sorted(known))})")]
    kind = known[name]
    if kind == "int" and not re.fullmatch(r"[0-9]{1,9}", value):
        return [Problem(full_key, f"input should be a valid integer, got {value!r}")]
    if kind == "bool" and value not in _BOOLEANS:
        return [Problem(full_key, f"input should be a valid boolean (true or false), got {value!r}")]
    return []


def _from_pydantic(exc: ValidationError, project: str) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        top = str(loc[0]) if loc else ""
        key = REGION_KEY if top == "region" else f"{project}:{top}"
        for part in loc[1:]:
            key += f"[{part}]" if isinstance(part, int) else f".{part}"
        if error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "value_error":
            message = str(error["ctx"]["error"])
        else:
            message = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {error.get('input')!r}"
        problems.append(Problem(key, message))
    return problems


def _parsed(parse: Callable[[Any], T], value: Any) -> T | None:
    """What `parse` makes of `value`, or None if it refuses it (the model already reports why)."""
    try:
        return parse(value)
    except (ValueError, TypeError, ValidationError):
        return None


def _zone_letter(region: str) -> str:
    return "[a-z]" if region[-1].isdigit() else "-[a-z]"


def _region(value: str) -> str | None:
    return value if REGION_RE.fullmatch(value) else None


def _network_problems(network: Any, region: str | None, project: str) -> list[Problem]:
    if not isinstance(network, dict):
        return []
    base = f"{project}:network"
    vpc_cidr = _parsed(_private_cidr, network.get("vpcCidr"))
    raw_zones = network.get("zones")
    zones: list[Any] = raw_zones if isinstance(raw_zones, list) else []
    problems = []
    seen_zones: dict[str, int] = {}
    seen_cidrs: list[tuple[int, ipaddress.IPv4Network]] = []
    for i, raw_zone in enumerate(zones):
        zone = _parsed(ZoneSettings.model_validate, raw_zone)
        if zone is None:
            continue
        key = f"{base}.zones[{i}]"
        if zone.id in seen_zones:
            first = seen_zones[zone.id]
            problems.append(
                Problem(f"{key}.id", f"zone {zone.id} is already zones[{first}]; expected two different zones")
            )
        seen_zones.setdefault(zone.id, i)
        # Zone IDs are the region ID plus a letter (cn-hangzhou-h, ap-southeast-1a).
        if region is not None and not re.fullmatch(re.escape(region) + _zone_letter(region), zone.id):
            expected = f"expected {region}{'' if region[-1].isdigit() else '-'}<letter>"
            problems.append(Problem(f"{key}.id", f"zone {zone.id} is not in region {region} ({expected})"))
        cidr = ipaddress.IPv4Network(zone.vswitch_cidr)
        if vpc_cidr is not None and not cidr.subnet_of(vpc := ipaddress.IPv4Network(vpc_cidr)):
            problems.append(Problem(f"{key}.vswitchCidr", f"{cidr} is not inside the VPC ({base}.vpcCidr {vpc})"))
        elif not 16 <= cidr.prefixlen <= 29:
            problems.append(
                Problem(f"{key}.vswitchCidr", f"expected a VSwitch block between /16 and /29, got /{cidr.prefixlen}")
            )
        for j, other in seen_cidrs:
            if cidr.overlaps(other):
                problems.append(Problem(f"{key}.vswitchCidr", f"{cidr} overlaps zones[{j}].vswitchCidr {other}"))
        seen_cidrs.append((i, cidr))
    return problems


def _https_problems(settings: Settings, secrets_given: set[str]) -> list[Problem]:
    https, base = settings.https, f"{settings.project}:https"
    problems = []
    cas_keys = {"casCertificateId": https.cas_certificate_id, "casCertificateName": https.cas_certificate_name}
    cas_keys["casRegion"] = https.cas_region
    if https.certificate == "cas":
        problems += [
            Problem(f"{base}.{k}", "required when https.certificate is cas (UploadServerCertificate needs it)")
            for k, v in cas_keys.items()
            if v is None
        ]
    else:
        problems += [
            Problem(f"{base}.{k}", f"only used when https.certificate is cas, not {https.certificate}; remove it")
            for k, v in cas_keys.items()
            if v is not None
        ]
    pem_keys = ("httpsCertificate", "httpsPrivateKey")
    for key in pem_keys:
        full = f"{settings.project}:{key}"
        if https.certificate == "uploaded" and key not in secrets_given:
            problems.append(
                Problem(full, f"required when https.certificate is uploaded: `pulumi config set --secret {key} < file`")
            )
        elif https.certificate != "uploaded" and key in secrets_given:
            problems.append(Problem(full, f"only used when https.certificate is uploaded, not {https.certificate}"))
    if https.certificate == "none" and settings.stack in HTTPS_REQUIRED_STACKS:
        problems.append(
            Problem(
                f"{base}.certificate",
                f"stack '{settings.stack}' must serve HTTPS: expected cas or uploaded, got none",
            )
        )
    return problems


def _alarm_problems(settings: Settings) -> list[Problem]:
    base = f"{settings.project}:alarms"
    problems = []
    seen: dict[str, int] = {}
    for i, contact in enumerate(settings.alarms.contacts):
        if contact.name in seen:
            problems.append(
                Problem(f"{base}.contacts[{i}].name", f"{contact.name!r} is already contacts[{seen[contact.name]}]")
            )
        seen.setdefault(contact.name, i)
    if len(set(settings.alarms.rules)) != len(settings.alarms.rules):
        problems.append(Problem(f"{base}.rules", "lists an alarm twice"))
    return problems


def secret_config(key: str) -> pulumi.Output[str] | None:
    """The value of a secret key (one of SECRET_KEYS), as a secret Output; None when the stack does not set it."""
    assert key in SECRET_KEYS, key
    return pulumi.Config().get_secret(key)


def load_settings() -> Settings:
    """Read and validate the current stack's config; raise SettingsError before anything is created."""
    # pulumi.Config can only look keys up, and a typo must be reported, so read the whole map the language host
    # received (the same map `pulumi.Config` reads from) and look for unknown keys in our namespace.
    raw = {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    secret = {*pulumi.runtime.config.get_config_secret_keys_env()}
    secret |= {k for k in raw if pulumi.runtime.config.is_config_secret(k)}
    return parse_settings(pulumi.get_project(), pulumi.get_stack(), {k: str(v) for k, v in raw.items()}, secret)
