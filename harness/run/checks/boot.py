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
    """The bootloader (or, booting directly, the firmware) names its version.

    The banner is only on the console when this run saw the board boot; a board that was
    already up (a bench started before the run, a unit left on) still names its bootloader
    in the device tree (`u-boot,version`, which U-Boot writes into /chosen) or in DMI.
    """
    identity = ctx.board.software_identity()
    if identity.bootloader:
        ctx.log.info("bootloader: %s", identity.bootloader)
        return
    firmware = ctx.run(
        "tr -d '\\0' 2>/dev/null < /proc/device-tree/chosen/u-boot,version || "
        "cat /sys/class/dmi/id/bios_vendor /sys/class/dmi/id/bios_version 2>/dev/null"
    ).stdout.strip()
    if not firmware:
        seen = (
            ""
            if ctx.profile.boot.flow == "direct"
            else f"no {ctx.profile.boot.flow} banner on the console, and "
        )
        ctx.fail(f"{seen}neither the device tree (u-boot,version) nor DMI names the firmware")
    ctx.log.info("firmware: %s", " ".join(firmware.split()))
