"""RTC checks that need more than one command: the alarm interrupt, and time kept across a reboot.

The alarm goes through the kernel's sysfs `wakealarm`: it is armed `rtc_alarm_delay` seconds
ahead and stays armed until the RTC's interrupt arrives and the kernel consumes it, so an
empty `wakealarm` after the alarm time is the evidence that the interrupt fired (a chip with
no alarm line wired keeps it armed). The interrupt's lateness is a measurement.

Across a reboot the RTC's offset to the lab host's clock is read before and after; their
difference is what the reboot cost the clock. That does not assume the lab ever set the
RTC, so it holds on a bench whose units run on their own time; a reset to the epoch or to a
build date shows up as a jump of years.
"""

from __future__ import annotations

import re
import time

from harness.run.context import TestContext

RTC = "/sys/class/rtc/rtc0"


def host_offset(ctx: TestContext) -> float:
    """The RTC's time minus the lab host's, in seconds (the RTC counts whole seconds)."""
    value = ctx.run(f"cat {RTC}/since_epoch").stdout.strip()
    host = time.time()
    if not value.isdigit():
        ctx.fail(f"{RTC}/since_epoch is not readable: {value!r}")
    return int(value) - host


def alarm_fires(ctx: TestContext) -> None:
    delay = max(1, int(ctx.params.get("rtc_alarm_delay", 2)))
    armed = ctx.run(
        f"echo 0 > {RTC}/wakealarm && echo +{delay} > {RTC}/wakealarm && "
        f'echo "armed=$(cat {RTC}/wakealarm)"'
    )
    match = re.search(r"^armed=(\d+)$", armed.stdout, re.MULTILINE)
    if armed.exit_status != 0 or match is None:
        ctx.fail(f"the RTC alarm cannot be set: {armed.stdout.strip()[-200:]}")
    alarm = int(match.group(1))
    bound = delay + 10
    waited = ctx.run(
        f'for i in $(seq {bound * 5}); do [ -z "$(cat {RTC}/wakealarm)" ] && '
        f'echo "fired=$(cat {RTC}/since_epoch)" && break; sleep 0.2; done',
        timeout=bound + 30,
    )
    fired = re.search(r"^fired=(\d+)$", waited.stdout, re.MULTILINE)
    if fired is None:
        ctx.run(f"echo 0 > {RTC}/wakealarm")
        ctx.fail(f"the RTC alarm set {delay} s ahead was still pending {bound} s later")
    ctx.measure("alarm_lateness", int(fired.group(1)) - alarm, "s")


def keeps_time_across_reboot(ctx: TestContext) -> None:
    tolerance = float(ctx.params.get("rtc_tolerance", 5))
    before = host_offset(ctx)
    seconds = ctx.board.reboot()
    ctx.measure("boot_time", round(seconds, 3), "s")
    after = host_offset(ctx)
    drift = after - before
    ctx.measure("rtc_offset_before", round(before, 1), "s")
    ctx.measure("rtc_offset_after", round(after, 1), "s")
    ctx.measure("rtc_drift", round(drift, 1), "s")
    if abs(drift) > tolerance + 1:  # whole seconds on both reads
        ctx.fail(
            f"the RTC moved {drift:+.0f} s against the lab host's clock across the reboot "
            f"(tolerance {tolerance:g} s)"
        )
