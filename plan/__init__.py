"""Offline plan: what each stack would create, whether it survives the loss of a zone, and its architecture picture.

`python -m plan [STACK ...]` evaluates the real program per stack under the mock runtime (no cloud account, no
state backend, no Pulumi CLI) in preview mode, so values the cloud computes stay unknown as in `pulumi preview`.
`offline` is the evaluator; the other modules turn evaluations into the plan, its text, JSON and pictures.

May import the program (`infra`); the program never imports this package.
"""

from __future__ import annotations

from plan.audit import alarms, audit, edge
from plan.model import Plan, stack_plan
from plan.offline import Evaluation


def plan_of(evaluations: list[Evaluation], project: str) -> Plan:
    """The plan of evaluated stacks, each with its zone-loss audit, how its entry answers, and its alarms."""
    stacks = [stack_plan(ev, project, audit(ev), edge(ev), alarms(ev)) for ev in evaluations]
    return Plan(stacks=stacks, zone_loss_passed=all(loss.serves for s in stacks for loss in s.zone_loss))
