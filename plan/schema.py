"""plan/plan.schema.json, the JSON Schema of `python -m plan --format json`, generated from the plan's models.

Regenerate after changing plan/model.py: `python -m plan.schema` (a test fails while it is stale).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from plan.model import Plan

SCHEMA_PATH = Path(__file__).resolve().parent / "plan.schema.json"


def schema() -> dict[str, Any]:
    document = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    document.update(Plan.model_json_schema(by_alias=True, mode="serialization"))
    return document


def schema_text() -> str:
    return json.dumps(schema(), indent=2) + "\n"


def main() -> int:
    SCHEMA_PATH.write_text(schema_text())
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
