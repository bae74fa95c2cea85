"""Run plans/fault-matrix.yaml with a fault row, wait for the victim's READY line, resume.

Shared by the fault matrix (test_fault_matrix_qemu.py) and the soak (tests/test_soak.py).
The victim (plans/runtest_matrix.py) waits for its fault, not for a fixed time: rows whose
fault must land inside a command block it until `MatrixRun.release()`, which a test calls
only once the fault is in.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from harness.vlab.fixtures import wait_for_console
from tests.run.conftest import REPO, RunOutput, fault_env, harness_run, harness_run_argv
from tests.run.resume_helpers import on_board

PLAN = "fault-matrix.yaml"
MARKER = r"MATRIX-42-READY"
READY_WAIT = 180.0  # bounds for a hang only
RUN_WAIT = 900.0
# How a row's victim is let go once its fault is in. The step waits for a file on the host,
# then sends a command: one no frozen or unpowered board answers, or (reboot-health) one sent
# once the board has visibly reset.
HOST_RELEASED = {"hang", "power-off", "reboot-health"}
# The victim's command blocks until a file exists on the board (reached over SSH).
BOARD_RELEASED = {"noise", "disk-full", "sigint", "sigterm", "sigkill"}
# Every other row needs no release: its fault ends the blocked command (the board resets or
# dies), or the victim's own command is the fault.


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
        self.row = row
        # Unique per run, so a file left by an earlier run (or board) can never release this one.
        token = secrets.token_hex(6)
        self.board_release = f"/tmp/matrix-release-{token}"
        self.host_release = results_root.parent / f"matrix-release-{token}"
        self.mark = board.console_mark()
        argv = harness_run_argv(board, PLAN, results_root, "--retries", "0", submit=submit)
        release_env = {
            "HARNESS_MATRIX_RELEASE": self.board_release,
            "HARNESS_MATRIX_HOST_RELEASE": str(self.host_release),
        }
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=matrix_env(board, row, **release_env, **env),
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

    def release(self) -> None:
        """Let the victim go on. Call it only once the fault is in (for a signal, once the
        harness has exited): until then the victim blocks, so the fault lands inside it
        however slow the host is."""
        if self.row in HOST_RELEASED:
            self.host_release.parent.mkdir(parents=True, exist_ok=True)
            self.host_release.touch()
        elif self.row in BOARD_RELEASED:
            on_board(self.board, f"touch {self.board_release}")

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
