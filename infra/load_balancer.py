"""LoadBalancer: the classic SLB across both zones, its listeners (HTTPS with HTTP redirected to it, or HTTP only) and
health check, the server certificate, the EIP and the DNS record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_alicloud as alicloud

HTTP_PORT = 80
HTTPS_PORT = 443


@dataclass(frozen=True)
class CasCertificate:
    """A certificate in Certificate Management Service; UploadServerCertificate needs its ID, name and region."""

    id: str
    name: str
    region: str


@dataclass(frozen=True)
class HttpsListener:
    """HTTPS on 443 with one certificate (from CAS, or PEM text given as secrets) and a TLS 1.2+ policy."""

    tls_policy: str
    cas: CasCertificate | None = None
    certificate_pem: pulumi.Input[str] | None = None
    private_key_pem: pulumi.Input[str] | None = None


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
    # None: HTTP only on 80 (an explicit opt-out in the stack settings); otherwise HTTPS on 443, and 80 redirects.
    https: HttpsListener | None = None
    domain: str | None = None
    sub_domain: str | None = None


class LoadBalancer(pulumi.ComponentResource):
    """An intranet CLB (master zone A, standby zone B) reached from the internet through an EIP and a DNS name."""

    slb_id: pulumi.Output[str]
    server_group_id: pulumi.Output[str]
    eip_address: pulumi.Output[str]
    url: pulumi.Output[str]
    # The port of the listener that forwards to the app servers (and whose health the release gates read).
    serving_port: int

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
        # The health check of whichever listener forwards to the app servers; the same in meaning with or without HTTPS.
        # No health_check_connect_port: the check goes to each server on the port it joined the group with (CLB's
        # default, "the port of the backend server is used"; the provider sends HealthCheckConnectPort only when set:
        # terraform-provider-alicloud@81c43b6 resource_alicloud_slb_listener.go l.670-675, l.937-939). So a new app port
        # never touches the listener: new servers join on the new port and are checked there, old ones keep theirs
        # until they leave. A pinned port here would switch in place at the start of `pulumi up`, before any new
        # server exists, and fail every old server in both zones.
        health_check: dict[str, Any] = {
            "health_check": "on",
            "health_check_uri": args.health_check_path,
            "health_check_http_code": "http_2xx",
            "health_check_interval": 2,
            "health_check_timeout": 5,
            "healthy_threshold": 3,
            "unhealthy_threshold": 3,
        }
        if args.https is None:
            self.serving_port = HTTP_PORT
            serving = alicloud.slb.Listener(
                f"{name}-http",
                load_balancer_id=slb.id,
                protocol="http",
                frontend_port=HTTP_PORT,
                server_group_id=group.id,
                description=f"{args.name_prefix}-http",  # letters, digits, - / . _ only
                sticky_session="off",
                # Said explicitly: the provider keeps a value it read back (Computed), so leaving it unset would keep
                # a stack that turns HTTPS off redirecting to a listener that no longer exists.
                listener_forward="off",
                **health_check,
                # Turning HTTPS on or off replaces this listener on the same port (see the redirecting one below).
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
        else:
            self.serving_port = HTTPS_PORT
            certificate = self._certificate(name, args, args.https, tags)
            serving = alicloud.slb.Listener(
                f"{name}-https",
                load_balancer_id=slb.id,
                protocol="https",
                frontend_port=HTTPS_PORT,
                server_group_id=group.id,
                server_certificate_id=certificate.id,
                # The listener's default is tls_cipher_policy_1_0. A new listener gets its policy through the update
                # that follows creation (SetLoadBalancerHTTPSListenerAttribute), which the provider refuses only for
                # CLBs without a specification ("Shared-Performance"); a pay-by-CLCU CLB reads back as
                # slb.lcu.elastic (terraform-provider-alicloud@81c43b6 resource_alicloud_slb_listener.go l.738-753;
                # resource_alicloud_slb_load_balancer_test.go l.615-623).
                tls_cipher_policy=args.https.tls_policy,
                enable_http2="on",
                # Required for HTTPS listeners (slb_listener.html.markdown l.162); -1 is "no listener limit": the
                # EIP's bandwidth is the limit.
                bandwidth=-1,
                description=f"{args.name_prefix}-https",
                sticky_session="off",
                # The app learns that the client spoke HTTPS (X-Forwarded-Proto) and who the client is.
                # The client's address is always passed (`retrive_client_ip` is Computed only, "can not be modified,
                # and it default to true": terraform-provider-alicloud v1.285.0 resource_alicloud_slb_listener.go
                # l.283-287; the real provider refuses it as an input although the SDK offers it).
                x_forwarded_for=alicloud.slb.ListenerXForwardedForArgs(retrive_slb_proto=True),
                **health_check,
                opts=child,
            )
            alicloud.slb.Listener(
                f"{name}-http",
                load_balancer_id=slb.id,
                protocol="http",
                frontend_port=HTTP_PORT,
                # Redirect every request to HTTPS; with forwarding on, the provider sends only these and ignores every
                # other argument (slb_listener.html.markdown l.276; buildHttpForwardArgs,
                # resource_alicloud_slb_listener.go l.955-973): no server group and no health check of its own.
                listener_forward="on",
                forward_port=HTTPS_PORT,
                description=f"{args.name_prefix}-http-to-https",
                # It forwards to the HTTPS listener, which must exist first. listener_forward and forward_port are
                # ForceNew and a listener's ID is <slb>:<protocol>:<port>, so switching an existing HTTP listener to
                # redirecting replaces it on the same port: the old one must go first (delete before replace), or the
                # new one would find port 80 taken.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[serving], delete_before_replace=True),
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
        scheme = "http" if args.https is None else "https"
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
            self.url = pulumi.Output.from_input(f"{scheme}://{args.sub_domain}.{args.domain}")
        else:
            self.url = eip.ip_address.apply(lambda ip: f"{scheme}://{ip}")

        self.slb_id = slb.id
        # Membership changes and listener changes on one CLB conflict when they run at the same time (the provider's
        # note on ServerGroupServerAttachment); carrying the listener in this output makes every member wait for it.
        self.server_group_id = pulumi.Output.all(group.id, serving.id).apply(lambda ids: ids[0])
        self.eip_address = eip.ip_address
        self.register_outputs(
            {
                "slb_id": self.slb_id,
                "server_group_id": self.server_group_id,
                "eip_address": self.eip_address,
                "url": self.url,
            }
        )

    def _certificate(
        self, name: str, args: LoadBalancerArgs, https: HttpsListener, tags: dict[str, str]
    ) -> alicloud.slb.ServerCertificate:
        """The SLB server certificate the HTTPS listener presents: a reference to a CAS certificate, or the PEM pair."""
        # Every input is ForceNew (resource_alicloud_slb_server_certificate.go l.28-70): a new certificate is created,
        # the listener moves to it, then the old one is deleted (it could not be while a listener refers to it).
        certificate_name, child = f"{args.name_prefix}-certificate", pulumi.ResourceOptions(parent=self)
        if https.cas is not None:
            # UploadServerCertificate needs all three for a CAS certificate (CLB API reference, AliCloudCertificate*).
            return alicloud.slb.ServerCertificate(
                f"{name}-certificate",
                alicloud_certificate_id=https.cas.id,
                alicloud_certificate_name=https.cas.name,
                alicloud_certificate_region_id=https.cas.region,
                name=certificate_name,
                tags=tags,
                opts=child,
            )
        # The SDK marks no output of this resource secret; passing secret inputs keeps them encrypted in the state.
        return alicloud.slb.ServerCertificate(
            f"{name}-certificate",
            server_certificate=pulumi.Output.secret(https.certificate_pem),
            private_key=pulumi.Output.secret(https.private_key_pem),
            name=certificate_name,
            tags=tags,
            opts=child,
        )
