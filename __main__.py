"""ha-webapp: one highly available web-app environment per stack (composition only; see infra/ for the parts)."""

import pulumi

from infra import (
    SLB_SOURCE_CIDR,
    Alarms,
    AlarmsArgs,
    AppTier,
    AppTierArgs,
    CasCertificate,
    Contact,
    Database,
    DatabaseArgs,
    HttpsListener,
    LoadBalancer,
    LoadBalancerArgs,
    Network,
    NetworkArgs,
    Placement,
    Subnet,
    Thresholds,
    guard,
    load_settings,
    secret_config,
)

settings = load_settings()  # raises with every problem listed before any resource is registered
# Refuses, before anything is created, a change that would replace the network or database of a protected stack, or
# switch the health check of a deployed stack ahead of its servers.
guard.check(settings)
zone_a, zone_b = settings.network.zones

network = Network(
    "network",
    NetworkArgs(
        name_prefix=settings.name_prefix,
        tags=settings.tags,
        vpc_cidr=settings.network.vpc_cidr,
        subnets=[Subnet("a", zone_a.id, zone_a.vswitch_cidr), Subnet("b", zone_b.id, zone_b.vswitch_cidr)],
        app_port=settings.app.port,
        lb_source_cidr=SLB_SOURCE_CIDR,
        admin_cidr=settings.network.admin_cidr,
    ),
)

database = Database(
    "database",
    DatabaseArgs(
        name_prefix=settings.name_prefix,
        tags=settings.tags,
        primary_zone_id=zone_a.id,
        standby_zone_id=zone_b.id,
        primary_vswitch_id=network.vswitch_ids["a"],
        standby_vswitch_id=network.vswitch_ids["b"],
        allowed_cidrs=[zone_a.vswitch_cidr, zone_b.vswitch_cidr],
        instance_class=settings.database.instance_class,
        storage_gb=settings.database.storage_gb,
        db_name=settings.database.name,
        db_user=settings.database.user,
        backup_retention_days=settings.database.backup_retention_days,
        password_version=settings.database.password_version,
        protect=settings.protect,
    ),
)

https = settings.https
load_balancer = LoadBalancer(
    "lb",
    LoadBalancerArgs(
        name_prefix=settings.name_prefix,
        tags=settings.tags,
        vswitch_id=network.vswitch_ids["a"],
        master_zone_id=zone_a.id,
        standby_zone_id=zone_b.id,
        health_check_path=settings.app.health_check_path,
        eip_bandwidth_mbps=settings.load_balancer.eip_bandwidth_mbps,
        protect=settings.protect,
        https=None
        if https.certificate == "none"  # an explicit opt-out: HTTP only (never on prod; infra/config.py)
        else HttpsListener(
            tls_policy=https.tls_policy,
            cas=CasCertificate(https.cas_certificate_id, https.cas_certificate_name, https.cas_region)
            if https.cas_certificate_id and https.cas_certificate_name and https.cas_region
            else None,
            certificate_pem=secret_config("httpsCertificate"),
            private_key_pem=secret_config("httpsPrivateKey"),
        ),
        domain=settings.dns.domain if settings.dns else None,
        sub_domain=settings.dns.sub_domain if settings.dns else None,
    ),
)

app = AppTier(
    "app",
    AppTierArgs(
        name_prefix=settings.name_prefix,
        tags=settings.tags,
        placements=[
            Placement("a", zone_a.id, network.vswitch_ids["a"]),
            Placement("b", zone_b.id, network.vswitch_ids["b"]),
        ],
        servers_per_zone=settings.app.servers_per_zone,
        image_id=settings.image_id,
        instance_type=settings.app.instance_type,
        system_disk_gb=settings.app.system_disk_gb,
        security_group_id=network.security_group_id,
        server_group_id=load_balancer.server_group_id,
        app_port=settings.app.port,
        load_balancer_id=load_balancer.slb_id,
        listener_port=load_balancer.serving_port,
        region=settings.region,
        health_gate_timeout_seconds=settings.app.health_gate_timeout_seconds,
        migration_timeout_seconds=settings.app.migration_timeout_seconds,
        database_name=database.db_name,
        database_user=database.user,
        key_pair_name=settings.app.key_pair_name,
        runtime_settings={
            "APP_ENV": settings.stack,
            "APP_PORT": str(settings.app.port),
            "DB_HOST": database.host,
            "DB_PORT": database.port,
            "DB_NAME": database.db_name,
            "DB_USER": database.user,
            # The password is fetched at boot from this OOS encrypted parameter by the image's boot helper, never
            # passed here. The rotation number changes the user data, so a rotation rolls the servers zone by zone.
            "DB_PASSWORD_PARAMETER": database.password_parameter_name,
            "DB_PASSWORD_ROTATION": str(settings.database.password_version),
            "DB_SSL_MODE": "REQUIRED",
        },
        readable_secret_parameters=[database.password_parameter_name],
    ),
)

alarms = Alarms(
    "alarms",
    AlarmsArgs(
        name_prefix=settings.name_prefix,
        tags=settings.tags,
        contacts=[Contact(c.name, c.email, c.sms) for c in settings.alarms.contacts],
        webhook_url=secret_config("alarmWebhookUrl"),
        severity=settings.alarms.severity,
        silence_seconds=settings.alarms.silence_seconds,
        rules=settings.alarms.rules,
        thresholds=Thresholds(**settings.alarms.thresholds.model_dump()),
        load_balancer_id=load_balancer.slb_id,
        database_id=database.instance_id,
        server_ids=[server for ids in app.server_ids.values() for server in ids],
        servers_per_zone=settings.app.servers_per_zone,
    ),
)

pulumi.export("url", load_balancer.url)
pulumi.export("eip_address", load_balancer.eip_address)
pulumi.export("slb_id", load_balancer.slb_id)
pulumi.export("vpc_id", network.vpc_id)
pulumi.export("vswitch_ids", [network.vswitch_ids["a"], network.vswitch_ids["b"]])
pulumi.export("app_server_ids", [server for ids in app.server_ids.values() for server in ids])
pulumi.export("db_host", database.host)
pulumi.export("db_port", database.port)
pulumi.export("db_name", database.db_name)
pulumi.export("db_user", database.user)
pulumi.export("db_password", database.password)
pulumi.export("db_password_parameter", database.password_parameter_name)
pulumi.export(guard.PINS_OUTPUT, guard.pins(settings))
pulumi.export(guard.HEALTH_CHECK_OUTPUT, guard.health_check_pins(settings))
