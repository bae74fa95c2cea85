"""The run folder's JSON Schemas, generated from the record models (never written by hand).

`python3 -m harness.model.schemas --write` regenerates harness/report/schemas/; without
`--write` it exits 1 when a committed schema differs from its model, which is what
tests/model/test_records.py checks in CI. Each schema is pydantic's own
`model_json_schema()` plus the draft and the `$id` it is published under.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from harness.durable import write_atomic
from harness.model.case_records import CaseRunRecord, IterationRecord
from harness.model.records import ResultRecord, RunRecord

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "report" / "schemas"
SCHEMA_BASE_URL = "https://board-harness.example/schemas/"

SCHEMAS: dict[str, type[BaseModel]] = {
    "result.schema.json": ResultRecord,
    "run.schema.json": RunRecord,
    "case-iteration.schema.json": IterationRecord,
    "case-run.schema.json": CaseRunRecord,
}


def json_schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    """The published schema of `model`: pydantic's, plus the draft and the id it is found under."""
    generated = model.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE_URL + name,
        **generated,
    }


def schema_texts() -> dict[str, str]:
    return {
        name: json.dumps(json_schema(model, name), indent=2, sort_keys=True) + "\n"
        for name, model in SCHEMAS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m harness.model.schemas",
        description="Regenerate (--write) or check the JSON Schemas in harness/report/schemas/.",
    )
    parser.add_argument("--write", action="store_true", help="write the schemas")
    args = parser.parse_args(argv)
    stale = []
    for name, text in schema_texts().items():
        path = SCHEMA_DIR / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.write:
            write_atomic(path, text)
            print(f"wrote {path}")
        else:
            stale.append(name)
    if stale:
        print(
            f"out of date: {', '.join(stale)}; run python3 -m harness.model.schemas --write",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
