"""junit.xml for CI systems, written from results.jsonl with the junit-xml library.

JUnit knows four states (passed, failure, error, skipped); we have six
outcomes. The mapping keeps all six recoverable by a machine and readable by
a person:

| outcome | JUnit element                         | testcase `status` / property `outcome` |
|---------|---------------------------------------|----------------------------------------|
| pass    | (none)                                | pass                                   |
| fail    | <failure message=reason>excerpt       | fail                                   |
| error   | <error message=reason>excerpt         | error                                  |
| skip    | <skipped message=reason>              | skip                                   |
| waived  | <skipped message="waived: ...">       | waived (+ properties waiver.reason, waiver.expires) |
| not-run | <skipped message="not run: ...">      | not-run                                |

A waived test is reported as *skipped*, not passed: it did fail on the
board, and a CI dashboard should not show it green. Every testcase carries
the `status` attribute and a `<properties>` block (outcome, blocker,
category, attempt, measurements) the way pytest writes record_property, so
tools can tell waived from skipped. Board identity and software go into the
suite's properties.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from junit_xml import TestCase, TestSuite, to_xml_report_string

from harness.durable import write_atomic


def _case(result: Mapping[str, Any]) -> TestCase:
    outcome = result["outcome"]
    reason = result.get("reason") or ""
    case = TestCase(
        name=result["id"],
        classname=f"{result.get('plan_id', 'plan')}.{result.get('category', 'test')}",
        elapsed_sec=result.get("duration") or 0.0,
        stdout=result.get("log") or None,
        timestamp=result.get("started_at"),
        status=outcome,
        category=result.get("category"),
    )
    excerpt = result.get("excerpt") or None
    if outcome == "fail":
        case.add_failure_info(message=reason, output=excerpt, failure_type="fail")
    elif outcome == "error":
        case.add_error_info(message=reason, output=excerpt, error_type="error")
    elif outcome == "skip":
        case.add_skipped_info(message=reason)
    elif outcome == "waived":
        case.add_skipped_info(message=f"waived: {reason}", output=excerpt)
    elif outcome == "not-run":
        case.add_skipped_info(message=f"not run: {reason}")
    return case


def _case_properties(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    props = [
        ("outcome", result["outcome"]),
        ("blocker", str(bool(result.get("blocker", True))).lower()),
        ("category", str(result.get("category", ""))),
        ("attempt", str(result.get("attempt", 0))),
    ]
    waiver = result.get("waiver")
    if waiver:
        props += [("waiver.reason", waiver["reason"]), ("waiver.expires", waiver["expires"])]
    for measurement in result.get("measurements") or []:
        props.append(
            (
                f"measurement.{measurement['name']}",
                f"{measurement['value']:g} {measurement['unit']}",
            )
        )
    return props


def build_junit(run: Mapping[str, Any], results: Iterable[Mapping[str, Any]]) -> str:
    results = list(results)
    board = run.get("board", {})
    software = run.get("software", {})
    properties: dict[str, Any] = {
        "run_id": run.get("run_id"),
        "verdict": run.get("verdict"),
        "plan.id": run.get("plan", {}).get("id"),
        "plan.version": run.get("plan", {}).get("version"),
        "plan.sha256": run.get("plan", {}).get("sha256"),
    }
    properties.update({f"board.{key}": value for key, value in board.items()})
    properties.update({f"software.{key}": value for key, value in software.items()})
    properties = {key: "" if value is None else str(value) for key, value in properties.items()}
    suite = TestSuite(
        name=f"{run.get('plan', {}).get('id', 'plan')} on {board.get('name', 'board')}",
        test_cases=[_case(result) for result in results],
        hostname=run.get("lab", {}).get("host"),
        id=run.get("run_id"),
        timestamp=run.get("started_at"),
        properties=properties,
    )
    text = to_xml_report_string([suite], prettyprint=False, encoding="utf-8")
    return _add_case_properties(text, results)


def _add_case_properties(text: str, results: list[Mapping[str, Any]]) -> str:
    """junit-xml has no per-testcase properties; add them the way pytest's junitxml does."""
    root = ET.fromstring(text)
    by_id = {result["id"]: result for result in results}
    for case in root.iter("testcase"):
        result = by_id.get(case.get("name", ""))
        if result is None:
            continue
        block = ET.Element("properties")
        for name, value in _case_properties(result):
            ET.SubElement(block, "property", {"name": name, "value": value})
        case.insert(0, block)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, run: Mapping[str, Any], results: Iterable[Mapping[str, Any]]) -> None:
    write_atomic(path, build_junit(run, results))
