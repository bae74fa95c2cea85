"""`harness repro` on the simulated board: rates and intervals, verify-resolution, resume, the
run folder, and that a case's steps act on the board and not on the lab host.

The simulated board is a real shell behind a real console and SSH server (harness/vlab/simboard.py),
so these runs use the same Board, console session and run folder as a QEMU run, only faster; that
is what makes the many-iteration statistics tests affordable.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from harness.model.case import load_case
from harness.repro import stats
from harness.repro.session import Plan, ReproSession
from tests.repro.conftest import (
    CASES,
    fixed_variant,
    harness_repro,
    report_json,
    seeded_intermittent,
)


def test_always_reproducing_case_gives_100_percent_with_wilson_interval_and_exit_1(
    sim_board, results_root: Path
) -> None:
    out = harness_repro(sim_board, CASES / "always.yaml", results_root, "--no-submit")
    assert out.code == 1, out.stderr
    run = out.run_json()
    assert run.verdict == "reproduced" and run.status == "finished"
    summary = run.summary
    assert summary is not None
    assert (summary.reproduced, summary.iterations, summary.errors) == (10, 10, 0)
    assert summary.rate == 1.0 and summary.first_reproducing == 1
    assert summary.interval is not None
    assert summary.interval.high == 1.0
    assert summary.interval.low == pytest.approx(0.7225, abs=1e-4)  # Wilson 95% for 10/10
    records = out.iterations()
    assert [r.iteration for r in records] == list(range(1, 11))
    assert all(r.outcome == "reproduced" and r.evidence for r in records)
    assert "ERROR state" in records[0].evidence.outputs[0].output
    assert {
        "run.json",
        "results.jsonl",
        "console.log",
        "inventory.json",
        "technical.json",
        "report.json",
        "report.html",
    } <= {p.name for p in out.folder.iterdir()}
    technical = run.technical
    assert "console=" in str(technical["cmdline"]) or technical["cmdline"]
    assert run.software.kernel_release
    assert "rate 10/10 = 100% [72%, 100%]" in out.stderr, "live progress shows rate and interval"


def test_never_reproducing_case_gives_0_percent_with_wilson_interval_and_exit_0(
    sim_board, results_root: Path
) -> None:
    out = harness_repro(sim_board, CASES / "never.yaml", results_root, "--no-submit")
    assert out.code == 0, out.stderr
    run = out.run_json()
    assert run.verdict == "not-reproduced"
    summary = run.summary
    assert (summary.reproduced, summary.iterations, summary.rate) == (0, 10, 0.0)
    assert summary.interval.low == 0.0
    assert summary.interval.high == pytest.approx(0.2775, abs=1e-4)
    assert summary.first_reproducing is None
    assert report_json(out.folder)["run"]["summary"]["iterations"] == 10


def test_intermittent_case_interval_covers_true_rate_in_19_of_20_trials_of_40(
    sim_board, tmp_path: Path
) -> None:
    """20 independent 40-iteration runs of the 30% case; the Wilson interval must hold 0.30."""
    covered = 0
    rates = []
    started = time.monotonic()
    for seed in range(1, 21):
        case = load_case(seeded_intermittent(tmp_path, seed))
        session = ReproSession(
            case,
            sim_board.profile,
            sim_board.env_file,
            tmp_path / "results",
            Plan(repeat=40, until_first=False, max_time=None, between="none"),
        )
        try:
            session.open()
            session.iterate()
            session.finish()
        finally:
            session.close()
        summary = session.run.summary
        assert summary.iterations == 40 and summary.errors == 0
        rates.append(summary.rate)
        covered += summary.interval.low <= 0.3 <= summary.interval.high
    per_iteration = (time.monotonic() - started) / 800
    print(f"sim: {per_iteration:.3f} s per iteration (incl. session start); rates {rates}")
    assert covered >= 19, f"interval covered 0.3 in only {covered} of 20 trials: {rates}"
    assert 0.2 < sum(rates) / len(rates) < 0.4


def test_verify_resolution_resolved_for_fix_not_resolved_for_broken_inconclusive_when_capped(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    baseline = harness_repro(
        sim_board, seeded_intermittent(tmp_path, 7), results_root, "--no-submit"
    )
    assert baseline.code == 1, baseline.stderr
    base = baseline.run_json().summary
    needed = stats.iterations_needed(base.reproduced / base.iterations)

    fixed = harness_repro(
        sim_board,
        fixed_variant(tmp_path),
        results_root,
        "--no-submit",
        "--verify",
        "--baseline",
        str(baseline.folder),
    )
    assert fixed.code == 0, fixed.stderr
    verification = fixed.run_json().verification
    assert verification.verdict == "resolved"
    assert verification.iterations == verification.needed == needed
    assert verification.p_value <= 0.05
    assert len(fixed.iterations()) == needed

    broken = harness_repro(
        sim_board,
        seeded_intermittent(tmp_path, 8),
        results_root,
        "--no-submit",
        "--verify",
        "--baseline",
        str(baseline.folder),
    )
    assert broken.code == 1, broken.stderr
    run = broken.run_json()
    assert run.verification.verdict == "not-resolved"
    assert broken.iterations()[-1].outcome == "reproduced", "stops at the first reproduction"

    capped = harness_repro(
        sim_board,
        fixed_variant(tmp_path),
        results_root,
        "--no-submit",
        "--repeat",
        "2",
        "--verify",
        "--baseline",
        str(baseline.folder),
    )
    assert capped.code == 3, capped.stderr
    assert capped.run_json().verification.verdict == "inconclusive"
    assert capped.run_json().verification.iterations == 2


def test_verify_against_a_run_of_another_case_is_bad_input(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    always = harness_repro(
        sim_board, CASES / "always.yaml", results_root, "--no-submit", "--repeat", "2"
    )
    out = harness_repro(
        sim_board,
        fixed_variant(tmp_path),
        results_root,
        "--no-submit",
        "--verify",
        "--baseline",
        str(always.folder),
    )
    assert out.code == 2
    assert "demo-always" in out.stderr and "Traceback" not in out.stderr


def test_resume_continues_numbering_in_the_same_folder(sim_board, results_root: Path) -> None:
    first = harness_repro(
        sim_board, CASES / "never.yaml", results_root, "--no-submit", "--repeat", "3"
    )
    assert first.code == 0, first.stderr
    run_id = first.folder.name
    second = harness_repro(
        sim_board,
        CASES / "never.yaml",
        results_root,
        "--no-submit",
        "--repeat",
        "5",
        "--resume",
        run_id,
    )
    assert second.code == 0, second.stderr
    records = second.iterations()
    assert [(r.iteration, r.session) for r in records] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)]
    assert len(second.run_json().sessions) == 2


def test_file_written_by_a_case_step_stays_on_the_board_not_on_the_lab_host(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    marker = f"/tmp/h3-case-marker-{secrets.token_hex(6)}"
    case = tmp_path / "writes.yaml"
    case.write_text(
        (CASES / "always.yaml")
        .read_text()
        .replace(
            """  - run: 'echo "status: ERROR state"'""",
            f"""  - run: 'echo "status: ERROR state" > {marker}; cat {marker}'""",
        )
    )
    out = harness_repro(sim_board, case, results_root, "--no-submit", "--repeat", "1")
    assert out.code == 1, out.stderr
    assert not Path(marker).exists(), "the case wrote to the lab host"
    from harness.lab.board import Board

    board = Board.open(sim_board.profile, sim_board.env_file, console_log=tmp_path / "check.log")
    try:
        board.ensure_shell()
        assert board.console.run(f"cat {marker}").stdout.strip() == "status: ERROR state"
    finally:
        board.close()


def test_malformed_case_exits_2_before_any_board_or_folder(
    tmp_path: Path, results_root: Path
) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text((CASES / "always.yaml").read_text().replace("severity: 3", "severity: 9"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "repro",
            str(bad),
            "--board",
            "sim",
            "--results",
            str(results_root),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "bad.yaml:6, field 'case.severity'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not results_root.exists()
