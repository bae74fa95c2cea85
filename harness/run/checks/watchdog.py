"""Watchdog: arm it with a short timeout, stop feeding it, and require a reset and a new boot.

busybox `watchdog -T N -t BIG` sets the hardware timeout to N seconds, feeds it once and then
not again for BIG seconds, so the watchdog fires. A board that keeps running fails (NoRestart,
a board fault); the daemon is then stopped with the magic close so the late expiry cannot
reset the board during a later test.
"""

from __future__ import annotations

from harness.lab.errors import NoRestart
from harness.run.context import TestContext


def fires_and_resets(ctx: TestContext) -> None:
    seconds = max(1, int(ctx.params.get("watchdog_timeout", 2)))
    before = ctx.board.boot_id()
    command = f"watchdog -T {seconds} -t 3600 /dev/watchdog"
    try:
        boot_time = ctx.board.reboot(command=command, restart_within=seconds + 30)
    except NoRestart as exc:
        ctx.board.ensure_shell()
        ctx.run("kill $(pidof watchdog) 2>/dev/null; true")
        ctx.fail(f"watchdog armed with a {seconds} s timeout and left unfed: {exc}")
    after = ctx.board.boot_id()
    ctx.measure("boot_time", round(boot_time, 3), "s")
    if after == before:
        ctx.fail(f"boot id unchanged after the watchdog fired ({after})")
    ctx.log.info("watchdog reset the board: boot id %s -> %s", before, after)
