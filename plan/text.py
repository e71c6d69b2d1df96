"""The plan for a terminal or a CI log: a `pulumi preview`-like tree, counts per type, outputs, the zone-loss table."""

from __future__ import annotations

import re
from collections.abc import Iterator

from plan.model import KnownValue, Plan, PlannedResource, SecretValue, StackPlan, UnknownValue

# The inputs a reviewer checks before a deployment (placement, addressing, sizes, ports, health check, protection,
# who may read which secret, the release gates); every input is in the JSON plan.
REVIEWED_INPUTS = re.compile(
    r"zone|cidr|securityIps|vswitchId|instanceType|imageId|port|healthCheck|healthy|protocol|protection|engine"
    r"|category|spec$|bandwidth|storage|retention|^rr$|^type$|^domainName$|^value$|^serverId$"
    r"|^serverGroupId$|^instanceId$|^allocationId$|^serverIds$|timeoutSeconds|roleName$|policyDocument|secretName"
    r"|secretParameterName|sslAction|forceEncryption"
    r"|httpTokens|systemDiskEncrypted"
    r"|tlsCipherPolicy|listenerForward|forwardPort|serverCertificateId|alicloudCertificate|^metric$|^project$"
    r"|^escalations|silenceTime|contactGroups|metricDimensions|^channels|^contacts$",
    re.IGNORECASE,
)
KNOWN_AFTER_DEPLOY = "(known after deploy)"
SECRET = "[secret]"


class Style:
    """ANSI colours, or none (when the output is not a terminal)."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def _paint(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def create(self, text: str) -> str:
        return self._paint("32", text)

    def quiet(self, text: str) -> str:
        return self._paint("2", text)

    def bold(self, text: str) -> str:
        return self._paint("1", text)

    def bad(self, text: str) -> str:
        return self._paint("1;31", text)

    def good(self, text: str) -> str:
        return self._paint("32", text)


def render(plan: Plan, style: Style) -> str:
    parts = [render_stack(stack, style) for stack in plan.stacks]
    parts.append(render_audit(plan, style))
    return "\n".join(parts)


def render_stack(stack: StackPlan, style: Style) -> str:
    names = {r.urn: r.name for r in stack.resources}
    custom = sum(1 for r in stack.resources if r.custom)
    lines = [style.bold(f"Stack {stack.stack}: {len(stack.resources)} resources to create ({custom} cloud resources)")]
    lines.append(f"{style.create('+')} pulumi:pulumi:Stack  {stack.project}-{stack.stack}")
    children: dict[str | None, list[PlannedResource]] = {}
    for resource in stack.resources:
        children.setdefault(resource.parent, []).append(resource)
    lines += _tree(children, stack.root, "", names, style)
    lines.append("")
    lines.append("  Resources by type:")
    width = max((len(str(n)) for n in stack.counts.values()), default=1)
    lines += [f"    {count:>{width}}  {type_token}" for type_token, count in stack.counts.items()]
    if stack.outputs:
        lines.append("")
        lines.append("  Outputs:")
        key_width = max(len(k) for k in stack.outputs)
        lines += [
            f"    {key:<{key_width}}  {_value(value, names, style)}" for key, value in sorted(stack.outputs.items())
        ]
    lines.append("")
    lines.append(f"  Entry: {stack.edge.summary}")
    if stack.alarms:
        lines.append("  Alarms:")
        lines += [f"    {a.name}  {a.namespace} {a.metric} {a.condition} [{a.level}]" for a in stack.alarms]
    else:
        lines.append(style.bad("  Alarms: none"))
    for warning in stack.warnings:
        lines.append(style.bad(f"  warning: {warning}"))
    lines.append("")
    return "\n".join(lines)


def _tree(
    children: dict[str | None, list[PlannedResource]], parent: str, indent: str, names: dict[str, str], style: Style
) -> Iterator[str]:
    siblings = children.get(parent, [])
    for index, resource in enumerate(siblings):
        last = index == len(siblings) - 1
        branch = "└─" if last else "├─"
        yield f"{indent}{branch} {style.create('+')} {resource.type}  {resource.name}{_options(resource)}"
        below = indent + ("   " if last else "│  ")
        details = below + ("│  " if resource.urn in children else "   ")
        shown = {k: v for k, v in resource.inputs.items() if REVIEWED_INPUTS.search(k) or isinstance(v, SecretValue)}
        width = max((len(k) for k in shown), default=0)
        for key, value in shown.items():
            yield style.quiet(f"{details}  {key:<{width}}  ") + _value(value, names, style)
        yield from _tree(children, resource.urn, below, names, style)


def _options(resource: PlannedResource) -> str:
    flags = []
    if resource.protect:
        flags.append("protected")
    if resource.replace_on_changes:
        flags.append(f"replace on changes to {', '.join(resource.replace_on_changes)}")
    if resource.delete_before_replace:
        flags.append("delete before replace")
    if resource.ignore_changes:
        flags.append(f"ignores changes to {', '.join(resource.ignore_changes)}")
    return f"  [{'; '.join(flags)}]" if flags else ""


def _value(value: KnownValue | UnknownValue | SecretValue, names: dict[str, str], style: Style) -> str:
    if isinstance(value, KnownValue):
        return _plain(value.value)
    sources = ", ".join(names.get(urn, urn) for urn in value.depends_on)
    text = SECRET if isinstance(value, SecretValue) else KNOWN_AFTER_DEPLOY
    return style.quiet(text + (f" <- {sources}" if sources else ""))


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    return str(value)


AUDIT_COLUMNS = ("stack", "zone lost", "app servers left", "load balancer", "database", "entry", "verdict")


def render_audit(plan: Plan, style: Style) -> str:
    rows = [
        (
            stack.stack,
            loss.zone,
            f"{loss.servers_left} of {loss.servers_serving}",
            loss.load_balancer,
            loss.database,
            loss.entry,
            "serves" if loss.serves else "DOWN",
        )
        for stack in plan.stacks
        for loss in stack.zone_loss
    ]
    widths = [max(len(row[i]) for row in [AUDIT_COLUMNS, *rows]) for i in range(len(AUDIT_COLUMNS))]
    lines = [style.bold("Zone-loss audit: each zone of each stack removed in turn")]
    lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(AUDIT_COLUMNS, widths, strict=True)).rstrip())
    for row in rows:
        text = "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        lines.append(style.good(text) if row[-1] == "serves" else style.bad(text))
    problems = [(stack.stack, loss) for stack in plan.stacks for loss in stack.zone_loss if not loss.serves]
    for stack_name, loss in problems:
        lines += [f"  {stack_name}, {loss.zone} lost: {problem}" for problem in loss.problems]
    lines.append(style.bold("Edge audit: how each stack answers the internet"))
    for stack in plan.stacks:
        text = f"  {stack.stack}: {stack.edge.summary}"
        secure = stack.edge.https and stack.edge.http_redirects_to_https
        lines.append(style.good(text) if secure else style.bad(text))
    verdict = "passed" if plan.zone_loss_passed else "FAILED"
    failed = sorted({name for name, _ in problems})
    lines.append(
        style.good(f"Zone-loss audit {verdict}: every stack survives the loss of any one zone.")
        if plan.zone_loss_passed
        else style.bad(f"Zone-loss audit {verdict} for {', '.join(failed)}.")
    )
    return "\n".join(lines) + "\n"
