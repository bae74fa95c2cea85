"""What a running unit says about its own identity, read with one shell command.

The inventory itself (CPUs, memory, disks, USB, UARTs, watchdog, RTC) comes from the
discovery certification already does (harness/run/facts.py), so a drafted profile
promises exactly what the inventory checks will later read. This adds what a profile
needs and facts do not carry: the model and compatible strings of the device tree or the
DMI table, CPU naming, traces of the bootloader, and for each network interface whether
it is hardware (has a `device` link) and administratively up.

Like facts.py, one compound POSIX sh command (busybox-compatible, read-only, in a subshell)
prints tagged lines; a file the board lacks prints nothing and the value stays None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.lab.contract import CommandChannel

DMI_FIELDS = (
    "sys_vendor",
    "product_name",
    "product_version",
    "board_vendor",
    "board_name",
    "board_version",
    "bios_version",
)

_LINES = [
    # Device-tree strings are NUL-separated lists; `tr` makes them one line each.
    "for f in model compatible; do [ -r /proc/device-tree/$f ] &&"
    " echo \"@dt_$f $(tr '\\000' ' ' < /proc/device-tree/$f)\"; done",
    "[ -r /proc/device-tree/chosen/u-boot,version ] &&"
    " echo \"@uboot $(tr -d '\\000' < /proc/device-tree/chosen/u-boot,version)\"",
    "[ -d /sys/firmware/efi ] && echo '@efi yes'",
    "for f in " + " ".join(DMI_FIELDS) + "; do [ -r /sys/class/dmi/id/$f ] &&"
    ' echo "@dmi_$f $(cat /sys/class/dmi/id/$f 2>/dev/null)"; done',
    "sed -n 's/^model name[[:space:]]*: */@cpu_model /p; s/^Hardware[[:space:]]*: */@cpu_hardware /p;"
    " s/^Revision[[:space:]]*: */@cpu_revision /p; s/^uarch[[:space:]]*: */@cpu_model /p'"
    " /proc/cpuinfo 2>/dev/null | sort -u",
    'for n in /sys/class/net/*; do i=${n##*/}; [ "$i" = lo ] && continue;'
    " if [ -e $n/device ]; then p=hw; else p=virtual; fi;"
    ' echo "@netdev $i $p $(cat $n/flags 2>/dev/null)"; done',
]
PROBE_SCRIPT = "( " + "; ".join(_LINES) + "; true )"

# Values firmware writes when nobody filled the DMI table in: not an identity.
_DMI_JUNK = {
    "",
    "not specified",
    "to be filled by o.e.m.",
    "default string",
    "system product name",
    "system manufacturer",
    "none",
    "not applicable",
    "0123456789",
    "x.x",
}


@dataclass
class NetDevice:
    name: str
    hardware: bool
    up: bool


@dataclass
class Probe:
    """Identity as the unit reports it; every field may be missing on an odd board."""

    dt_model: str | None = None
    dt_compatible: list[str] = field(default_factory=list)
    dmi: dict[str, str] = field(default_factory=dict)
    cpu_model: str | None = None
    cpu_hardware: str | None = None
    cpu_revision: str | None = None
    uboot: str | None = None
    efi: bool = False
    net: list[NetDevice] = field(default_factory=list)


def parse_probe(output: str) -> Probe:
    probe = Probe()
    for raw in output.splitlines():
        if not raw.startswith("@"):
            continue
        tag, _, rest = raw[1:].partition(" ")
        rest = rest.strip()
        if tag == "dt_model" and rest:
            probe.dt_model = rest
        elif tag == "dt_compatible":
            probe.dt_compatible = rest.split()
        elif tag.startswith("dmi_") and rest.lower() not in _DMI_JUNK:
            probe.dmi[tag[4:]] = rest
        elif tag in ("cpu_model", "cpu_hardware", "cpu_revision") and rest:
            if getattr(probe, tag) is None:  # several cores say the same; keep the first
                setattr(probe, tag, rest)
        elif tag == "uboot" and rest:
            probe.uboot = rest
        elif tag == "efi":
            probe.efi = True
        elif tag == "netdev":
            parts = rest.split()
            if len(parts) >= 2:
                flags = parts[2] if len(parts) > 2 else ""
                up = re.fullmatch(r"0x[0-9a-fA-F]+", flags) is not None and bool(
                    int(flags, 16) & 0x1  # IFF_UP
                )
                probe.net.append(NetDevice(parts[0], parts[1] == "hw", up))
    return probe


def probe_identity(console: CommandChannel, timeout: float = 60.0) -> Probe:
    """The unit's identity over the console (always there, unlike SSH)."""
    return parse_probe(console.run(PROBE_SCRIPT, timeout=timeout).stdout)
