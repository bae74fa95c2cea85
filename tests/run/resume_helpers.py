"""Kill `harness run` with SIGKILL in the middle of a test, then resume it: shared by sim and QEMU tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.run.conftest import REPO, RunOutput, harness_run, harness_run_argv

KILL_WAIT = 120.0


def _wait_for(predicate: Any, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + KILL_WAIT
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"harness run ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def kill_during_slow_test(board: Any, results_root: Path) -> Path:
    """Start `harness run` on plans/slow.yaml, SIGKILL it while test `slow` runs; return the run folder."""
    argv = harness_run_argv(board, "slow.yaml", results_root)
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def folder() -> Path | None:
            found = [p for p in results_root.glob("*/console.log")] if results_root.exists() else []
            return found[0].parent if found else None

        _wait_for(lambda: folder() is not None, "the run folder", proc)
        run_dir = folder()
        assert run_dir is not None
        _wait_for(
            lambda: (
                "> sleep 3; echo slept" in (run_dir / "console.log").read_text(errors="replace")
            ),
            "test 'slow' to start",
            proc,
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return run_dir


def resume(board: Any, results_root: Path, run_id: str) -> RunOutput:
    return harness_run(board, "slow.yaml", results_root, "--resume", run_id)


def sent_count(console_log: Path, command: str) -> int:
    return sum(
        1
        for line in console_log.read_text(errors="replace").splitlines()
        if line.endswith(f"> {command}")
    )
