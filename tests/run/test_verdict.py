"""Verdict and exit-code rules: which mixes of outcomes certify a board, and what the shell sees."""

from __future__ import annotations

import pytest

from harness.model.records import ResultRecord
from harness.run.outcomes import Verdict, count_outcomes, decide_verdict, exit_code_for


def _results(*pairs: tuple[str, bool]) -> list[ResultRecord]:
    return [
        ResultRecord(
            id=f"t{i}",
            title=f"test {i}",
            category="demo",
            blocker=blocker,
            outcome=outcome,
            reason="" if outcome == "pass" else "why",
            duration=0.0,
            attempt=1,
            excerpt="",
        )
        for i, (outcome, blocker) in enumerate(pairs)
    ]


B, N = True, False  # blocker, non-blocker

CASES = [
    ("all pass", _results(("pass", B), ("pass", N)), Verdict.CERTIFIED, 0),
    ("skips do not count", _results(("pass", B), ("skip", B)), Verdict.CERTIFIED, 0),
    ("waived blocker still certifies", _results(("pass", B), ("waived", B)), Verdict.CERTIFIED, 0),
    (
        "failed non-blocker certifies but exits 1",
        _results(("pass", B), ("fail", N)),
        Verdict.CERTIFIED,
        1,
    ),
    ("failed blocker", _results(("pass", B), ("fail", B)), Verdict.NOT_CERTIFIED, 1),
    (
        "failed blocker wins over an error",
        _results(("fail", B), ("error", B)),
        Verdict.NOT_CERTIFIED,
        1,
    ),
    ("error makes it incomplete", _results(("pass", B), ("error", N)), Verdict.INCOMPLETE, 3),
    ("not-run makes it incomplete", _results(("pass", B), ("not-run", B)), Verdict.INCOMPLETE, 3),
    ("error and failed non-blocker", _results(("fail", N), ("error", B)), Verdict.INCOMPLETE, 3),
    ("nothing applied", _results(("skip", B), ("skip", N)), Verdict.INCOMPLETE, 3),
    ("empty plan", [], Verdict.INCOMPLETE, 3),
]


@pytest.mark.parametrize(
    ("name", "results", "verdict", "code"), CASES, ids=[case[0] for case in CASES]
)
def test_verdict_and_exit_code_follow_the_rules(
    name: str, results: list[ResultRecord], verdict: Verdict, code: int
) -> None:
    assert decide_verdict(results) is verdict
    assert exit_code_for(verdict, count_outcomes(results)) == code


def test_counts_keep_all_six_outcomes_even_when_zero() -> None:
    counts = count_outcomes(_results(("waived", B), ("not-run", N)))
    assert counts.as_dict() == {
        "pass": 0,
        "fail": 0,
        "error": 0,
        "skip": 0,
        "waived": 1,
        "not-run": 1,
    }
