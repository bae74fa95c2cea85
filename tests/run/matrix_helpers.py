"""Run plans/fault-matrix.yaml with a fault row, wait for the victim's READY line, resume.

Shared by the fault matrix (test_fault_matrix_qemu.py) and the soak (tests/test_soak.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from harness.vlab.fixtures import wait_for_console
from tests.run.conftest import REPO, RunOutput, fault_env, harness_run, harness_run_argv

PLAN = "fault-matrix.yaml"
MARKER = r"MATRIX-42-READY"
READY_WAIT = 180.0  # bounds for a hang only
RUN_WAIT = 900.0


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def matrix_env(board: Any, row: str, **more: str) -> dict[str, str]:
    return {**os.environ, **fault_env(board, HARNESS_MATRIX_ROW=row, **more)}


class MatrixRun:
    """`harness run` of the matrix plan in the background, with its row set."""

    def __init__(
        self, board: Any, results_root: Path, row: str, *, submit: bool = False, **env: str
    ):
        self.board = board
        self.results_root = results_root
        self.mark = board.console_mark()
        argv = harness_run_argv(board, PLAN, results_root, "--retries", "0", submit=submit)
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=matrix_env(board, row, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Ctrl-C as at a terminal: a suite started in the background (`pytest &`) inherits
            # an ignored SIGINT, which the harness would inherit too, and rightly ignore.
            preexec_fn=_default_sigint,
        )

    def wait_ready(self) -> None:
        """The victim printed READY on the board: the fault can be injected now."""
        deadline = time.monotonic() + READY_WAIT
        while True:
            try:
                wait_for_console(self.board, MARKER, 2.0, since=self.mark)
                return
            except Exception:
                if self.proc.poll() is not None:
                    _, err = self.proc.communicate()
                    pytest.fail(
                        f"harness run ended (exit {self.proc.returncode}) before READY\n{err}"
                    )
                if time.monotonic() > deadline:
                    self.proc.kill()
                    pytest.fail("the victim never printed READY")

    def finish(self) -> RunOutput:
        try:
            out, err = self.proc.communicate(timeout=RUN_WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"harness run still running after {RUN_WAIT} s\n{err}")
        return RunOutput(self.proc.returncode, out, err, self.results_root)


def resume_matrix(
    board: Any, run: RunOutput, *extra: str, submit: bool = False, **env: str
) -> RunOutput:
    return harness_run(
        board, PLAN, run.results_root, "--retries", "0", "--resume", run.folder.name,
        *extra, env={**fault_env(board), **env}, submit=submit,
    )  # fmt: skip


def before_is_intact(run: RunOutput) -> str:
    """The finished test's line, exactly as written before the fault; returned to compare later."""
    lines = (run.folder / "results.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["id"] == "before" and first["outcome"] == "pass" and first["session"] == 1
    return lines[0]
