"""report.json and report.html of a repro run (or an A/B / bisection over several runs).

The HTML page is self-contained (inline CSS and SVG, no script, no external
resource) so it can be attached to a support ticket; a Content-Security-Policy
forbids scripts outright, and Jinja2 autoescaping keeps board output (which is
whatever the customer's case made the board print) as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from harness.durable import write_atomic
from harness.repro.folder import ReproFolder

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)


def build_report(folder: Path, comparison: dict[str, Any] | None = None) -> dict[str, Any]:
    """report.json's content: run.json and every iteration, as the records' JSON."""
    run_folder = ReproFolder(folder)
    run = run_folder.read_run().to_json()
    iterations = [record.line() for record in run_folder.read_results()]
    return {"run": run, "iterations": iterations, "comparison": comparison}


def write_report(folder: Path, comparison: dict[str, Any] | None = None) -> Path:
    """Write report.json and report.html into the run folder; returns the HTML path."""
    import json

    report = build_report(folder, comparison)
    write_atomic(folder / REPORT_JSON, json.dumps(report, indent=2, sort_keys=True) + "\n")
    crashes = [(r["iteration"], r["crash"]) for r in report["iterations"] if r.get("crash")]
    html = _templates.get_template("report.html").render(
        run=report["run"],
        iterations=report["iterations"],
        comparison=comparison,
        crashes=crashes,
    )
    write_atomic(folder / REPORT_HTML, html)
    return folder / REPORT_HTML
