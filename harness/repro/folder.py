"""A repro run's folder: the same layout and durability rules as a certification run's
(harness/report/runfolder.py: results.jsonl appended and fsync'd per line, run.json written
atomically, a torn last line ignored on resume), holding repro records (records.py) instead of
certification ones."""

from __future__ import annotations

import json
import os
from typing import Any

from harness.report.runfolder import RUN_JSON, RunFolder


class ReproFolder(RunFolder):
    """results.jsonl holds one iteration per line; run.json is a repro `RunRecord` (as dicts:
    the repro session validates them with its own models)."""

    def append_result(self, record: dict[str, Any]) -> None:  # type: ignore[override]
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        with open(self.results_file, "a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())

    def read_results(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """Every complete line; a torn (unterminated or unparsable) last line is ignored."""
        if not self.results_file.exists():
            return []
        lines = self.results_file.read_bytes().split(b"\n")
        records = []
        for index, line in enumerate(lines):
            if not line.strip() or index == len(lines) - 1:
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def write_run_json(self, data: dict[str, Any]) -> None:
        self.write_json(RUN_JSON, data)

    def read_run_json(self) -> dict[str, Any]:
        return json.loads((self.path / RUN_JSON).read_text(encoding="utf-8"))
