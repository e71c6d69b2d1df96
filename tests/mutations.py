"""Deliberately broken copies of an evaluated stack, to see each check fail."""

from __future__ import annotations

import dataclasses
from typing import Any

from plan.offline import Evaluation


def changed(ev: Evaluation, name: str, inputs: dict[str, Any] | None = None, **fields: Any) -> Evaluation:
    """A copy of `ev` in which resource `name` has other inputs (None removes one) or other options."""
    resources = []
    hits = 0
    for r in ev.resources:
        if r.name == name:
            hits += 1
            new_inputs = {**r.inputs, **(inputs or {})}
            r = dataclasses.replace(r, inputs={k: v for k, v in new_inputs.items() if v is not None}, **fields)
        resources.append(r)
    assert hits == 1, f"no single resource named {name}"
    return dataclasses.replace(ev, resources=resources)


def without(ev: Evaluation, name: str) -> Evaluation:
    assert any(r.name == name for r in ev.resources), name
    return dataclasses.replace(ev, resources=[r for r in ev.resources if r.name != name])


def plain(ev: Evaluation, name: str, key: str) -> Evaluation:
    """Make a secret input plain text."""
    resource = next(r for r in ev.resources if r.name == name)
    return changed(ev, name, {key: resource.value(key)})
