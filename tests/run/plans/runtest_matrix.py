"""The victim step of the fault matrix (docs/fault-matrix.md, tests/run/test_fault_matrix_qemu.py).

`HARNESS_MATRIX_ROW` says which row runs. A row with a fault from outside first
prints READY (computed on the board, so the command line sent to it does not
contain the word and only the board's answer matches), so the test can wait for
that line in console.log before it injects the fault. The victim then waits
for the fault itself, never for a fixed time, so however slow the host is the
fault strikes inside the victim:

- a command the fault ends (panic, reset) blocks on the board until then: it
  waits for a release file nobody creates;
- a command the fault must land inside (noise, disk full, a signal to the
  harness) blocks until the test creates the release file on the board
  (`HARNESS_MATRIX_RELEASE`), which it does only once the fault is in;
- a frozen or unpowered board (hang, power lost) answers nothing, so the step
  waits on the host for the test's release file (`HARNESS_MATRIX_HOST_RELEASE`),
  written once the bench reported the fault done, and only then sends its next
  command, whose short timeout is how long the harness takes to see the silence;
  the reboot-health row waits the same way until the reset's boot banner is on
  the console.

Each wait has a bound in minutes, so a harness that never sees the fault gives a
victim that does not pass, never a hang. Rows whose fault is a command on the
board do it here, after their own READY line. Without a row (a clean run, and
every `--resume`), the victim simply passes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.run.context import TestContext

READY = "echo MATRIX-$((6*7))-READY"  # prints MATRIX-42-READY
MARKER = "MATRIX-42-READY"
# Bounds for a broken product or test only: the fault or the release normally comes in seconds.
BLOCK_TIMEOUT = 300.0
RELEASE_WAIT = 600.0


def _until_released() -> str:
    """A board command that returns only once the release file exists on the board."""
    release = os.environ.get("HARNESS_MATRIX_RELEASE", "/tmp/matrix-release")
    return f"until [ -e {release} ]; do sleep 0.1; done; echo DONE"


def _blocked() -> str:
    return f"{READY}; {_until_released()}"


def _wait_for_host_release(ctx: TestContext) -> None:
    """Until the test says its fault is in (a file on the host); a step failure if it never does."""
    release = Path(os.environ["HARNESS_MATRIX_HOST_RELEASE"])
    deadline = time.monotonic() + RELEASE_WAIT
    while not release.exists():
        if time.monotonic() > deadline:
            ctx.fail(f"the test never released the victim ({release} missing)")
        time.sleep(0.1)


def victim(ctx: TestContext) -> None:
    row = os.environ.get("HARNESS_MATRIX_ROW", "")
    if row in ("hang", "power-off"):
        ctx.run(READY, timeout=60)
        _wait_for_host_release(ctx)
        # The board is frozen or off before this is sent: no timeout, short or long, sees an
        # answer.
        ctx.run("echo DONE", timeout=20)
    elif row in ("panic", "reset", "sigint", "sigterm", "sigkill"):
        # Ended by the fault (the board dies, or the harness is stopped); the signal rows' test
        # releases the board's command only after the harness is gone.
        ctx.run(_blocked(), timeout=BLOCK_TIMEOUT)
    elif row == "noise":
        result = ctx.run(_blocked(), timeout=BLOCK_TIMEOUT)
        if result.stdout.strip().splitlines() != [MARKER, "DONE"]:
            ctx.fail(f"console output corrupted: {result.stdout!r}")
    elif row == "silent":
        ctx.run(f"{READY}; exec >/dev/null 2>&1 </dev/null; sleep 1; echo DONE", timeout=20)
    elif row == "sshd-killed":
        ctx.run("echo link-up", timeout=20, transport="ssh")
        ctx.run(f"{READY}; kill -9 $(pidof dropbear)", timeout=20, transport="console")
        ctx.run("echo after-kill", timeout=20, transport="ssh")
    elif row == "link-down":
        ctx.run("echo link-up", timeout=20, transport="ssh")
        ctx.run(
            f"{READY}; for i in /sys/class/net/*; do n=${{i##*/}}; [ $n = lo ] || ip link set $n down; done",
            timeout=20,
            transport="console",
        )
        ctx.run("echo after-link-down", timeout=20, transport="ssh")
    elif row == "reboot-health":
        ctx.run(READY, timeout=20)
        ctx.board.reboot()
        # The test resets the board once its login prompt is back, and releases this step once
        # the new boot's banner is on the console: the reset struck either while the reboot
        # came up (the harness drives through it) or before this command, never after it.
        _wait_for_host_release(ctx)
        ctx.run("echo DONE", timeout=60)
    elif row == "disk-full":
        # Released once the results disk is full: the victim passes and its result cannot be
        # written.
        result = ctx.run(_blocked(), timeout=BLOCK_TIMEOUT)
        if "DONE" not in result.stdout:
            ctx.fail(f"no DONE: {result.stdout!r}")
    else:  # a clean run, registry down, and every --resume: a test that passes
        result = ctx.run("echo DONE", timeout=60)
        if "DONE" not in result.stdout:
            ctx.fail(f"no DONE: {result.stdout!r}")
