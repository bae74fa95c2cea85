"""The rows behind RESULTS.md, kept as JSON beside it so a later `--only ... --merge` run can
replace some rows and keep the others.

Each row records the run it came from (date, git revision, load average, mode), so a table
assembled from several runs says which row was measured when, and under what load.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.core import Row, Series, Target


@dataclass
class Provenance:
    """One `python3 -m bench` invocation: what a row was measured by."""

    started: str
    revision: str
    load_start: str
    load_end: str = ""
    seconds: float = 0.0
    quick: bool = False
    rows: list[str] = field(default_factory=list)


def sidecar(out: Path) -> Path:
    """bench/RESULTS.md -> bench/RESULTS.json."""
    return out.with_suffix(".json")


def save(out: Path, runs: list[Provenance], rows: list[tuple[int, Row]]) -> None:
    """Write the rows (each with the index of its run in `runs`) beside the table."""
    data = {
        "runs": [asdict(run) for run in runs],
        "rows": [{"run": index, **asdict(row)} for index, row in rows],
    }
    sidecar(out).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def load(out: Path) -> tuple[list[Provenance], list[tuple[int, Row]]]:
    """The runs and rows a previous invocation saved for `out` (none if it saved nothing)."""
    path = sidecar(out)
    if not path.is_file():
        return [], []
    data = json.loads(path.read_text(encoding="utf-8"))
    runs = [Provenance(**run) for run in data["runs"]]
    return runs, [(item.pop("run"), _row(item)) for item in data["rows"]]


def _row(item: dict[str, Any]) -> Row:
    series = [Series(**s) for s in item.pop("series")]
    targets = [Target(**t) for t in item.pop("targets")]
    return Row(**item, series=series, targets=targets)
