"""Inventory checks: what the profile promises (disks, interfaces, USB, UARTs) against the unit.

These are `python:` steps because the profile holds *lists* whose length
varies per board; each item is checked and measured on its own, and every
mismatch is named in the failure, not just the first.
"""

from __future__ import annotations

from harness.run.context import TestContext

SECTOR = 512
MIB = 1024 * 1024
SIZE_TOLERANCE = 0.05  # partition tables and firmware reserve a little


SETTLE_SECONDS = 20  # USB storage shows up as a disk a while after it enumerates


def block_devices_match_profile(ctx: TestContext) -> None:
    """Every block device of the profile exists, with its size within 5 % (or 1 MiB).

    Disks behind slow buses (USB mass storage) appear some seconds after boot, so
    missing ones are waited for (up to SETTLE_SECONDS) before they count as missing.
    """
    problems = []
    names = " ".join(device.name for device in ctx.profile.inventory.block_devices)
    ctx.run(
        f"for i in $(seq {SETTLE_SECONDS}); do ok=1; for d in {names}; do "
        "[ -e /sys/block/$d ] || ok=0; done; [ $ok = 1 ] && break; sleep 1; done",
        timeout=SETTLE_SECONDS + 10,
    )
    for device in ctx.profile.inventory.block_devices:
        sectors = ctx.integer(f"cat /sys/block/{device.name}/size")
        if sectors is None:
            problems.append(f"{device.name} is missing")
            continue
        size_mib = sectors * SECTOR / MIB
        ctx.measure(f"{device.name}_size", round(size_mib, 1), "MiB")
        if device.size_mib is not None:
            slack = max(1.0, device.size_mib * SIZE_TOLERANCE)
            if abs(size_mib - device.size_mib) > slack:
                problems.append(
                    f"{device.name} is {size_mib:.1f} MiB, expected {device.size_mib} MiB"
                )
    if problems:
        ctx.fail("block devices: " + "; ".join(problems))


def network_interfaces_match_profile(ctx: TestContext) -> None:
    """Every interface of the profile exists and is administratively up."""
    problems = []
    for name in ctx.profile.inventory.network_interfaces:
        result = ctx.run(f"cat /sys/class/net/{name}/operstate /sys/class/net/{name}/flags")
        if result.exit_status != 0:
            problems.append(f"{name} is missing")
            continue
        lines = result.stdout.split()
        flags = int(lines[-1], 16) if lines and lines[-1].startswith("0x") else 0
        if not flags & 0x1:  # IFF_UP
            problems.append(f"{name} is down (operstate {lines[0] if lines else '?'})")
    if problems:
        ctx.fail("network interfaces: " + "; ".join(problems))


_USB_CLASS = {"mass-storage": "08", "hub": "09", "hid": "03", "network": "02"}


def usb_devices_match_profile(ctx: TestContext) -> None:
    """At least as many USB devices of each kind as the profile lists (root hubs not counted)."""
    wanted: dict[str, int] = {}
    for device in ctx.profile.inventory.usb_devices:
        wanted[device.kind] = wanted.get(device.kind, 0) + 1
    listing = ctx.run(
        "for u in /sys/bus/usb/devices/*; do [ -r $u/idVendor ] || continue; "
        '[ "$(cat $u/idVendor)" = 1d6b ] && continue; '
        'echo "$(cat $u/idVendor):$(cat $u/idProduct) $(cat $u/bDeviceClass) '
        "$(cat $u/*:*/bInterfaceClass 2>/dev/null | tr '\\n' ' ')\"; done"
    )
    devices = [line.split() for line in listing.stdout.splitlines() if line.strip()]
    ctx.measure("usb_devices", len(devices), "count")
    problems = []
    for kind, count in sorted(wanted.items()):
        code = _USB_CLASS.get(kind)
        found = len(devices) if code is None else sum(1 for fields in devices if code in fields[1:])
        if found < count:
            problems.append(f"{kind}: {found} found, {count} expected")
    if problems:
        ctx.fail("USB devices: " + "; ".join(problems))


def serial_ports_match_profile(ctx: TestContext) -> None:
    """The kernel registered as many UARTs as the profile says (8250 ports that probed, PL011s)."""
    result = ctx.run(
        "grep -c 'uart:[^u]' /proc/tty/driver/serial 2>/dev/null; "
        "ls -d /sys/class/tty/ttyAMA* /sys/class/tty/ttyPS* 2>/dev/null | wc -l"
    )
    found = sum(int(word) for word in result.stdout.split() if word.isdigit())
    ctx.measure("serial_ports", found, "count")
    expected = ctx.profile.inventory.serial_ports
    if found != expected:
        ctx.fail(f"serial ports: {found} registered, {expected} expected")
