"""Python steps for the run-engine tests: inject a real fault on the running virtual board mid-test.

The board is found through the virtual lab (HARNESS_LAB_DIR + HARNESS_TEST_BOARD, set by the
test), exactly as `harness lab fault NAME KIND` would find it.

A fault meant for the middle of a command is not timed: the command prints a marker and
then blocks, and a thread injects the fault once the bench's console log shows the marker.
A hang needs no such care: the board is frozen (QMP says paused) before the command is
sent, so no timeout, short or long, can see an answer.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from harness.run.context import TestContext

# A bound for a hang only: how long the marker may take to reach the console on a loaded host.
MARKER_GUARD = 120.0
# Longer than MARKER_GUARD, so a late fault still lands inside the command; shorter than the
# plan's test timeout.
BLOCKED_COMMAND_TIMEOUT = 150.0


def _board() -> Any:
    from harness.vlab.handle import find_running

    return find_running(os.environ["HARNESS_TEST_BOARD"], Path(os.environ["HARNESS_LAB_DIR"]))


def _inject(kind: str) -> None:
    _board().fault(kind)


def _inject_when_shown(marker: str, kind: str) -> None:
    """From a thread: inject fault `kind` once the board's console shows `marker` (printed later).

    If the marker never shows, nothing is injected and the blocked command times out: the
    test then fails on the missing crash, never passes.
    """
    from harness.vlab.boardhost import wait_for_console

    board = _board()
    since = board.console_mark()

    def fire() -> None:
        wait_for_console(board.console_log, marker, MARKER_GUARD, since)
        board.fault(kind)

    threading.Thread(target=fire, daemon=True).start()


# printf assembles the marker on the board: the console's echo of the command does not match it.
MARKER_COMMAND = "printf '%s-%s\\n' cmd began"
MARKER = "cmd-began"


def hang_then_run(ctx: TestContext) -> None:
    """The board freezes while the test talks to it."""
    ctx.run("echo before-hang", timeout=60)
    _inject("hang")  # returns once QEMU reports the board paused
    ctx.run("echo still-alive", timeout=3)  # a frozen board never answers, whatever the timeout


def hang_once_then_run(ctx: TestContext) -> None:
    """Freeze only on the first attempt: the retry after recovery must pass."""
    marker = Path(os.environ["HARNESS_TEST_MARKER"])
    if not marker.exists():
        marker.write_text("hung once\n")
        _inject("hang")
        ctx.run("echo alive", timeout=3)  # frozen: never answers, whatever the timeout
    ctx.run("echo alive", timeout=60)


def panic_during_command(ctx: TestContext) -> None:
    """A kernel panic hits while a command runs."""
    _inject_when_shown(MARKER, "panic")
    ctx.run(f"{MARKER_COMMAND}; sleep 600; echo survived-panic", timeout=BLOCKED_COMMAND_TIMEOUT)


def reset_during_command(ctx: TestContext) -> None:
    """The board resets by itself while a command runs."""
    _inject_when_shown(MARKER, "reset")
    ctx.run(f"{MARKER_COMMAND}; sleep 600; echo survived-reset", timeout=BLOCKED_COMMAND_TIMEOUT)


def reset_absorbed_by_recovery(ctx: TestContext) -> None:
    """The board resets on its own between two commands, and the step drives it back to a
    shell before its next command (as a reboot test does while the board comes up): every
    command answers, yet the board reset during the test."""
    ctx.run("echo before-reset", timeout=60)
    board = _board()
    since = board.console_mark()
    _inject("reset")
    from harness.vlab.boardhost import wait_for_console

    wait_for_console(board.console_log, ctx.profile.console.login_prompt, MARKER_GUARD, since)
    ctx.board.ensure_shell()
    ctx.run("echo after-reset", timeout=60)


def power_loss_during_ssh(ctx: TestContext) -> None:
    """The SSH link drops because the board lost power while an SSH command runs."""
    tty = ctx.run("tty", timeout=60, transport="console").stdout.strip()
    ctx.run("echo link-up", timeout=60, transport="ssh")
    _inject_when_shown(MARKER, "power-off")
    # The SSH command announces itself on the console, so the power goes only once it runs.
    ctx.run(
        f"{MARKER_COMMAND} >{tty}; sleep 600; echo after-power-loss",
        timeout=BLOCKED_COMMAND_TIMEOUT,
        transport="ssh",
    )


def buggy_step(ctx: TestContext) -> None:
    """A python step with a bug of its own (not the board's, not the lab's)."""
    values: dict[str, int] = {}
    ctx.log.info("about to look up a key that is not there")
    values["missing"] += 1
