"""AppTier: the app servers of every zone, booted from the Packer image, each a member of the SLB's server group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

from infra import user_data


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
    # Written to the server's environment file at boot; may hold secrets, so the user data is always secret.
    runtime_settings: Mapping[str, pulumi.Input[str]]
    key_pair_name: str | None = None


class AppTier(pulumi.ComponentResource):
    """N app servers per zone, private only, password login off, each behind the load balancer."""

    server_ids: dict[str, list[pulumi.Output[str]]]

    def __init__(self, name: str, args: AppTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ha-webapp:index:AppTier", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        boot_config: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(**args.runtime_settings).apply(
                lambda settings: user_data.encode(user_data.cloud_config(settings))
            )
        )

        self.server_ids = {}
        for placement in args.placements:
            ids = []
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
                    system_disk_encrypted=True,
                    # Metadata only through session tokens, which a forged request from the app cannot obtain.
                    http_tokens="required",
                    # No password is ever set, so login is by key pair (if one is named) or not at all.
                    key_name=args.key_pair_name,
                    user_data=boot_config,
                    tags={**args.tags, "zone": placement.zone_id, "role": "app"},
                    volume_tags={**args.tags, "zone": placement.zone_id},
                    opts=child,
                )
                alicloud.slb.ServerGroupServerAttachment(
                    f"{name}-{placement.label}{index}-member",
                    server_group_id=args.server_group_id,
                    server_id=server.id,
                    port=args.app_port,
                    weight=100,
                    type="ecs",
                    description=server_name,
                    opts=child,
                )
                ids.append(server.id)
            self.server_ids[placement.label] = ids

        self.register_outputs({"server_ids": self.server_ids})
