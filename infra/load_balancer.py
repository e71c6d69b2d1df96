"""LoadBalancer: the classic SLB across both zones, its HTTP listener and health check, the EIP and the DNS record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

LISTENER_PORT = 80


@dataclass
class LoadBalancerArgs:
    name_prefix: str
    tags: Mapping[str, str]
    # An intranet CLB in a VPC lives in one VSwitch of its master zone and fails over to the standby zone.
    vswitch_id: pulumi.Input[str]
    master_zone_id: str
    standby_zone_id: str
    # Switched in place on the listener ahead of any new server: infra/guard.py refuses a change on a deployed stack.
    health_check_path: str
    eip_bandwidth_mbps: int
    # Provider-side deletion protection plus Pulumi `protect` on the SLB and the EIP (the address DNS points at).
    protect: bool
    domain: str | None = None
    sub_domain: str | None = None


class LoadBalancer(pulumi.ComponentResource):
    """An intranet CLB (master zone A, standby zone B) reached from the internet through an EIP and a DNS name."""

    slb_id: pulumi.Output[str]
    server_group_id: pulumi.Output[str]
    eip_address: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ha-webapp:index:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        guarded = pulumi.ResourceOptions(parent=self, protect=args.protect)
        tags = dict(args.tags)

        slb = alicloud.slb.ApplicationLoadBalancer(
            f"{name}-slb",
            load_balancer_name=f"{args.name_prefix}-slb",
            address_type="intranet",
            vswitch_id=args.vswitch_id,
            master_zone_id=args.master_zone_id,
            slave_zone_id=args.standby_zone_id,
            # Pay-by-specification CLBs can no longer be bought (since 2025-06-01); a new CLB is pay-by-CLCU, which has
            # no specification (the provider suppresses load_balancer_spec under PayByCLCU:
            # terraform-provider-alicloud@81c43b6 alicloud/resource_alicloud_slb_load_balancer.go, load_balancer_spec).
            payment_type="PayAsYouGo",
            instance_charge_type="PayByCLCU",
            delete_protection="on" if args.protect else "off",
            tags=tags,
            opts=guarded,
        )
        # App servers join this group one membership resource each (see AppTier), so that a release can add a new
        # server and remove an old one independently instead of rewriting one shared list.
        group = alicloud.slb.ServerGroup(
            f"{name}-servers",
            load_balancer_id=slb.id,
            name=f"{args.name_prefix}-app",
            tags=tags,
            opts=child,
        )
        listener = alicloud.slb.Listener(
            f"{name}-http",
            load_balancer_id=slb.id,
            protocol="http",
            frontend_port=LISTENER_PORT,
            server_group_id=group.id,
            description=f"{args.name_prefix}-http",  # letters, digits, - / . _ only
            health_check="on",
            # No health_check_connect_port: the check goes to each server on the port it joined the group with (CLB's
            # default, "the port of the backend server is used"; the provider sends HealthCheckConnectPort only when
            # set: terraform-provider-alicloud@81c43b6 resource_alicloud_slb_listener.go l.670-675, l.937-939). So a
            # new app port never touches the listener: new servers join on the new port and are checked there, old
            # ones keep theirs until they leave. A pinned port here would switch in place at the start of `pulumi up`,
            # before any new server exists, and fail every old server in both zones.
            health_check_uri=args.health_check_path,
            health_check_http_code="http_2xx",
            health_check_interval=2,
            health_check_timeout=5,
            healthy_threshold=3,
            unhealthy_threshold=3,
            sticky_session="off",
            opts=child,
        )

        eip = alicloud.ecs.EipAddress(
            f"{name}-eip",
            address_name=f"{args.name_prefix}-eip",
            payment_type="PayAsYouGo",
            internet_charge_type="PayByTraffic",
            bandwidth=str(args.eip_bandwidth_mbps),
            isp="BGP",
            deletion_protection=args.protect,
            description=f"{args.name_prefix}-public-address",
            tags=tags,
            opts=guarded,
        )
        alicloud.ecs.EipAssociation(
            f"{name}-eip-slb",
            allocation_id=eip.id,
            instance_id=slb.id,
            instance_type="SlbInstance",
            # allocation_id and instance_id are ForceNew, and so are the SLB's VSwitch and zones (provider
            # @81c43b6: resource_alicloud_eip_association.go, resource_alicloud_slb_load_balancer.go). An EIP is bound
            # to one instance at a time: on an SLB replacement the new association would be created while the EIP is
            # still bound to the old SLB, and fail. Unbinding first, then binding to the new SLB (created before,
            # deleted after) makes a replacement work; the address is dark between the two calls, which a replaced
            # SLB (new listener, new members) is anyway.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        if args.domain and args.sub_domain:
            alicloud.dns.AlidnsRecord(
                f"{name}-dns",
                domain_name=args.domain,
                rr=args.sub_domain,
                type="A",
                value=eip.ip_address,
                ttl=600,
                remark=f"{args.name_prefix}-managed-by-pulumi",
                opts=child,
            )
            self.url = pulumi.Output.from_input(f"http://{args.sub_domain}.{args.domain}")
        else:
            self.url = eip.ip_address.apply(lambda ip: f"http://{ip}")

        self.slb_id = slb.id
        # Membership changes and listener changes on one CLB conflict when they run at the same time (the provider's
        # note on ServerGroupServerAttachment); carrying the listener in this output makes every member wait for it.
        self.server_group_id = pulumi.Output.all(group.id, listener.id).apply(lambda ids: ids[0])
        self.eip_address = eip.ip_address
        self.register_outputs(
            {
                "slb_id": self.slb_id,
                "server_group_id": self.server_group_id,
                "eip_address": self.eip_address,
                "url": self.url,
            }
        )
