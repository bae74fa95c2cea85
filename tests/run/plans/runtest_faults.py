"""Python steps for the run-engine tests: inject a real fault on the running virtual board mid-test.

The board is found through the virtual lab (HARNESS_LAB_DIR + HARNESS_TEST_BOARD, set by the
test), exactly as `harness lab fault NAME KIND` would find it.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.run.context import TestContext


def _inject(kind: str) -> None:
    from harness.vlab.handle import find_running

    board = find_running(os.environ["HARNESS_TEST_BOARD"], Path(os.environ["HARNESS_LAB_DIR"]))
    board.fault(kind)


def hang_then_run(ctx: TestContext) -> None:
    """The board freezes while the test talks to it."""
    ctx.run("echo before-hang", timeout=10)
    _inject("hang")
    ctx.run("echo still-alive", timeout=3)


def hang_once_then_run(ctx: TestContext) -> None:
    """Freeze only on the first attempt: the retry after recovery must pass."""
    marker = Path(os.environ["HARNESS_TEST_MARKER"])
    if not marker.exists():
        marker.write_text("hung once\n")
        _inject("hang")
    ctx.run("echo alive", timeout=3)


def panic_during_command(ctx: TestContext) -> None:
    """A kernel panic hits while a command runs."""
    _inject("panic")
    ctx.run("sleep 5; echo survived-panic", timeout=20)


def reset_during_command(ctx: TestContext) -> None:
    """The board resets by itself while a command runs."""
    _inject("reset")
    ctx.run("sleep 5; echo survived-reset", timeout=20)


def power_loss_during_ssh(ctx: TestContext) -> None:
    """The SSH link drops because the board lost power."""
    ctx.run("echo link-up", timeout=10, transport="ssh")
    _inject("power-off")
    ctx.run("echo after-power-loss", timeout=10, transport="ssh")


def buggy_step(ctx: TestContext) -> None:
    """A python step with a bug of its own (not the board's, not the lab's)."""
    values: dict[str, int] = {}
    ctx.log.info("about to look up a key that is not there")
    values["missing"] += 1
