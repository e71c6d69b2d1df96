"""Network: the VPC, one VSwitch per zone, and the app servers' security group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud


@dataclass(frozen=True)
class Subnet:
    """One zone and the CIDR of its VSwitch; `label` ("a", "b") names the zone's role in logical names."""

    label: str
    zone_id: str
    cidr: str


@dataclass
class NetworkArgs:
    name_prefix: str
    tags: Mapping[str, str]
    vpc_cidr: str
    subnets: Sequence[Subnet]
    app_port: int
    # Where the load balancer's traffic and health checks come from; the only source allowed to reach the app port.
    lb_source_cidr: str
    # SSH stays closed unless an operator names the network it may come from.
    admin_cidr: str | None = None


class Network(pulumi.ComponentResource):
    """A VPC spanning two zones, with a security group that admits only the load balancer."""

    vpc_id: pulumi.Output[str]
    vswitch_ids: dict[str, pulumi.Output[str]]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ha-webapp:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        vpc = alicloud.vpc.Network(
            f"{name}-vpc",
            vpc_name=f"{args.name_prefix}-vpc",
            cidr_block=args.vpc_cidr,
            description=f"{args.name_prefix} web app",
            tags=tags,
            opts=child,
        )
        # The zone and CIDR of a VSwitch are ForceNew: both come pinned from stack config, never from a data source
        # whose answer could change and take the subnets (and the database in them) with it.
        switches = {
            s.label: alicloud.vpc.Switch(
                f"{name}-vsw-{s.label}",
                vswitch_name=f"{args.name_prefix}-vsw-{s.label}",
                vpc_id=vpc.id,
                zone_id=s.zone_id,
                cidr_block=s.cidr,
                tags={**tags, "zone": s.zone_id},
                opts=child,
            )
            for s in args.subnets
        }

        group = alicloud.ecs.SecurityGroup(
            f"{name}-sg",
            security_group_name=f"{args.name_prefix}-app",
            description="App servers: app port from the load balancer only",
            vpc_id=vpc.id,
            security_group_type="normal",
            # App servers never talk to each other; only the SLB and the operators reach them.
            inner_access_policy="Drop",
            tags=tags,
            opts=child,
        )

        def allow_tcp(suffix: str, port: int, source: str, description: str) -> None:
            alicloud.ecs.SecurityGroupRule(
                f"{name}-sg-{suffix}",
                security_group_id=group.id,
                type="ingress",
                ip_protocol="tcp",
                nic_type="intranet",
                policy="accept",
                priority=1,
                port_range=f"{port}/{port}",
                cidr_ip=source,
                description=description,
                opts=child,
            )

        allow_tcp("app-from-slb", args.app_port, args.lb_source_cidr, "App port from the classic load balancer")
        if args.admin_cidr is not None:
            allow_tcp("ssh-from-admin", 22, args.admin_cidr, "SSH from the operators' network")

        self.vpc_id = vpc.id
        self.vswitch_ids = {label: s.id for label, s in switches.items()}
        self.security_group_id = group.id
        self.register_outputs(
            {"vpc_id": self.vpc_id, "vswitch_ids": self.vswitch_ids, "security_group_id": self.security_group_id}
        )
