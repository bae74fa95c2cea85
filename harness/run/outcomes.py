"""Outcomes of tests, the verdict of a run, and the exit code that follows from it.

The six outcomes are kept apart everywhere (results.jsonl, JUnit, progress,
run.json, registry) because they mean different things to the people who read
them: `fail` is the board's problem, `error` is the lab's or the harness's, and
a run with errors or tests that never ran proves nothing either way. Only the
rules in this module turn outcomes into a verdict, so the CLI, the report and
the registry cannot disagree about it.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.errors import EXIT_INFRA, EXIT_OK, EXIT_TEST_FAILED
from harness.model.records import Counts, Outcome, ResultRecord, Verdict

__all__ = [
    "ALL_OUTCOMES",
    "FINISHED",
    "Outcome",
    "Verdict",
    "count_outcomes",
    "decide_verdict",
    "exit_code_for",
]

ALL_OUTCOMES: tuple[str, ...] = tuple(outcome.value for outcome in Outcome)

# A test with one of these outcomes is done: a resumed run never runs it again.
FINISHED: frozenset[str] = frozenset({"pass", "fail", "error", "skip", "waived"})


def count_outcomes(results: Iterable[ResultRecord]) -> Counts:
    counts = dict.fromkeys(ALL_OUTCOMES, 0)
    for result in results:
        counts[result.outcome.value] += 1
    return Counts.model_validate(counts)


def decide_verdict(results: Iterable[ResultRecord]) -> Verdict:
    """certified: no blocker failed, nothing error/not-run; not-certified: a blocker failed.

    A failed blocker wins over errors: the board has shown it does not meet
    the plan, and no amount of re-running the tests that errored changes that.
    """
    results = list(results)
    if any(r.outcome is Outcome.FAIL and r.blocker for r in results):
        return Verdict.NOT_CERTIFIED
    if any(r.outcome in (Outcome.ERROR, Outcome.NOT_RUN) for r in results):
        return Verdict.INCOMPLETE
    if not any(r.outcome in (Outcome.PASS, Outcome.WAIVED) for r in results):
        return Verdict.INCOMPLETE  # nothing applied to this board: no evidence either way
    return Verdict.CERTIFIED


def exit_code_for(verdict: Verdict, counts: Counts) -> int:
    """0 certified with nothing failed; 1 a test failed; 3 incomplete (errors, tests not run).

    A failed non-blocker does not stop certification but still exits 1, so a
    CI job notices the regression.
    """
    if verdict is Verdict.NOT_CERTIFIED:
        return EXIT_TEST_FAILED
    if verdict is Verdict.INCOMPLETE:
        return EXIT_INFRA
    return EXIT_TEST_FAILED if counts.fail else EXIT_OK
