"""Alarms: CloudMonitor alarm rules on the load balancer, the database and the app servers, and who they reach."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_alicloud as alicloud

# CloudMonitor namespaces and metrics (CloudMonitor's metric lists for CLB, RDS MySQL and ECS). CLB reports backend
# health and status codes per instance with the instanceId dimension alone (CLB monitoring metrics:
# UnhealthyServerCount "instanceId", InstanceStatusCode5xx "instanceId", Count/Second).
SLB_NAMESPACE, RDS_NAMESPACE, ECS_NAMESPACE = "acs_slb_dashboard", "acs_rds_dashboard", "acs_ecs_dashboard"


@dataclass(frozen=True)
class Contact:
    """Someone the alarms reach: a label unique in the stack, an e-mail address, optionally a phone number."""

    label: str
    email: str
    sms: str | None = None


@dataclass(frozen=True)
class Thresholds:
    server_errors_per_second: int
    rds_cpu_percent: int
    rds_storage_percent: int
    rds_connections_percent: int
    app_cpu_percent: int


@dataclass
class AlarmsArgs:
    name_prefix: str
    tags: Mapping[str, str]
    contacts: Sequence[Contact]
    # A DingTalk chatbot URL carries its access token: a secret, given as one.
    webhook_url: pulumi.Input[str] | None
    # critical, warn or info: CloudMonitor notifies critical alarms by phone, SMS, e-mail and webhook, warn ones by
    # SMS, e-mail and webhook, info ones by e-mail and webhook.
    severity: str
    silence_seconds: int
    rules: Sequence[str]
    thresholds: Thresholds
    load_balancer_id: pulumi.Input[str]
    database_id: pulumi.Input[str]
    server_ids: Sequence[pulumi.Input[str]]
    # A zone's worth of app servers: the unhealthy count that a lost zone produces.
    servers_per_zone: int


_ONE_LEVEL_LOWER = {"critical": "warn", "warn": "info", "info": "info"}


@dataclass(frozen=True)
class _Rule:
    """One alarm: the metric, when it fires (statistic, operator, threshold, for `times` periods), and how loudly."""

    suffix: str
    namespace: str
    metric: str
    statistic: str
    operator: str
    threshold: int
    instance_ids: Sequence[pulumi.Input[str]]
    period: int
    times: int
    level: str


class Alarms(pulumi.ComponentResource):
    """One contact group for the stack and one alarm rule per watched condition, each sent to that group."""

    contact_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ha-webapp:index:Alarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        # A contact's ID is its name, account-wide (resource_alicloud_cms_alarm_contact.go l.95): names carry the stack.
        contacts = [
            alicloud.cms.AlarmContact(
                f"{name}-contact-{c.label}",
                alarm_contact_name=f"{args.name_prefix}-{c.label}",
                describe=f"{args.name_prefix} alarms",
                # The address receives an activation link; until it is followed, CloudMonitor sends it nothing and
                # reads it back empty, so the next preview shows a change here (cms_alarm_contact.html.markdown).
                channels_mail=c.email,
                channels_sms=c.sms,
                lang="en",
                opts=child,
            )
            for c in args.contacts
        ]
        if args.webhook_url is not None:
            contacts.append(
                alicloud.cms.AlarmContact(
                    f"{name}-contact-webhook",
                    alarm_contact_name=f"{args.name_prefix}-webhook",
                    describe=f"{args.name_prefix} alarms webhook",
                    # The SDK marks no output of AlarmContact secret: a secret input keeps the URL encrypted in state.
                    channels_ding_web_hook=pulumi.Output.secret(args.webhook_url),
                    lang="en",
                    opts=child,
                )
            )
        group = alicloud.cms.AlarmContactGroup(
            f"{name}-group",
            alarm_contact_group_name=f"{args.name_prefix}-alarms",
            contacts=[c.alarm_contact_name for c in contacts],
            describe=f"Everyone told about {args.name_prefix}",
            opts=child,
        )

        t, lb, db = args.thresholds, [args.load_balancer_id], [args.database_id]
        lower = _ONE_LEVEL_LOWER[args.severity]
        catalogue = {
            # Any backend unhealthy for 5 minutes: worth a look, not a page (a release's new server is briefly
            # unhealthy while it boots, and the health gate waits for it).
            "unhealthyBackend": _Rule("unhealthy-backend", SLB_NAMESPACE, "UnhealthyServerCount", "Maximum", ">=", 1,
                                      lb, 60, 5, lower),
            # CLB counts unhealthy backends per instance, not per zone; a zone's worth of unhealthy servers is what
            # the loss of a zone produces (and also half the capacity gone across both zones, just as urgent).
            "zoneUnhealthy": _Rule("zone-unhealthy", SLB_NAMESPACE, "UnhealthyServerCount", "Maximum", ">=",
                                   args.servers_per_zone, lb, 60, 2, args.severity),
            # 5xx answers per second (CLB has no ratio metric); the load balancer's own and the app's together.
            "http5xx": _Rule("http-5xx", SLB_NAMESPACE, "InstanceStatusCode5xx", "Average", ">",
                             t.server_errors_per_second, lb, 60, 3, args.severity),
            "rdsCpu": _Rule("rds-cpu", RDS_NAMESPACE, "CpuUsage", "Average", ">", t.rds_cpu_percent, db, 300, 3,
                            args.severity),
            "rdsStorage": _Rule("rds-storage", RDS_NAMESPACE, "DiskUsage", "Average", ">", t.rds_storage_percent, db,
                                300, 1, args.severity),
            "rdsConnections": _Rule("rds-connections", RDS_NAMESPACE, "ConnectionUsage", "Average", ">",
                                    t.rds_connections_percent, db, 300, 3, args.severity),
            # One rule over every app server; CloudMonitor evaluates each instance on its own.
            "appCpu": _Rule("app-cpu", ECS_NAMESPACE, "CPUUtilization", "Average", ">", t.app_cpu_percent,
                            list(args.server_ids), 60, 5, args.severity),
        }  # fmt: skip
        self.alarm_names: list[str] = []
        for rule in (catalogue[r] for r in args.rules):
            escalation: dict[str, Any] = {
                "statistics": rule.statistic,
                "comparison_operator": rule.operator,
                "threshold": str(rule.threshold),
                "times": rule.times,
            }
            critical = alicloud.cms.AlarmEscalationsCriticalArgs(**escalation) if rule.level == "critical" else None
            warn = alicloud.cms.AlarmEscalationsWarnArgs(**escalation) if rule.level == "warn" else None
            info = alicloud.cms.AlarmEscalationsInfoArgs(**escalation) if rule.level == "info" else None
            alicloud.cms.Alarm(
                f"{name}-{rule.suffix}",
                name=f"{args.name_prefix}-{rule.suffix}",
                project=rule.namespace,
                metric=rule.metric,
                # A JSON list of dimension sets, one per watched instance (resource_alicloud_cms_alarm.go l.51-60 and
                # l.616-617: sent as the Resources of PutResourceMetricRule).
                metric_dimensions=pulumi.Output.all(*rule.instance_ids).apply(
                    lambda ids: json.dumps([{"instanceId": i} for i in ids])
                ),
                period=rule.period,
                contact_groups=[group.alarm_contact_group_name],
                silence_time=args.silence_seconds,
                enabled=True,
                # Exactly one escalation level per alarm ("Each resource supports the creation of one of the following
                # three levels", cms_alarm.html.markdown); the threshold is a string in the SDK.
                escalations_critical=critical,
                escalations_warn=warn,
                escalations_info=info,
                tags=tags,
                opts=child,
            )
            self.alarm_names.append(f"{args.name_prefix}-{rule.suffix}")

        self.contact_group_name = group.alarm_contact_group_name
        self.register_outputs({"contact_group_name": self.contact_group_name})
