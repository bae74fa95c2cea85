"""Waiting until a freshly booted board has finished finding its devices.

A login prompt does not mean the hardware is all there: USB storage is
still enumerating (usb-storage waits before it scans, then the disk reads
its capacity), network interfaces get renamed, late drivers probe. A real
SBC behaves the same way as a virtual one, so an inventory check read right
after login races the kernel.

The board counts as settled when all of these hold, read from sysfs over
the console in one command per look:
* every device the profile promises is present (block devices with a
  non-zero size, network interfaces, USB mass storage, serial ports);
* every USB interface bound to usb-storage has its disk;
* two looks in a row, at least `STABLE_FOR` seconds apart, show the same
  device set (names and sizes).
Looking is bounded by the profile's `boot.settle_timeout`: a board whose
devices never settle goes on anyway (its inventory checks then fail with the
real reason), and the report says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from harness.lab.result import CommandResult
from harness.model.board import Inventory

STABLE_FOR = 1.0
LOOK_EVERY = 0.5

SNAPSHOT = (
    'for b in /sys/block/*; do [ -e "$b" ] || continue; '
    'echo "block ${b##*/} $(cat $b/size 2>/dev/null)"; done; '
    'for n in /sys/class/net/*; do [ -e "$n" ] && echo "net ${n##*/}"; done; '
    'for u in /sys/bus/usb/devices/*; do [ -e "$u" ] && echo "usb ${u##*/}"; done; '
    'u=0; for i in /sys/bus/usb/drivers/usb-storage/*:*; do [ -e "$i" ] && u=$((u+1)); done; '
    'd=0; for b in /sys/block/*; do case "$(readlink -f $b)" in */usb*) d=$((d+1));; esac; done; '
    'echo "usb-storage $u $d"; '
    's=0; for t in /sys/class/tty/*; do [ -e "$t/device/driver" ] && s=$((s+1)); done; '
    'echo "serial $s"'
)


class Runner(Protocol):
    def run(self, command: str, timeout: float = 60.0) -> CommandResult: ...


@dataclass(frozen=True)
class DeviceSet:
    lines: frozenset[str]
    block_sizes: dict[str, int]
    nets: frozenset[str]
    usb_storage_interfaces: int
    usb_disks: int
    serial_ports: int

    @classmethod
    def parse(cls, text: str) -> DeviceSet:
        lines = frozenset(line.strip() for line in text.splitlines() if line.strip())
        sizes: dict[str, int] = {}
        nets: set[str] = set()
        usb_if = usb_disks = serial = 0
        for line in lines:
            tag, _, rest = line.partition(" ")
            parts = rest.split()
            if tag == "block" and parts:
                sizes[parts[0]] = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            elif tag == "net" and parts:
                nets.add(parts[0])
            elif tag == "usb-storage" and len(parts) == 2:
                usb_if, usb_disks = int(parts[0]), int(parts[1])
            elif tag == "serial" and parts:
                serial = int(parts[0])
        return cls(lines, sizes, frozenset(nets), usb_if, usb_disks, serial)

    def missing(self, promised: Inventory) -> list[str]:
        """What the profile promises that this set does not show (yet)."""
        gaps = [
            f"block device {dev.name}"
            for dev in promised.block_devices
            if self.block_sizes.get(dev.name, 0) <= 0
        ]
        gaps += [
            f"network interface {name}"
            for name in promised.network_interfaces
            if name not in self.nets
        ]
        wanted_storage = sum(1 for usb in promised.usb_devices if usb.kind == "mass-storage")
        if self.usb_storage_interfaces < wanted_storage:
            gaps.append(f"{wanted_storage} USB mass-storage device(s)")
        if self.usb_disks < self.usb_storage_interfaces:
            gaps.append("a USB disk still being scanned")
        if self.serial_ports < promised.serial_ports:
            gaps.append(f"{promised.serial_ports} serial port(s)")
        return gaps


@dataclass(frozen=True)
class SettleReport:
    settled: bool
    seconds: float
    looks: int
    missing: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "settled": self.settled,
            "seconds": round(self.seconds, 3),
            "looks": self.looks,
            "missing": list(self.missing),
        }


def wait_for_devices(shell: Runner, promised: Inventory, bound: float) -> SettleReport:
    """Look at the device set until it holds what the profile promises and stops changing."""
    started = time.monotonic()
    deadline = started + bound
    previous: DeviceSet | None = None
    previous_at = started
    looks = 0
    while True:
        current = DeviceSet.parse(shell.run(SNAPSHOT, timeout=30).stdout)
        looks += 1
        now = time.monotonic()
        missing = current.missing(promised)
        if previous is None or previous.lines != current.lines:
            previous, previous_at = current, now
        elif not missing and now - previous_at >= STABLE_FOR:
            return SettleReport(True, now - started, looks, ())
        if now >= deadline:
            return SettleReport(False, now - started, looks, tuple(missing))
        time.sleep(LOOK_EVERY)
