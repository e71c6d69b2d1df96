"""Refuse settings changes that `pulumi up` would apply in a harmful order, relative to what the stack deployed.

Two kinds, both read back from the stack's own last outputs before a single resource is created:

- On a protected stack, a change that would replace the network or the database. The zones and CIDRs are ForceNew for
  the VSwitches and the RDS instance, and the VPC CIDR and database name for the VPC and the database: changing them
  would make `pulumi up` build a new network or database next to the old one and then delete the old one, with its
  data. Refused unless `ha-webapp:allowReplacement` is set for that update.
- On every deployed stack, a change of the health-check path. The listener's `health_check_uri` is updated in place at
  the start of `pulumi up` (terraform-provider-alicloud@81c43b6 resource_alicloud_slb_listener.go: not ForceNew, sent
  by SetLoadBalancerHTTPListenerAttribute when it changes), before any new server exists, so every server in service
  that does not answer the new path leaves the load balancer within seconds, in both zones. Refused unless
  `ha-webapp:allowHealthCheckChange` is set for the one update that makes it, after a release whose image answers
  both paths. (A change of the app port needs no guard: the listener checks every server on the port it joined with,
  see infra/load_balancer.py, and new servers join on the new port while the old ones keep theirs until they leave.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

from infra.config import Problem, Settings, SettingsError

PINS_OUTPUT = "replacement_pins"
HEALTH_CHECK_OUTPUT = "health_check_pins"


def pins(settings: Settings) -> dict[str, Any]:
    """The settings whose change replaces the VPC, a VSwitch, the RDS instance or the database."""
    return {
        "network.vpcCidr": settings.network.vpc_cidr,
        **{f"network.zones[{i}].id": zone.id for i, zone in enumerate(settings.network.zones)},
        **{f"network.zones[{i}].vswitchCidr": zone.vswitch_cidr for i, zone in enumerate(settings.network.zones)},
        "database.name": settings.database.name,
    }


def health_check_pins(settings: Settings) -> dict[str, Any]:
    """The settings the load balancer's health check takes in place, ahead of any new server."""
    return {"app.healthCheckPath": settings.app.health_check_path}


def guard_problems(settings: Settings, deployed: Mapping[str, Any] | None) -> list[Problem]:
    """What would replace the network or the database of a protected stack, relative to what is deployed."""
    if not settings.protect or settings.allow_replacement or not deployed:
        return []
    project = settings.project
    return [
        Problem(
            f"{project}:{key}",
            f"is {deployed[key]!r} in the deployed stack; changing it to {value!r} would replace the "
            f"{'database' if key.startswith('database') else 'network and the database in it'} of protected stack "
            f"'{settings.stack}' (data loss and downtime). If that is intended, set {project}:allowReplacement to "
            "true for this one update, after a backup.",
        )
        for key, value in pins(settings).items()
        if key in deployed and deployed[key] != value
    ]


def health_check_problems(settings: Settings, deployed: Mapping[str, Any] | None) -> list[Problem]:
    """A health-check path that differs from the deployed one, on any stack, unless allowed for this update."""
    if settings.allow_health_check_change or not deployed:
        return []
    project = settings.project
    return [
        Problem(
            f"{project}:{key}",
            f"is {deployed[key]!r} in the deployed stack. Changing it to {value!r} switches the load balancer's "
            "health check in place at the start of `pulumi up`, before any new server exists: every server in "
            f"service that does not answer {value!r} with 2xx leaves the load balancer within seconds, in both zones "
            f"(the site goes down). Do it in two updates: first release an image whose app answers both "
            f"{deployed[key]!r} and {value!r}, with this setting unchanged; then change it, with "
            f"{project}:allowHealthCheckChange set to true for that one update.",
        )
        for key, value in health_check_pins(settings).items()
        if key in deployed and deployed[key] != value
    ]


def deployed_outputs(settings: Settings, names: tuple[str, ...]) -> dict[str, Mapping[str, Any] | None]:
    """These outputs of this stack as last deployed, read back from its own state (None: never exported)."""
    name = f"{pulumi.get_organization()}/{settings.project}/{settings.stack}"
    reference = pulumi.StackReference(f"{settings.name_prefix}-deployed", stack_name=name)
    found: dict[str, Mapping[str, Any] | None] = {}
    for output in names:
        # Wait here, synchronously (as the SDK's own synchronous invokes do), so that nothing is registered before
        # the comparison is done.
        details = _sync_await(reference.get_output_details(output))
        value = details.value if details.value is not None else details.secret_value
        found[output] = value if isinstance(value, Mapping) else None
    return found


def check(settings: Settings) -> None:
    """Raise SettingsError if these settings would replace the network or database of a protected stack, or switch
    the health check of a deployed stack ahead of its servers."""
    wanted = []
    if settings.protect and not settings.allow_replacement:
        wanted.append(PINS_OUTPUT)
    if not settings.allow_health_check_change:
        wanted.append(HEALTH_CHECK_OUTPUT)
    if not wanted:
        return
    deployed = deployed_outputs(settings, tuple(wanted))
    problems = guard_problems(settings, deployed.get(PINS_OUTPUT)) + health_check_problems(
        settings, deployed.get(HEALTH_CHECK_OUTPUT)
    )
    if problems:
        raise SettingsError(settings.stack, problems)
