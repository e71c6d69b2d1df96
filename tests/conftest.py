"""Shared fixtures: each stack's program evaluated once under the Pulumi mock runtime (infra.offline)."""

from __future__ import annotations

import pytest

from infra.offline import Evaluation, evaluate

STACKS = ("dev", "preprod", "prod")


@pytest.fixture(scope="session")
def evaluations() -> dict[str, Evaluation]:
    """The real __main__.py run once per stack with that stack's own Pulumi.<stack>.yaml."""
    return {stack: evaluate(stack) for stack in STACKS}
