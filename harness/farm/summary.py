"""The farm summary of a fan-out: per-board verdicts, links, one JUnit file, one exit code.

Each board's run has its own run folder, written by its own `harness run` (or
`harness repro`). The summary folder `results/<farm-id>/` adds:

* `farm.json`: per place the board, run id, verdict, exit code and run folder;
* `summary.md`: the same as a table with relative links, for a CI artifact page;
* `junit.xml`: one `<testsuites>` with a `<testsuite>` per board, copied from
  each run's own junit.xml (a repro run, or a run that never started, gets a
  suite of one test case saying what happened), so a CI dashboard shows one
  tree per board.

Exit code, the worst of the runs, by this order (worst last): 0, 3, 1, 2,
then 130/143 (stopped). A board that failed a test (1) outranks a board the
lab could not finish (3): CI must see a real regression even when another
board had lab trouble, as a run's own verdict puts a failed blocker above
errors (harness/run/outcomes.py).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.durable import write_atomic

SEVERITY = {0: 0, 3: 1, 1: 2, 2: 3, 130: 4, 143: 4}


def worst(codes: list[int]) -> int:
    """The exit code of a fan-out: the worst of its runs (0 for none)."""
    return max(codes, key=lambda code: SEVERITY.get(code, 3), default=0)


@dataclass
class BoardRun:
    """One place's run in a fan-out, as the summary reports it."""

    place: str
    board: str
    exporter: str
    run_id: str
    exit_code: int | None = None
    verdict: str = "not run"
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""

    def folder(self, results_root: Path) -> Path:
        return results_root / self.run_id


def read_verdict(run: BoardRun, results_root: Path) -> None:
    """Fill verdict and counts from the run folder's run.json, when there is one."""
    path = run.folder(results_root) / "run.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    run.verdict = str(data.get("verdict") or run.verdict)
    counts = data.get("counts") or (data.get("summary") or {})
    run.counts = {k: int(v) for k, v in counts.items() if isinstance(v, int) and v}


def _suite_for(run: BoardRun, results_root: Path) -> ET.Element:
    name = f"{run.place} ({run.board})"
    source = run.folder(results_root) / "junit.xml"
    suite: ET.Element | None = None
    if source.is_file():
        root = ET.parse(source).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        suite = ET.Element(
            "testsuite", {"tests": "1", "failures": "0", "errors": "0", "skipped": "0"}
        )
        case = ET.SubElement(suite, "testcase", {"name": "run", "classname": f"farm.{run.place}"})
        if run.verdict in ("reproduced", "not-resolved"):
            suite.set("failures", "1")
            ET.SubElement(case, "failure", {"message": f"{run.verdict}: {run.note}"})
        elif run.exit_code != 0:
            suite.set("errors", "1")
            message = f"{run.verdict} (exit {run.exit_code}): {run.note}"
            ET.SubElement(case, "error", {"message": message[:2000]})
    suite.set("name", name)
    properties = suite.find("properties")
    if properties is None:
        properties = ET.Element("properties")
        suite.insert(0, properties)
    for key, value in (
        ("farm.place", run.place),
        ("farm.exporter", run.exporter),
        ("farm.run_id", run.run_id),
    ):
        ET.SubElement(properties, "property", {"name": key, "value": value})
    return suite


def write_summary(
    folder: Path,
    farm_id: str,
    runs: list[BoardRun],
    results_root: Path,
    left_out: list[tuple[str, str]],
) -> int:
    """Write farm.json, summary.md and junit.xml; return the fan-out's exit code."""
    folder.mkdir(parents=True, exist_ok=True)
    for run in runs:
        read_verdict(run, results_root)
    code = worst([run.exit_code if run.exit_code is not None else 3 for run in runs])
    data: dict[str, Any] = {
        "farm_id": farm_id,
        "exit_code": code,
        "runs": [asdict(r) for r in runs],
        "left_out": [{"place": name, "why": why} for name, why in left_out],
    }
    write_atomic(folder / "farm.json", json.dumps(data, indent=2), durable=False)
    root = ET.Element("testsuites", {"name": farm_id})
    for run in runs:
        root.append(_suite_for(run, results_root))
    for attr in ("tests", "failures", "errors", "skipped"):
        total = sum(int(suite.get(attr) or 0) for suite in root.findall("testsuite"))
        root.set(attr, str(total))
    ET.indent(root)
    write_atomic(
        folder / "junit.xml",
        ET.tostring(root, encoding="unicode", xml_declaration=True),
        durable=False,
    )
    text = markdown(farm_id, runs, code, folder, results_root, left_out)
    write_atomic(folder / "summary.md", text, durable=False)
    return code


def markdown(
    farm_id: str,
    runs: list[BoardRun],
    code: int,
    folder: Path,
    results_root: Path,
    left_out: list[tuple[str, str]],
) -> str:
    lines = [
        f"# Farm run {farm_id}",
        "",
        f"Exit code {code} (the worst of {len(runs)} runs).",
        "",
        "| place | board | lab host | verdict | exit | tests | seconds | run folder |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        counts = ", ".join(f"{n} {k}" for k, n in run.counts.items()) or "-"
        target = run.folder(results_root)
        link = f"[{run.run_id}]({_relative(target, folder)})" if target.is_dir() else run.run_id
        lines.append(
            f"| {run.place} | {run.board} | {run.exporter} | {run.verdict} | {run.exit_code} "
            f"| {counts} | {run.seconds:.1f} | {link} |"
        )
    notes = [f"- {run.place}: {run.note}" for run in runs if run.note]
    notes += [f"- {name}: left out, {why}" for name, why in left_out]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def _relative(target: Path, base: Path) -> str:
    import os

    return os.path.relpath(target, base)
