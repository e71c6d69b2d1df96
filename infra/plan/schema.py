"""docs/plan.schema.json, the JSON Schema of `python -m infra.plan --format json`, generated from the plan's models.

Regenerate after changing infra/plan/model.py: `python -m infra.plan.schema` (a test fails while it is stale).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from infra.offline import PROJECT_DIR
from infra.plan.model import Plan

SCHEMA_PATH = PROJECT_DIR / "docs" / "plan.schema.json"


def schema() -> dict[str, Any]:
    document = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    document.update(Plan.model_json_schema(by_alias=True, mode="serialization"))
    return document


def schema_text() -> str:
    return json.dumps(schema(), indent=2) + "\n"


def main() -> int:
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(schema_text())
    print(f"wrote {SCHEMA_PATH.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
