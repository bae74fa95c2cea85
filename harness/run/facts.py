"""Discovering facts on a running board with one shell command.

One compound command (busybox-compatible POSIX sh, read-only, in a subshell
so the session's environment is untouched) prints tagged lines that are
parsed here. One round trip keeps discovery cheap enough to repeat after a
reboot, and a board that lacks a file just produces no line: the fact stays
unknown (None) instead of breaking the run.
"""

from __future__ import annotations

from typing import Any

from harness.lab.contract import BoardLink
from harness.model.facts import BlockDeviceFact, Facts, UsbDeviceFact

_DISCOVERY_LINES = [
    'echo "@kernel_release $(uname -r)"',
    'echo "@kernel_version $(uname -v)"',
    'echo "@arch $(uname -m)"',
    'echo "@hostname $(cat /proc/sys/kernel/hostname 2>/dev/null)"',
    'if [ -r /etc/os-release ]; then . /etc/os-release; echo "@os_name $NAME"; echo "@os_version $VERSION_ID"; fi',
    "echo \"@cpus $(grep -c '^processor' /proc/cpuinfo)\"",
    "echo \"@memory_kib $(sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo)\"",
    "for d in /sys/block/*; do n=${d##*/}; case $n in loop*|ram*|zram*|dm-*|sr*) continue;; esac;"
    ' echo "@block $n $(cat $d/size 2>/dev/null) $(cat $d/removable 2>/dev/null)"; done',
    'for n in /sys/class/net/*; do [ "${n##*/}" = lo ] || echo "@net ${n##*/}"; done',
    # Per USB device: ids, class, interface classes and the disks behind it (`-`: none).
    "for u in /sys/bus/usb/devices/*; do [ -r $u/idVendor ] || continue;"
    " c=$(cat $u/*:*/bInterfaceClass 2>/dev/null | tr '\\n' ','); d=;"
    ' for b in $u/*:*/host*/target*/*/block/*; do [ -e "$b" ] && d="$d${b##*/},"; done;'
    ' echo "@usb $(cat $u/idVendor) $(cat $u/idProduct) $(cat $u/bDeviceClass) ${c:--} ${d:--}"; done',
    "echo \"@serial $(grep -c 'uart:[^u]' /proc/tty/driver/serial 2>/dev/null)"
    ' $(ls -d /sys/class/tty/ttyAMA* /sys/class/tty/ttyPS* 2>/dev/null | wc -l)"',
    'if ls -d /sys/class/watchdog/watchdog* >/dev/null 2>&1; then echo "@watchdog yes"; else echo "@watchdog no"; fi',
    'if [ -e /sys/class/rtc/rtc0 ]; then echo "@rtc yes"; else echo "@rtc no"; fi',
    'if [ -d /sys/devices/system/cpu/cpu0/cpufreq ]; then echo "@cpufreq yes"; else echo "@cpufreq no"; fi',
    'echo "@thermal $(ls -d /sys/class/thermal/thermal_zone* 2>/dev/null | wc -l)"',
    'echo "@boot_id $(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"',
]
# One line (console sessions send one line per command), in a subshell so `. /etc/os-release`
# cannot change the session's variables.
DISCOVERY_SCRIPT = "( " + "; ".join(_DISCOVERY_LINES) + " )"

_USB_KINDS = {
    "08": "mass-storage",
    "09": "hub",
    "02": "network",
    "e0": "other",
    "03": "hid",
    "ff": "other",
}


def _usb_kind(device_class: str, interface_classes: list[str]) -> str:
    for cls in [device_class, *interface_classes]:
        if cls in ("08", "09", "03"):
            return _USB_KINDS[cls]
    if "02" in interface_classes or "0a" in interface_classes:
        return "network"
    return "other"


def parse_facts(output: str) -> Facts:
    values: dict[str, Any] = {"block_devices": [], "network_interfaces": [], "usb_devices": []}
    for raw in output.splitlines():
        if not raw.startswith("@"):
            continue
        tag, _, rest = raw[1:].partition(" ")
        rest = rest.strip()
        if tag in (
            "kernel_release",
            "kernel_version",
            "arch",
            "hostname",
            "os_name",
            "os_version",
            "boot_id",
        ):
            values[tag] = rest or None
        elif tag == "cpus" and rest.isdigit():
            values["cpus"] = int(rest)
        elif tag == "memory_kib" and rest.isdigit():
            values["memory_mib"] = int(rest) // 1024
        elif tag == "block":
            parts = rest.split()
            if parts:
                sectors = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                values["block_devices"].append(
                    BlockDeviceFact(
                        name=parts[0],
                        size_mib=sectors * 512 // (1024 * 1024) if sectors is not None else None,
                        removable=parts[2] == "1" if len(parts) > 2 else None,
                    )
                )
        elif tag == "net" and rest:
            values["network_interfaces"].append(rest)
        elif tag == "usb":
            parts = rest.split()
            if len(parts) >= 3:
                interfaces = [c for c in (parts[3].split(",") if len(parts) > 3 else []) if c]
                disks = [d for d in (parts[4].split(",") if len(parts) > 4 else []) if d != "-"]
                values["usb_devices"].append(
                    UsbDeviceFact(
                        vendor_id=parts[0],
                        product_id=parts[1],
                        kind=_usb_kind(parts[2], [c for c in interfaces if c != "-"]),
                        block_device=next((d for d in disks if d), None),
                    )
                )
        elif tag == "serial":
            counts = [int(part) for part in rest.split() if part.isdigit()]
            values["serial_ports"] = sum(counts) if counts else None
        elif tag == "thermal" and rest.isdigit():
            values["thermal_zones"] = int(rest)
        elif tag in ("watchdog", "rtc", "cpufreq"):
            values[tag] = rest == "yes"
    return Facts(**values)


def discover_facts(board: BoardLink, timeout: float = 60.0) -> Facts:
    """Facts of the board as it is now, over the console (always there, unlike SSH)."""
    result = board.console.run(DISCOVERY_SCRIPT, timeout=timeout)
    return parse_facts(result.stdout)
