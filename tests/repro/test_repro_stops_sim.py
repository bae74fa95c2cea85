"""When a repro run stops and what happens between iterations (simulated board): `--until-first`
stops at the first reproduction, `--max-time` stops starting iterations, `--between
power-cycle` gives every iteration a fresh boot."""

from __future__ import annotations

from pathlib import Path

from harness.model.case import load_case
from harness.repro.session import Plan, ReproSession
from tests.repro.conftest import CASES, harness_repro, seeded_intermittent


def _session(board, case: Path, root: Path, plan: Plan) -> ReproSession:
    session = ReproSession(load_case(case), board.profile, board.env_file, root, plan)
    try:
        session.open()
        session.iterate()
        session.finish()
    finally:
        session.close()
    return session


def test_until_first_max_time_and_power_cycle_between_iterations(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    # seed 3's board-side sequence reproduces for the first time at iteration 4
    out = harness_repro(
        sim_board, seeded_intermittent(tmp_path, 3), results_root, "--no-submit", "--until-first"
    )
    assert out.code == 1, out.stderr
    outcomes = [r.outcome for r in out.iterations()]
    assert outcomes == ["not-reproduced"] * 3 + ["reproduced"], "not the case's 40 iterations"
    assert "first reproduction (--until-first)" in out.stderr
    assert out.run_json().summary.first_reproducing == len(outcomes)

    timed = _session(
        sim_board,
        CASES / "never.yaml",
        tmp_path / "timed",
        Plan(repeat=100_000, until_first=False, max_time=1.0, between="none"),
    )
    assert timed.stop_reason == "--max-time 1 s reached"
    assert 1 <= timed.run.summary.iterations < 100_000
    assert timed.run.verdict == "not-reproduced"

    cycled = _session(
        sim_board,
        CASES / "never.yaml",
        tmp_path / "cycled",
        Plan(repeat=3, until_first=False, max_time=None, between="power-cycle"),
    )
    assert cycled.stop_reason == "3 iterations done"
    boots = [r.boot_id for r in cycled.records]
    assert len(set(boots)) == 3 and None not in boots, "a fresh boot before each iteration"
    assert cycled.run.sessions[-1].between_problems == []
