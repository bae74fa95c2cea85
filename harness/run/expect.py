"""Checking a `run` step's result against its `expect` block, and pulling out measurements.

Every check that does not hold becomes one human sentence; the test fails
with the first of them as its reason and all of them in its log, so the
engineer at the bench sees what was expected and what the board said.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.model.plan import Comparison, Expect, Measure, parse_reference
from harness.model.requires import resolve_path


@dataclass
class Measurement:
    name: str
    value: float
    unit: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit}


class ExpectationError(Exception):
    """A plan refers to a value the board profile/facts do not have (e.g. an unset field)."""


def _search(pattern: str, text: str) -> re.Match[str] | None:
    return re.search(pattern, text, re.MULTILINE)


def extract_number(measure: Measure, stdout: str, stderr: str) -> float | None:
    match = _search(measure.regex, stdout if measure.stream == "stdout" else stderr)
    if match is None:
        return None
    raw = match.groupdict().get("value") or (match.group(1) if match.re.groups else match.group(0))
    try:
        return float(raw) * measure.scale
    except (TypeError, ValueError):
        return None


def expected_value(comparison: Comparison, scope: Mapping[str, Any]) -> float:
    if not isinstance(comparison.value, str):
        return float(comparison.value)
    value = resolve_path(parse_reference(comparison.value), scope)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExpectationError(f"{comparison.value} is {value!r}, not a number")
    return float(value)


def _tolerance(comparison: Comparison, expected: float) -> float:
    if isinstance(comparison.tolerance, str):
        return abs(expected) * float(comparison.tolerance.strip().rstrip("%")) / 100
    return float(comparison.tolerance)


def holds(op: str, measured: float, expected: float, tolerance: float) -> bool:
    """Tolerance widens the comparison in the lenient direction."""
    if op == "==":
        return abs(measured - expected) <= tolerance
    if op == "!=":
        return abs(measured - expected) > tolerance
    if op == "<":
        return measured < expected + tolerance
    if op == "<=":
        return measured <= expected + tolerance
    if op == ">":
        return measured > expected - tolerance
    if op == ">=":
        return measured >= expected - tolerance
    raise ValueError(f"unknown comparison {op!r}")


def _fmt(number: float) -> str:
    return f"{number:g}"


def check_expectations(
    expect: Expect,
    exit_status: int,
    stdout: str,
    stderr: str,
    scope: Mapping[str, Any],
) -> tuple[list[str], list[Measurement]]:
    """Return (problems, measurements from `compare`)."""
    problems: list[str] = []
    measured: list[Measurement] = []
    if expect.exit_status is not None:
        wanted = (
            expect.exit_status if isinstance(expect.exit_status, list) else [expect.exit_status]
        )
        if exit_status not in wanted:
            problems.append(f"exit status {exit_status}, expected {' or '.join(map(str, wanted))}")
    for name, patterns, text, present in (
        ("stdout", expect.stdout, stdout, True),
        ("stdout", expect.stdout_absent, stdout, False),
        ("stderr", expect.stderr, stderr, True),
        ("stderr", expect.stderr_absent, stderr, False),
    ):
        for pattern in patterns:
            match = _search(pattern, text)
            if present and match is None:
                problems.append(f"{name} does not match /{pattern}/")
            elif not present and match is not None:
                line = text[: match.start()].count("\n") + 1
                problems.append(
                    f"{name} matches /{pattern}/ on line {line}: {match.group(0)[:120]!r}"
                )
    for comparison in expect.compare:
        number = extract_number(comparison, stdout, stderr)
        if number is None:
            problems.append(
                f"{comparison.name}: no number matching /{comparison.regex}/ in {comparison.stream}"
            )
            continue
        measured.append(Measurement(comparison.name, number, comparison.unit))
        try:
            target = expected_value(comparison, scope)
        except ExpectationError as exc:
            problems.append(f"{comparison.name}: cannot compare: {exc}")
            continue
        tolerance = _tolerance(comparison, target)
        if not holds(comparison.op, number, target, tolerance):
            source = f" ({comparison.value})" if isinstance(comparison.value, str) else ""
            slack = f" ± {_fmt(tolerance)}" if tolerance else ""
            problems.append(
                f"{comparison.name} = {_fmt(number)} {comparison.unit}, expected "
                f"{comparison.op} {_fmt(target)}{slack}{source}"
            )
    return problems, measured


def take_measurements(
    measures: list[Measure], stdout: str, stderr: str
) -> tuple[list[str], list[Measurement]]:
    problems: list[str] = []
    found: list[Measurement] = []
    for measure in measures:
        number = extract_number(measure, stdout, stderr)
        if number is None:
            problems.append(
                f"measurement {measure.name}: no number matching /{measure.regex}/ in {measure.stream}"
            )
        else:
            found.append(Measurement(measure.name, number, measure.unit))
    return problems, found
