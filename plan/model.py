"""The plan's one shape: what `--format json` writes, what the text tree is printed from, and plan/plan.schema.json.

Inputs are classified as a whole: one that holds a secret anywhere is `secret` (its value is never written), one that
holds a value the cloud computes is `unknown` (with the resources it is computed from), anything else is `known`.
Inputs whose names start with "__" belong to the SDK (a dynamic provider's pickled code) and are left out.
"""

from __future__ import annotations

import heapq
from typing import Annotated, Any, Literal

from pulumi.output import Unknown
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from plan.offline import Evaluation, Resource, is_secret


class _Model(BaseModel):
    # Every field is always written, so the schema marks every field required, defaults included.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        json_schema_serialization_defaults_required=True,
    )


class KnownValue(_Model):
    """An input whose whole value is known before the deployment."""

    kind: Literal["known"] = "known"
    value: JsonValue


class UnknownValue(_Model):
    """An input the cloud computes during the deployment: `(known after deploy)`."""

    kind: Literal["unknown"] = "unknown"
    depends_on: list[str] = Field(description="URNs of the resources the value is computed from")


class SecretValue(_Model):
    """A secret input (or one with a secret inside): its value is never written."""

    kind: Literal["secret"] = "secret"
    depends_on: list[str] = Field(description="URNs of the resources the value is computed from")


InputValue = Annotated[KnownValue | UnknownValue | SecretValue, Field(discriminator="kind")]


class PlannedResource(_Model):
    """One resource the stack would create, with its resource options as the engine would receive them."""

    urn: str
    type: str
    name: str
    custom: bool = Field(description="false for a component, which only groups its children")
    parent: str | None = Field(description="URN of the parent resource; the stack itself is not listed")
    protect: bool
    replace_on_changes: list[str]
    delete_before_replace: bool
    ignore_changes: list[str]
    dependencies: list[str] = Field(description="URNs this resource waits for")
    property_dependencies: dict[str, list[str]] = Field(description="per input, the URNs its value comes from")
    inputs: dict[str, InputValue]


class ZoneLoss(_Model):
    """What still serves one stack when everything in one zone is gone."""

    zone: str
    serves: bool
    servers_left: int = Field(description="app servers outside the zone that the load balancer sends traffic to")
    servers_serving: int = Field(description="app servers the load balancer sends traffic to before the loss")
    load_balancer: str
    database: str
    entry: str = Field(description="the public entry: EIP and DNS records")
    problems: list[str]


class Edge(_Model):
    """How the public entry answers: HTTPS (its TLS policy, where its certificate comes from) or HTTP only."""

    https: bool
    tls_policy: str | None = Field(description="the HTTPS listener's TLS policy; null without HTTPS")
    certificate: Literal["cas", "uploaded", "none"] = Field(description="where the HTTPS certificate comes from")
    http_redirects_to_https: bool
    summary: str = Field(description='one line, e.g. "HTTPS on 443 (...); HTTP on 80 redirects" or "HTTP only"')


class Alarm(_Model):
    """One CloudMonitor alarm rule of the stack."""

    name: str
    namespace: str
    metric: str
    condition: str = Field(description='e.g. "Average > 80 for 3 periods of 300 s"')
    level: Literal["critical", "warn", "info"]
    contact_groups: list[str]


class StackPlan(_Model):
    """Everything one stack would create, in creation order (parents before children)."""

    stack: str
    project: str
    root: str = Field(description="URN of the stack resource, the parent of the top-level components")
    resources: list[PlannedResource]
    counts: dict[str, int] = Field(description="number of resources per type")
    outputs: dict[str, InputValue]
    zone_loss: list[ZoneLoss]
    edge: Edge
    alarms: list[Alarm]
    warnings: list[str]


class Plan(_Model):
    """The offline plan of one or more stacks (`python -m plan --format json`)."""

    format_version: Literal[1] = Field(1, description="changes when a consumer would have to change")
    stacks: list[StackPlan]
    zone_loss_passed: bool = Field(description="true when every stack serves after the loss of any one zone")


def input_value(raw: Any, depends_on: list[str]) -> KnownValue | UnknownValue | SecretValue:
    if _contains(raw, lambda v: is_secret(v)):
        return SecretValue(depends_on=depends_on)
    if _contains(raw, lambda v: isinstance(v, Unknown)):
        return UnknownValue(depends_on=depends_on)
    return KnownValue(value=_json(raw))


def _contains(value: Any, match: Any) -> bool:
    if match(value):
        return True
    if isinstance(value, dict):
        return any(_contains(v, match) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, match) for v in value)
    return False


def _json(value: Any) -> JsonValue:
    # The wire format has only doubles: 80.0 is the integer 80 the program passed.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def planned_resource(resource: Resource) -> PlannedResource:
    public = {k: v for k, v in resource.inputs.items() if not k.startswith("__")}
    property_dependencies = {
        key: sorted(set(urns))
        for key, urns in sorted(resource.property_dependencies.items())
        if urns and not key.startswith("__")
    }
    return PlannedResource(
        urn=resource.urn,
        type=resource.type,
        name=resource.name,
        custom=resource.custom,
        parent=resource.parent,
        protect=resource.protect,
        replace_on_changes=list(resource.replace_on_changes),
        delete_before_replace=resource.delete_before_replace,
        ignore_changes=list(resource.ignore_changes),
        dependencies=sorted(set(resource.dependencies)),
        property_dependencies=property_dependencies,
        inputs={key: input_value(value, property_dependencies.get(key, [])) for key, value in sorted(public.items())},
    )


def stack_plan(ev: Evaluation, project: str, zone_loss: list[ZoneLoss], edge: Edge, alarms: list[Alarm]) -> StackPlan:
    resources = creation_order(ev.resources)
    counts: dict[str, int] = {}
    for resource in resources:
        counts[resource.type] = counts.get(resource.type, 0) + 1
    outputs = {name: _output(ev, name) for name in sorted(ev.exports)}
    known = {r.urn for r in resources}
    roots = {r.parent for r in resources if r.parent and r.parent not in known}
    return StackPlan(
        stack=ev.stack,
        project=project,
        root=roots.pop()
        if len(roots) == 1
        else f"urn:pulumi:{ev.stack}::{project}::pulumi:pulumi:Stack::{project}-{ev.stack}",
        resources=[planned_resource(r) for r in resources],
        counts=dict(sorted(counts.items())),
        outputs=outputs,
        zone_loss=zone_loss,
        edge=edge,
        alarms=alarms,
        warnings=list(ev.warnings),
    )


def _output(ev: Evaluation, name: str) -> KnownValue | UnknownValue | SecretValue:
    if name in ev.secret_exports:
        return SecretValue(depends_on=[])
    if name in ev.unknown_exports:
        return UnknownValue(depends_on=[])
    return input_value(ev.exports[name], [])


def creation_order(resources: list[Resource]) -> list[Resource]:
    """Resources as a tree in an order the engine could create them: dependencies first, ties by name.

    Each resource comes after its parent, and a component comes where its first child would be created, so that
    reading the list top to bottom follows the tree. Registration order is not used: it follows the program's
    asynchronous resolution and can differ between runs.
    """
    by_urn = {r.urn: r for r in resources}
    rank = _dependency_rank(resources, by_urn)
    children: dict[str | None, list[Resource]] = {}
    for resource in resources:
        parent = resource.parent if resource.parent in by_urn else None
        children.setdefault(parent, []).append(resource)

    first: dict[str, int] = {}

    def first_created(resource: Resource) -> int:
        if resource.urn not in first:
            below = [first_created(child) for child in children.get(resource.urn, [])]
            # A component creates nothing itself: it stands where its first child is created.
            first[resource.urn] = min(below) if below and not resource.custom else rank[resource.urn]
        return first[resource.urn]

    ordered: list[Resource] = []

    def visit(parent: str | None) -> None:
        for child in sorted(children.get(parent, []), key=lambda r: (first_created(r), r.name)):
            ordered.append(child)
            visit(child.urn)

    visit(None)
    return ordered


def _dependency_rank(resources: list[Resource], by_urn: dict[str, Resource]) -> dict[str, int]:
    waits_for = {r.urn: {u for u in r.dependencies if u in by_urn} for r in resources}
    dependents: dict[str, list[str]] = {}
    for urn, needed in waits_for.items():
        for other in needed:
            dependents.setdefault(other, []).append(urn)
    ready = [(by_urn[u].name, u) for u, needed in waits_for.items() if not needed]
    heapq.heapify(ready)
    rank: dict[str, int] = {}
    while ready:
        _, urn = heapq.heappop(ready)
        rank[urn] = len(rank)
        for dependent in dependents.get(urn, []):
            waits_for[dependent].discard(urn)
            if not waits_for[dependent]:
                heapq.heappush(ready, (by_urn[dependent].name, dependent))
    # A real program cannot register a dependency cycle; rank anything left last rather than drop it.
    for resource in resources:
        rank.setdefault(resource.urn, len(rank))
    return rank
