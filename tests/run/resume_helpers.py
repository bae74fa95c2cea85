"""Kill `harness run` with SIGKILL in the middle of a test, then resume it: shared by sim and QEMU tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.run.conftest import REPO, RunOutput, harness_run, harness_run_argv

# A bound for a hang only: on a loaded host `harness run` can take a minute to reach its first test.
KILL_WAIT = 600.0


def _wait_for(predicate: Any, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + KILL_WAIT
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(
                f"harness run ended (exit {proc.returncode}) before {what}: {_tail(log)}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"gave up waiting for {what}: {_tail(log)}")
        time.sleep(0.05)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no output)"


SLOW_COMMAND = (
    "printf '%s-%s\\n' slow began; until [ -e /tmp/release-slow ]; do sleep 0.1; done; echo slept"
)


def on_board(board: Any, command: str) -> None:
    """Run `command` on the board over its own SSH connection (the board's pinned host key)."""
    from harness.lab.hostkeys import HostKeyPolicy, parse_public_key
    from harness.lab.ssh import SSHSession

    key = board.state().ssh_host_key
    session = SSHSession(
        "127.0.0.1",
        board.ssh_port,
        board.profile.ssh.username,
        board.profile.ssh.password,
        host_keys=HostKeyPolicy(pinned=[parse_public_key(key)]),
    )
    try:
        result = session.run(command, timeout=KILL_WAIT)
    finally:
        session.close()
    assert result.exit_status == 0, f"{command!r} on the board: {result.stdout}{result.stderr}"


def kill_during_slow_test(board: Any, results_root: Path) -> Path:
    """Start `harness run` on plans/slow.yaml, SIGKILL it while test `slow` runs; return the run folder.

    Test `slow` prints a marker and then blocks until /tmp/release-slow exists on the board,
    so the kill lands inside it whatever the host's load; the file is created after the
    kill, so the interrupted command ends and the resumed run's `slow` passes at once.
    """
    on_board(board, "rm -f /tmp/release-slow")
    argv = harness_run_argv(board, "slow.yaml", results_root)
    log = results_root.parent / "killed-run.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=output, stderr=output)
    try:

        def folder() -> Path | None:
            found = [p for p in results_root.glob("*/console.log")] if results_root.exists() else []
            return found[0].parent if found else None

        _wait_for(lambda: folder() is not None, "the run folder", proc, log)
        run_dir = folder()
        assert run_dir is not None
        _wait_for(
            lambda: "| slow-began" in (run_dir / "console.log").read_text(errors="replace"),
            "test 'slow' to start",
            proc,
            log,
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=KILL_WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    on_board(board, "touch /tmp/release-slow")
    return run_dir


def resume(board: Any, results_root: Path, run_id: str) -> RunOutput:
    return harness_run(board, "slow.yaml", results_root, "--resume", run_id)


def sent_count(console_log: Path, command: str) -> int:
    return sum(
        1
        for line in console_log.read_text(errors="replace").splitlines()
        if line.endswith(f"> {command}")
    )
