"""The victim step of the fault matrix (docs/fault-matrix.md, tests/run/test_fault_matrix_qemu.py).

`HARNESS_MATRIX_ROW` says which row runs. Every variant first prints READY
(computed on the board, so the command line sent to it does not contain the
word and only the board's answer matches) and then blocks on the board, so the
test can wait for that line in console.log before it injects the fault. Rows
whose fault is a command on the board do it here, after their own READY line.
Without a row (e.g. on `--resume`), the victim simply passes.
"""

from __future__ import annotations

import os

from harness.run.context import TestContext

READY = "echo MATRIX-$((6*7))-READY"  # prints MATRIX-42-READY
MARKER = "MATRIX-42-READY"


def victim(ctx: TestContext) -> None:
    row = os.environ.get("HARNESS_MATRIX_ROW", "")
    if row == "hang":
        ctx.run(f"{READY}; sleep 5; echo DONE", timeout=20)
    elif row in ("panic", "reset", "power-off"):
        ctx.run(f"{READY}; sleep 60; echo DONE", timeout=100)
    elif row == "noise":
        result = ctx.run(f"{READY}; sleep 8; echo DONE", timeout=60)
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
        ctx.run("sleep 30; echo DONE", timeout=100)
    elif row in ("sigint", "sigterm", "sigkill"):
        # The harness is signalled once READY shows; until then the victim blocks on the board,
        # so a slow host cannot let it finish first (if the signal never comes, it passes late
        # and the test fails on that).
        ctx.run(f"{READY}; sleep 120; echo DONE", timeout=150)
    else:  # disk full, registry down, and every --resume: a test that passes
        result = ctx.run(f"{READY}; sleep 6; echo DONE", timeout=60)
        if "DONE" not in result.stdout:
            ctx.fail(f"no DONE: {result.stdout!r}")
