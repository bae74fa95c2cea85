"""A repro run's results survive what happens to the harness and the lab (simulated board):
SIGKILL mid-iteration then `--resume`, a baseline that exists only as a signed bundle, and
infrastructure errors that never count towards the rate."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.repro import stats
from tests.repro.conftest import (
    CASES,
    REPO,
    fixed_variant,
    harness_repro,
    holding_case,
    release_hold,
    repro_argv,
    seeded_intermittent,
    wait_for_hold,
)


def test_sigkill_mid_iteration_then_resume_keeps_every_finished_iteration_once(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    case = holding_case(tmp_path)
    mark = sim_board.console_mark()
    proc = subprocess.Popen(
        repro_argv(sim_board, case.path, results_root, "--no-submit", "--repeat", "4"),
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    try:
        wait_for_hold(sim_board, proc, mark)
        proc.send_signal(signal.SIGKILL)  # iteration 3 holds on the board until released
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    (folder,) = list(results_root.iterdir())
    finished = (folder / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in finished] == [1, 2]
    killed = json.loads((folder / "run.json").read_text())
    assert killed["status"] == "running" and killed["summary"] is None

    # The killed run's command ends on the board (its hold released); the resumed run runs
    # iterations 3 and 4 again from their setup, on the same board-side counter (4 and 5).
    release_hold(sim_board, case, mark)
    resumed = harness_repro(
        sim_board, case.path, results_root, "--no-submit", "--repeat", "4", "--resume", folder.name
    )
    assert resumed.code == 1, resumed.stderr
    lines = (folder / "results.jsonl").read_text().splitlines()
    assert lines[:2] == finished, "the finished iterations are kept byte for byte"
    records = resumed.iterations()
    assert [(r.iteration, r.session) for r in records] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    assert [r.outcome for r in records] == [
        "not-reproduced",
        "reproduced",
        "reproduced",
        "not-reproduced",
    ], resumed.stderr
    run = resumed.run_json()
    assert run.status == "finished" and run.verdict == "reproduced"
    assert [s.finished_at is None for s in run.sessions] == [True, False], (
        "the killed session is recorded as never finished"
    )
    assert (run.summary.iterations, run.summary.reproduced, run.summary.errors) == (4, 2, 0)
    low, high = stats.wilson(2, 4)
    assert (run.summary.interval.low, run.summary.interval.high) == (
        pytest.approx(low, abs=1e-6),
        pytest.approx(high, abs=1e-6),
    )
    report = json.loads((folder / "report.json").read_text())
    assert [i["iteration"] for i in report["iterations"]] == [1, 2, 3, 4]


def test_baseline_given_as_a_signed_bundle_is_verified_used_and_kept_across_resume(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    env = {"HARNESS_DATA_HOME": str(tmp_path / "home"), "HARNESS_LAB_NAME": "lab-baseline"}
    baseline = harness_repro(
        sim_board, seeded_intermittent(tmp_path, 7), results_root, "--no-submit", "--repeat", "20",
        env=env,
    )  # fmt: skip
    assert baseline.code == 1, baseline.stderr
    base = baseline.run_json()
    bundle = tmp_path / "baseline.bundle.tar"
    made = subprocess.run(
        [sys.executable, "-m", "harness", "bundle", "make", str(baseline.folder), "-o", str(bundle)],
        capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, **env},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    shutil.rmtree(baseline.folder)  # only the bundle is left: it alone must carry the baseline

    tampered = tmp_path / "tampered.bundle.tar"
    data = bundle.read_bytes()
    assert data.count(b'"outcome":"reproduced"') >= 1
    tampered.write_bytes(data.replace(b'"outcome":"reproduced"', b'"outcome":"reproducex"', 1))
    refused = harness_repro(
        sim_board, fixed_variant(tmp_path), results_root, "--no-submit", "--verify",
        "--baseline", str(tampered), env=env,
    )  # fmt: skip
    assert refused.code == 2, refused.stderr
    assert "tampered.bundle.tar" in refused.stderr and "does not verify" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.folder is None

    fixed = fixed_variant(tmp_path)
    verify = ("--no-submit", "--verify", "--baseline", str(bundle))
    capped = harness_repro(sim_board, fixed, results_root, *verify, "--repeat", "2", env=env)
    assert capped.code == 3, capped.stderr
    assert capped.run_json().verification.verdict == "inconclusive"
    run_id = capped.folder.name
    as_repro = harness_repro(sim_board, fixed, results_root, "--no-submit", "--resume", run_id)
    assert as_repro.code == 2 and "resume it with --verify --baseline" in as_repro.stderr
    assert base.run_id in as_repro.stderr, "names the baseline the run verifies against"

    resumed = harness_repro(sim_board, fixed, results_root, *verify, "--resume", run_id, env=env)
    assert resumed.code == 0, resumed.stderr
    verification = resumed.run_json().verification
    assert verification.baseline.run_id == base.run_id
    assert (verification.baseline.reproduced, verification.baseline.iterations) == (
        base.summary.reproduced,
        base.summary.iterations,
    )
    assert verification.verdict == "resolved"
    needed = stats.iterations_needed(base.summary.reproduced / base.summary.iterations)
    assert verification.needed == verification.iterations == needed
    assert [r.session for r in resumed.iterations()] == [1, 1] + [2] * (needed - 2)


def test_infrastructure_errors_are_not_counted_and_three_in_a_row_end_the_run_resumable(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    # the second iteration's setup fails: an error, the rate is over the other three
    flaky = holding_case(tmp_path, setup_check='[ "$(cat COUNTER)" != 2 ]').path
    flaky.write_text(flaky.read_text().replace('"$n" = 3', '"$n" = 99'))
    out = harness_repro(sim_board, flaky, results_root, "--no-submit", "--repeat", "3")
    assert out.code == 1, out.stderr
    records = out.iterations()
    assert [r.outcome for r in records] == [
        "not-reproduced",
        "error",
        "not-reproduced",
        "reproduced",
    ]
    assert records[1].reason.startswith("setup failed: step 2")
    summary = out.run_json().summary
    assert (summary.iterations, summary.reproduced, summary.errors) == (3, 1, 1)
    assert summary.rate == pytest.approx(1 / 3, abs=1e-6)
    assert "rate 1/3 = 33%" in out.stderr and "1 error(s)" in out.stderr

    broken = tmp_path / "broken.yaml"
    broken.write_text((CASES / "always.yaml").read_text().replace("trigger:", "setup:\n  - run: 'false'\ntrigger:", 1))  # fmt: skip
    lost = harness_repro(sim_board, broken, results_root, "--no-submit", "--repeat", "5")
    assert lost.code == 3, lost.stderr
    run = lost.run_json()
    assert run.verdict == "incomplete" and run.summary.errors == 3
    assert run.summary.iterations == 0 and run.summary.interval is None
    assert f"--resume {lost.folder.name}" in lost.stderr and "Traceback" not in lost.stderr


def test_hung_board_is_a_timeout_whose_evidence_is_board_output_never_the_command_text(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    """The signature regex ('ERROR state') is part of the trigger's own command text; a hang
    must not make it match through the harness's message quoting that command.

    The third trigger hangs the board itself right after printing HOLD-42 (every process of
    the board stopped, as a lock-up the bug causes), so the hang is in place before the case
    timeout can fire, however loaded the host."""
    case = holding_case(tmp_path, timeout=10, hold="freeze")
    out = harness_repro(sim_board, case.path, results_root, "--no-submit", "--repeat", "4")
    assert out.code == 1, out.stderr
    (folder,) = list(results_root.iterdir())
    lines = (folder / "results.jsonl").read_text().splitlines()
    hung = json.loads(lines[2])
    assert (hung["outcome"], hung["timed_out"]) == ("not-reproduced", True), hung["reason"]
    assert "the shell stopped answering" in hung["reason"]
    trigger = [o for o in hung["evidence"]["outputs"] if o["phase"] == "trigger"]
    assert "HOLD-42" in trigger[0]["output"] and "ERROR state" not in trigger[0]["output"]
    assert hung["recovery"] == "recovered (working shell)"
    after = json.loads(lines[3])
    assert after["outcome"] != "error" and after["boot_id"] != hung["boot_id"], "power-cycled"
