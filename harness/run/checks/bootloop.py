"""Reboot stress: N warm reboots or M power cycles, each compared with the first boot.

After every boot the device set (block devices and sizes, network interfaces, USB devices,
UART count) is discovered again and compared with the set before the loop: a device lost or
gained is a fail naming the boot and the device, the way a flaky PCIe link or a USB hub that
enumerates one time in ten shows up. Each boot's time is a measurement (`boot_time_N`), and
where the board has an RTC, its time after the boot must agree with the lab host's clock
within `rtc_tolerance` seconds (the RTC survived the restart).
"""

from __future__ import annotations

import time
from typing import Any

from harness.run.context import TestContext
from harness.run.facts import discover_facts


def _device_set(ctx: TestContext) -> set[str]:
    facts = discover_facts(ctx.board)
    devices = {f"block {d.name} ({d.size_mib} MiB)" for d in facts.block_devices}
    devices |= {f"net {name}" for name in facts.network_interfaces}
    devices |= {f"usb {u.vendor_id}:{u.product_id}" for u in facts.usb_devices}
    devices.add(f"uarts {facts.serial_ports}")
    return devices


def _loop(ctx: TestContext, kind: str, count: int) -> None:
    first = _device_set(ctx)
    ctx.log.info("device set before the loop: %s", ", ".join(sorted(first)))
    problems: list[str] = []
    tolerance = float(ctx.params.get("rtc_tolerance", 5))
    for number in range(1, count + 1):
        seconds = ctx.board.reboot() if kind == "reboot" else ctx.board.power_cycle()
        ctx.measure(f"boot_time_{number}", round(seconds, 3), "s")
        now = _device_set(ctx)
        lost, gained = sorted(first - now), sorted(now - first)
        changes = []
        if lost:
            changes.append(f"lost {', '.join(lost)}")
        if gained:
            changes.append(f"gained {', '.join(gained)}")
        if changes:
            problems.append(f"{kind} {number}: " + "; ".join(changes))
        if ctx.profile.inventory.rtc:
            problem = _rtc_after_boot(ctx, tolerance, number)
            if problem:
                problems.append(f"{kind} {number}: {problem}")
    if problems:
        ctx.fail("; ".join(problems))


def _rtc_after_boot(ctx: TestContext, tolerance: float, number: int) -> str | None:
    result = ctx.run("cat /sys/class/rtc/rtc0/since_epoch")
    host = time.time()
    value: Any = result.stdout.strip()
    if not value.isdigit():
        return f"RTC not readable after the boot: {value!r}"
    offset = int(value) - host
    ctx.measure(f"rtc_offset_{number}", round(offset, 1), "s")
    if abs(offset) > tolerance + 1:  # since_epoch has whole seconds
        return f"RTC is {offset:+.0f} s off the lab host's clock (tolerance {tolerance:g} s)"
    return None


def warm_reboots(ctx: TestContext) -> None:
    """`warm_reboots` reboots from the shell (plan parameter)."""
    _loop(ctx, "reboot", max(1, int(ctx.params.get("warm_reboots", 1))))


def power_cycles(ctx: TestContext) -> None:
    """`power_cycles` cycles through the power switch (plan parameter)."""
    _loop(ctx, "power cycle", max(1, int(ctx.params.get("power_cycles", 1))))
