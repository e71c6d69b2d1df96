"""Offline plan: what each stack would create, whether it survives the loss of a zone, and its architecture picture.

`python -m infra.plan [STACK ...]` evaluates the real program per stack under the mock runtime (no cloud account, no
state backend, no Pulumi CLI) in preview mode, so values the cloud computes stay unknown as in `pulumi preview`.
"""

from __future__ import annotations

from infra.offline import Evaluation
from infra.plan.audit import audit
from infra.plan.model import Plan, stack_plan


def plan_of(evaluations: list[Evaluation], project: str) -> Plan:
    """The plan of evaluated stacks, each with its zone-loss audit."""
    stacks = [stack_plan(ev, project, audit(ev)) for ev in evaluations]
    return Plan(stacks=stacks, zone_loss_passed=all(loss.serves for s in stacks for loss in s.zone_loss))
