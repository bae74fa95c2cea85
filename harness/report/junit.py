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
category, attempt, operator answers, measurements) the way pytest writes record_property, so
tools can tell waived from skipped. Board identity and software go into the
suite's properties. Input is the run folder's record models
(harness/model/records.py), so a field renamed there cannot be missed here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

from harness.durable import write_atomic
from harness.model.records import ResultRecord, RunRecord


def _case(result: ResultRecord, plan_id: str) -> TestCase:
    outcome = result.outcome.value
    reason = result.reason
    case = TestCase(
        name=result.id,
        classname=f"{result.plan_id or plan_id}.{result.category}",
        elapsed_sec=result.duration,
        stdout=result.log or None,
        timestamp=result.started_at,
        status=outcome,
        category=result.category,
    )
    excerpt = result.excerpt or None
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


def _case_properties(result: ResultRecord) -> list[tuple[str, str]]:
    props = [
        ("outcome", result.outcome.value),
        ("blocker", str(result.blocker).lower()),
        ("category", result.category),
        ("attempt", str(result.attempt)),
    ]
    if result.error_class is not None:
        props.append(("error_class", result.error_class.value))
    if result.waiver is not None:
        props += [
            ("waiver.reason", result.waiver.reason),
            ("waiver.expires", result.waiver.expires),
        ]
    for number, answer in enumerate(result.operator_answers, start=1):
        props.append(
            (f"operator.{number}", f"{answer.answer} by {answer.operator}: {answer.question}")
        )
        if answer.attachment is not None:
            props.append(
                (
                    f"operator.{number}.attachment",
                    f"{answer.attachment.file} sha256:{answer.attachment.sha256}",
                )
            )
    for measurement in result.measurements:
        props.append(
            (f"measurement.{measurement.name}", f"{measurement.value:g} {measurement.unit}")
        )
    return props


def build_junit(run: RunRecord, results: Iterable[ResultRecord]) -> str:
    results = list(results)
    properties: dict[str, object] = {
        "run_id": run.run_id,
        "verdict": run.verdict.value,
        "error_class": run.error_class.value if run.error_class else None,
        "plan.id": run.plan.id,
        "plan.version": run.plan.version,
        "plan.sha256": run.plan.sha256,
    }
    properties.update({f"board.{key}": value for key, value in run.board.model_dump().items()})
    properties.update(
        {f"software.{key}": value for key, value in run.software.model_dump().items()}
    )
    if run.image is not None:  # the OS image the run deployed (--image), for CI to pick up
        properties.update({"image.name": run.image.name, "image.sha256": run.image.sha256})
    text_properties = {
        key: "" if value is None else str(value) for key, value in properties.items()
    }
    suite = TestSuite(
        name=f"{run.plan.id} on {run.board.name}",
        test_cases=[_case(result, run.plan.id) for result in results],
        hostname=run.lab.host,
        id=run.run_id,
        timestamp=run.started_at,
        properties=text_properties,
    )
    text = to_xml_report_string([suite], prettyprint=False, encoding="utf-8")
    return _add_case_properties(text, results)


def _add_case_properties(text: str, results: list[ResultRecord]) -> str:
    """junit-xml has no per-testcase properties; add them the way pytest's junitxml does."""
    root = ET.fromstring(text)
    by_id = {result.id: result for result in results}
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


def write_junit(path: Path, run: RunRecord, results: Iterable[ResultRecord]) -> None:
    write_atomic(path, build_junit(run, results))
