"""Boot checks that need more than a command: the boot's duration and the bootloader's identity.

The boot time is the harness's own measurement of the last power-on (power on to a logged-in
shell with settled devices), so it is only known when this run booted the board; otherwise
the kernel's own time to start userspace, from its log, is used.
"""

from __future__ import annotations

import re

from harness.run.context import TestContext


def boot_within_budget(ctx: TestContext) -> None:
    budget = float(ctx.params.get("boot_budget", ctx.profile.boot.timeout))
    if ctx.board.boot_times:
        seconds, what = ctx.board.boot_times[0], "power on to login"
    else:
        log = ctx.run("dmesg | grep -m1 -E 'Run /[^ ]* as init process|Freeing unused kernel'")
        match = re.search(r"\[\s*([\d.]+)\]", log.stdout)
        if match is None:
            ctx.fail("this run did not boot the board and the kernel log has no start of userspace")
        seconds, what = float(match.group(1)), "kernel start to userspace"
    ctx.measure("boot_time", round(seconds, 3), "s")
    if seconds > budget:
        ctx.fail(f"boot took {seconds:.1f} s ({what}), budget {budget:g} s")


def bootloader_recorded(ctx: TestContext) -> None:
    """The bootloader (or, booting directly, the firmware) names its version."""
    identity = ctx.board.software_identity()
    if ctx.profile.boot.flow != "direct":
        if not identity.bootloader:
            ctx.fail(f"no {ctx.profile.boot.flow} banner with a version seen on the console")
        ctx.log.info("bootloader: %s", identity.bootloader)
        return
    firmware = ctx.run(
        "cat /sys/class/dmi/id/bios_vendor /sys/class/dmi/id/bios_version 2>/dev/null || "
        "tr -d '\\0' < /proc/device-tree/chosen/u-boot,version 2>/dev/null"
    ).stdout.strip()
    if not firmware:
        ctx.fail("booting directly, and neither DMI nor the device tree names the firmware")
    ctx.log.info("firmware: %s", " ".join(firmware.split()))
