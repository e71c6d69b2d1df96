"""AppTier: the app servers of every zone, booted from the Packer image, each a member of the SLB's server group."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

from infra import user_data
from infra.health_gate import HealthGate, HealthGateArgs
from infra.migration import SchemaMigration, SchemaMigrationArgs

# Changes the provider would apply to a running server in place (stop, swap the system disk, or reboot) replace it
# instead: a new server is created next to the old one, and the old one goes only after the new one is healthy.
_REPLACE_ON_CHANGES = ["image_id", "instance_type", "user_data", "key_name", "vswitch_id"]


def secret_parameter_policy(region: str, names: Sequence[str]) -> str:
    """A RAM policy that reads exactly these OOS encrypted parameters, decrypted, and nothing else.

    GetSecretParameter is authorised on acs:oos:<region>:<account>:secretparameter/<name>, and "requires permission to
    call GetSecretValue of KMS" (OOS API reference, GetSecretParameter): OOS keeps an encrypted parameter as the KMS
    secret oos/<name> (as Alibaba Cloud's own examples scope it). The account is left as `*`: a RAM policy only ever
    grants access to its own account's resources, and the program needs no account lookup.
    """
    statement = {
        "Effect": "Allow",
        "Action": ["oos:GetSecretParameter", "kms:GetSecretValue"],
        "Resource": [f"acs:oos:{region}:*:secretparameter/{n}" for n in names]
        + [f"acs:kms:{region}:*:secret/oos/{n}" for n in names],
    }
    return json.dumps({"Version": "1", "Statement": [statement]})


@dataclass(frozen=True)
class Placement:
    """Where a zone's servers go: the zone's role label ("a", "b"), its ID and its VSwitch."""

    label: str
    zone_id: str
    vswitch_id: pulumi.Input[str]


@dataclass
class AppTierArgs:
    name_prefix: str
    tags: Mapping[str, str]
    placements: Sequence[Placement]
    servers_per_zone: int
    image_id: str
    instance_type: str
    system_disk_gb: int
    security_group_id: pulumi.Input[str]
    # The SLB server group the servers join, and the port it sends traffic and health checks to.
    server_group_id: pulumi.Input[str]
    app_port: int
    # Where the health gates ask whether a zone's new servers are healthy, and how long they wait.
    load_balancer_id: pulumi.Input[str]
    listener_port: int
    region: str
    health_gate_timeout_seconds: int
    # The release's database migrations run on zone A's first server once the database and its account are usable.
    migration_timeout_seconds: int
    database_name: pulumi.Input[str]
    database_user: pulumi.Input[str]
    # Written to the server's environment file at boot. No secrets: they stay in OOS encrypted parameters, and the
    # servers' RAM role may read exactly these parameters (by name, in this region) and nothing else.
    runtime_settings: Mapping[str, pulumi.Input[str]]
    readable_secret_parameters: Sequence[pulumi.Input[str]]
    key_pair_name: str | None = None


class AppTier(pulumi.ComponentResource):
    """N app servers per zone, private only, password login off, each behind the load balancer, rolled zone by zone."""

    server_ids: dict[str, list[pulumi.Output[str]]]

    def __init__(self, name: str, args: AppTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ha-webapp:index:AppTier", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        # The servers' identity: a RAM role that ECS may pass to them, allowed to read the app's secrets and no more.
        role = alicloud.ram.Role(
            f"{name}-role",
            role_name=f"{args.name_prefix}-app",
            assume_role_policy_document=json.dumps(
                {
                    "Version": "1",
                    "Statement": [
                        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["ecs.aliyuncs.com"]}}
                    ],
                }
            ),
            description=f"App servers of {args.name_prefix}: read their secrets at boot",
            tags=tags,
            opts=child,
        )
        policy = alicloud.ram.Policy(
            f"{name}-read-secrets",
            policy_name=f"{args.name_prefix}-app-read-secrets",
            policy_document=pulumi.Output.all(*args.readable_secret_parameters).apply(
                lambda names: secret_parameter_policy(args.region, names)
            ),
            description=f"Read the secrets of {args.name_prefix}'s app, nothing else",
            tags=tags,
            opts=child,
        )
        role_policy = alicloud.ram.RolePolicyAttachment(
            f"{name}-role-read-secrets",
            role_name=role.role_name,
            policy_name=policy.policy_name,
            policy_type="Custom",
            opts=child,
        )
        # The boot helper in the image reads the role's credentials from the metadata service (token mode only).
        settings = {
            **args.runtime_settings,
            "ALIBABA_CLOUD_ECS_METADATA": role.role_name,
            "ALIBABA_CLOUD_IMDSV1_DISABLED": "true",
            "ALIBABA_CLOUD_REGION": args.region,
        }
        boot_config = pulumi.Output.all(**settings).apply(
            lambda values: user_data.encode(user_data.cloud_config(values))
        )

        self.server_ids = {}
        # Zones roll one after the other: a zone's servers wait for the previous zone's gate, so at most one zone is
        # ever being replaced and every other zone keeps its healthy servers behind the load balancer.
        previous_gate: HealthGate | None = None
        # Runs once the first zone's first server exists; every membership of that zone waits for it (see below).
        migration: SchemaMigration | None = None
        for zone_index, placement in enumerate(args.placements):
            # What a zone's gate waits for besides health: each server's SLB membership and its RAM role.
            servers: list[alicloud.ecs.Instance] = []
            attachments: list[pulumi.Resource] = []
            for index in range(1, args.servers_per_zone + 1):
                server_name = f"{args.name_prefix}-app-{placement.label}{index}"
                server = alicloud.ecs.Instance(
                    f"{name}-{placement.label}{index}",
                    instance_name=server_name,
                    host_name=server_name,
                    image_id=args.image_id,
                    instance_type=args.instance_type,
                    vswitch_id=placement.vswitch_id,
                    security_groups=[args.security_group_id],
                    # No public address: the only way in is the load balancer (and SSH from the admin range).
                    internet_max_bandwidth_out=0,
                    internet_charge_type="PayByTraffic",
                    instance_charge_type="PostPaid",
                    system_disk_category="cloud_essd",
                    system_disk_size=args.system_disk_gb,
                    # On for every family, dev's burstable one included. Whether ecs.t6 takes an encrypted system disk
                    # could not be confirmed offline (docs/settings.md, checking zones and instance types): a refusal
                    # fails the server's creation, before any old server is touched, never leaves a disk unencrypted.
                    system_disk_encrypted=True,
                    # Metadata only through session tokens, which a forged request from the app cannot obtain.
                    http_tokens="required",
                    # No password is ever set, so login is by key pair (if one is named) or not at all.
                    key_name=args.key_pair_name,
                    user_data=boot_config,
                    # Servers are replaced on every release, so nothing may block deleting the old one.
                    deletion_protection=False,
                    tags={**args.tags, "zone": placement.zone_id, "role": "app"},
                    volume_tags={**args.tags, "zone": placement.zone_id},
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        replace_on_changes=_REPLACE_ON_CHANGES,
                        delete_before_replace=False,
                        depends_on=[previous_gate] if previous_gate else None,
                    ),
                )
                # One attachment per server, so that a replacement server gets its role without touching the others.
                role_attachment = alicloud.ecs.RamRoleAttachment(
                    f"{name}-{placement.label}{index}-role",
                    instance_id=server.id,
                    ram_role_name=role.role_name,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
                )
                attachments.append(role_attachment)
                if zone_index == 0 and index == 1:
                    # The schema migration of the release, on this new server: it has the new version's code and
                    # migrations, the VPC address RDS whitelists, and (through its role) the password. It waits for
                    # the database and account (their outputs) and for the role to be attached; a failure stops the
                    # update here, before any new server serves and before any old one is touched.
                    migration = SchemaMigration(
                        f"{name}-{placement.label}-migration",
                        SchemaMigrationArgs(
                            instance_id=server.id,
                            region=args.region,
                            timeout_seconds=args.migration_timeout_seconds,
                            database_name=args.database_name,
                            database_user=args.database_user,
                        ),
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[role_attachment]),
                    )
                attachments.append(
                    alicloud.slb.ServerGroupServerAttachment(
                        f"{name}-{placement.label}{index}-member",
                        server_group_id=args.server_group_id,
                        server_id=server.id,
                        port=args.app_port,
                        # Every input is ForceNew and the ID is group:server:port
                        # (terraform-provider-alicloud@81c43b6 resource_alicloud_slb_server_group_server_attachment.go):
                        # replacing a membership for the same server and port would add the backend (already there)
                        # and then remove it. So everything but group, server and port is a constant (no description),
                        # and a new port or group always comes with a new server (user data names the port).
                        weight=100,
                        type="ecs",
                        # A new server gets a new membership next to the old one; Pulumi removes the old membership
                        # at the end of a successful update, after every gate has passed.
                        # In the first zone, no server of the new version joins before the schema is migrated.
                        opts=pulumi.ResourceOptions(
                            parent=self,
                            replace_on_changes=["server_id"],
                            delete_before_replace=False,
                            depends_on=[migration] if zone_index == 0 and migration else None,
                        ),
                    )
                )
                servers.append(server)
            previous_gate = HealthGate(
                f"{name}-{placement.label}-healthy",
                HealthGateArgs(
                    load_balancer_id=args.load_balancer_id,
                    listener_port=args.listener_port,
                    server_ids=[s.id for s in servers],
                    region=args.region,
                    timeout_seconds=args.health_gate_timeout_seconds,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
            )
            self.server_ids[placement.label] = [s.id for s in servers]

        self.register_outputs({"server_ids": self.server_ids})
