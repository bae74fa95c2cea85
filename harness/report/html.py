"""report.html: one self-contained page per certification run, for a person to read.

Built from a run folder alone (run.json, results.jsonl, inventory.json), so the same page
comes out of a run that just finished, an old folder, or a signed bundle unpacked by
`harness report`. The verdict is on top, failures come first with their console excerpts,
then results by category, the inventory against the profile, measurements with small SVG
charts, and waivers.

Built the way the repro report is (harness/repro/report.py): Jinja2 with autoescaping,
inline CSS and SVG, no script and no external resource, and a Content-Security-Policy
that forbids scripts outright. Board output is untrusted (a board prints what it likes),
so it only ever reaches the page as escaped text.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from harness.durable import write_atomic
from harness.model.records import ResultRecord
from harness.report.charts import charts
from harness.report.runfolder import INVENTORY, RunFolder

log = logging.getLogger(__name__)

REPORT_HTML = "report.html"
EXCERPT_CHARS = 6000
LOG_CHARS = 12000
ROOT_HUB_VENDOR = "1d6b"
# As the inventory checks compare (harness/run/checks/inventory.py, testplans/precert.yaml).
SIZE_TOLERANCE = 0.05
MEMORY_BELOW = 0.30
MEMORY_ABOVE = 0.01

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)


def _last_per_test(lines: list[ResultRecord], order: list[str]) -> list[ResultRecord]:
    """The last line per test id (the run folder's contract), in plan order."""
    last = {record.id: record for record in lines}
    ranked = {test: index for index, test in enumerate(order)}
    return sorted(last.values(), key=lambda r: ranked.get(r.id, len(ranked)))


def _row(what: str, expected: Any, found: Any, status: str) -> dict[str, Any]:
    return {"what": what, "expected": expected, "found": found, "status": status}


def _shown(value: Any) -> str:
    return "not read" if value is None else str(value)


def inventory_rows(expected: dict[str, Any] | None, facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Each thing the profile promises next to what the unit showed: ok, missing, differs;
    what the unit has beyond the profile is listed as `extra`."""
    if not expected:
        return [_row(key, "—", _shown(value), "found") for key, value in facts.items() if key in (
            "cpus", "memory_mib", "serial_ports", "watchdog", "rtc")]  # fmt: skip
    rows = []
    cpus = facts.get("cpus")
    rows.append(
        _row(
            "CPUs", expected["cpus"], _shown(cpus), "ok" if cpus == expected["cpus"] else "differs"
        )
    )
    memory, fitted = facts.get("memory_mib"), expected["memory_mib"]
    fits = memory is not None and fitted * (1 - MEMORY_BELOW) <= memory <= fitted * (
        1 + MEMORY_ABOVE
    )
    rows.append(_row("memory (MiB)", fitted, _shown(memory), "ok" if fits else "differs"))
    disks = {d["name"]: d.get("size_mib") for d in facts.get("block_devices") or []}
    for disk in expected.get("block_devices") or []:
        name, size = disk["name"], disk.get("size_mib")
        if name not in disks:
            rows.append(_row(f"block device {name}", size or "any size", "missing", "missing"))
            continue
        found = disks.pop(name)
        ok = size is None or (
            found is not None and abs(found - size) <= max(1.0, size * SIZE_TOLERANCE)
        )
        rows.append(
            _row(
                f"block device {name} (MiB)",
                size or "any size",
                _shown(found),
                "ok" if ok else "differs",
            )
        )
    rows += [_row(f"block device {n} (MiB)", "—", _shown(s), "extra") for n, s in disks.items()]
    nets = list(facts.get("network_interfaces") or [])
    for name in expected.get("network_interfaces") or []:
        if name == "lo":
            continue  # discovery leaves loopback out; every Linux has it
        rows.append(_row(f"network interface {name}", "present", "present" if name in nets else "missing",
                         "ok" if name in nets else "missing"))  # fmt: skip
    rows += [_row(f"network interface {n}", "—", "present", "extra") for n in nets
             if n not in (expected.get("network_interfaces") or [])]  # fmt: skip
    usb_found: dict[str, int] = {}
    for device in facts.get("usb_devices") or []:
        if device.get("vendor_id") != ROOT_HUB_VENDOR:
            kind = device.get("kind") or "other"
            usb_found[kind] = usb_found.get(kind, 0) + 1
    usb_wanted: dict[str, int] = {}
    for device in expected.get("usb_devices") or []:
        usb_wanted[device["kind"]] = usb_wanted.get(device["kind"], 0) + 1
    for kind in sorted(set(usb_wanted) | set(usb_found)):
        want, have = usb_wanted.get(kind, 0), usb_found.get(kind, 0)
        status = "extra" if not want else ("ok" if have >= want else "missing")
        rows.append(_row(f"USB {kind}", want or "—", have, status))
    serial = facts.get("serial_ports")
    rows.append(_row("serial ports", expected["serial_ports"], _shown(serial),
                     "ok" if serial == expected["serial_ports"] else "differs"))  # fmt: skip
    for key, what in (("watchdog", "watchdog"), ("rtc", "RTC")):
        want, have = expected.get(key), facts.get(key)
        status = "ok" if have or not want else "missing"
        rows.append(_row(what, "required" if want else "not required", _shown(have), status))
    return rows


def _measurements(results: list[ResultRecord]) -> list[dict[str, Any]]:
    return [
        {"test": r.id, "name": m.name, "value": m.value, "unit": m.unit}
        for r in results
        for m in r.measurements
    ]


def build_view(folder: Path, bundle: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the page shows, read from the run folder (bad files are UserErrors)."""
    run_folder = RunFolder(folder)
    run = run_folder.read_run()
    results = _last_per_test(run_folder.read_results(), run.plan.tests)
    inventory: dict[str, Any] = {}
    if (folder / INVENTORY).is_file():
        try:
            inventory = json.loads((folder / INVENTORY).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            inventory = {}
    facts = inventory.get("facts") or {}
    categories: dict[str, list[ResultRecord]] = {}
    for record in results:
        categories.setdefault(record.category, []).append(record)
    points = _measurements(results)
    return {
        "run": run,
        "failures": [r for r in results if r.outcome in ("fail", "error")],
        "categories": categories,
        "inventory": inventory_rows(inventory.get("profile"), facts) if facts else [],
        "profile_recorded": bool(inventory.get("profile")),
        "facts": facts,
        "measurements": points,
        "charts": charts(points),
        "waived": [r for r in results if r.waiver is not None],
        "bundle": bundle,
        "excerpt_chars": EXCERPT_CHARS,
        "log_chars": LOG_CHARS,
    }


def render_report(folder: Path, bundle: dict[str, Any] | None = None) -> str:
    return _templates.get_template("run-report.html").render(**build_view(folder, bundle))


def write_report(
    folder: Path, out: Path | None = None, bundle: dict[str, Any] | None = None
) -> Path:
    """Write the page (default: report.html in the run folder), whole or not at all."""
    target = out or folder / REPORT_HTML
    write_atomic(target, render_report(folder, bundle))
    return target


def write_report_after_run(folder: Path) -> Path | None:
    """At the end of a run: the report is a view of evidence already written, so a defect
    in it is logged, never allowed to change the run's outcome or exit code."""
    try:
        return write_report(folder)
    except Exception:
        log.warning("report.html of %s was not written", folder, exc_info=True)
        return None
