"""Outcomes of tests, the verdict of a run, and the exit code that follows from it.

The six outcomes are kept apart everywhere (results.jsonl, JUnit, progress,
run.json, registry) because they mean different things to the people who read
them: `fail` is the board's problem, `error` is the lab's or the harness's, and
a run with errors or tests that never ran proves nothing either way. Only the
rules in this module turn outcomes into a verdict, so the CLI, the report and
the registry cannot disagree about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from harness.errors import EXIT_INFRA, EXIT_OK, EXIT_TEST_FAILED


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    WAIVED = "waived"
    NOT_RUN = "not-run"


ALL_OUTCOMES: tuple[str, ...] = tuple(outcome.value for outcome in Outcome)

# A test with one of these outcomes is done: a resumed run never runs it again.
FINISHED: frozenset[str] = frozenset({"pass", "fail", "error", "skip", "waived"})


class Verdict(StrEnum):
    CERTIFIED = "certified"
    NOT_CERTIFIED = "not-certified"
    INCOMPLETE = "incomplete"


def count_outcomes(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(ALL_OUTCOMES, 0)
    for result in results:
        counts[result["outcome"]] += 1
    return counts


def decide_verdict(results: Iterable[Mapping[str, Any]]) -> Verdict:
    """certified: no blocker failed, nothing error/not-run; not-certified: a blocker failed.

    A failed blocker wins over errors: the board has shown it does not meet
    the plan, and no amount of re-running the tests that errored changes that.
    """
    results = list(results)
    if any(r["outcome"] == "fail" and r.get("blocker", True) for r in results):
        return Verdict.NOT_CERTIFIED
    if any(r["outcome"] in ("error", "not-run") for r in results):
        return Verdict.INCOMPLETE
    if not any(r["outcome"] in ("pass", "waived") for r in results):
        return Verdict.INCOMPLETE  # nothing applied to this board: no evidence either way
    return Verdict.CERTIFIED


def exit_code_for(verdict: Verdict, counts: Mapping[str, int]) -> int:
    """0 certified with nothing failed; 1 a test failed; 3 incomplete (errors, tests not run).

    A failed non-blocker does not stop certification but still exits 1, so a
    CI job notices the regression.
    """
    if verdict is Verdict.NOT_CERTIFIED:
        return EXIT_TEST_FAILED
    if verdict is Verdict.INCOMPLETE:
        return EXIT_INFRA
    return EXIT_TEST_FAILED if counts.get("fail", 0) else EXIT_OK
