"""Refuse, on a protected stack, settings changes that would replace the network or the database.

The zones and CIDRs are ForceNew for the VSwitches and the RDS instance, and the VPC CIDR and database name are
ForceNew for the VPC and the database: changing them in `Pulumi.prod.yaml` would make `pulumi up` build a new
network or database next to the old one and then delete the old one, with its data. The program exports the values
it deployed (`replacement_pins`); on the next run it reads them back from its own stack and, on a protected stack,
refuses any difference before a single resource is created, unless `ha-webapp:allowReplacement` is set for that
update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

from infra.config import Problem, Settings, SettingsError

PINS_OUTPUT = "replacement_pins"


def pins(settings: Settings) -> dict[str, Any]:
    """The settings whose change replaces the VPC, a VSwitch, the RDS instance or the database."""
    return {
        "network.vpcCidr": settings.network.vpc_cidr,
        **{f"network.zones[{i}].id": zone.id for i, zone in enumerate(settings.network.zones)},
        **{f"network.zones[{i}].vswitchCidr": zone.vswitch_cidr for i, zone in enumerate(settings.network.zones)},
        "database.name": settings.database.name,
    }


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


def deployed_pins(settings: Settings) -> Mapping[str, Any] | None:
    """The pins this stack exported when it was last deployed, read back from its own state (None the first time)."""
    name = f"{pulumi.get_organization()}/{settings.project}/{settings.stack}"
    reference = pulumi.StackReference(f"{settings.name_prefix}-deployed", stack_name=name)
    # Wait here, synchronously (as the SDK's own synchronous invokes do), so that nothing is registered before the
    # comparison is done.
    details = _sync_await(reference.get_output_details(PINS_OUTPUT))
    value = details.value if details.value is not None else details.secret_value
    return value if isinstance(value, Mapping) else None


def check(settings: Settings) -> None:
    """Raise SettingsError if these settings would replace the network or database of a protected stack."""
    if not settings.protect or settings.allow_replacement:
        return
    problems = guard_problems(settings, deployed_pins(settings))
    if problems:
        raise SettingsError(settings.stack, problems)
