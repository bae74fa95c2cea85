"""Turning what a unit showed into a board profile, with a comment wherever a person decides.

The draft promises what this unit has now: certification then compares every later unit
against it, so choices a probe cannot make (the vendor's name, the hardware revision,
which devices every unit must have) are marked `DECIDE:` in the file and listed on the
terminal. What can be read is taken as read, in the form the inventory checks compare
(harness/run/checks/inventory.py, testplans/precert.yaml), so the draft certifies the unit
it came from.

The YAML is written by a small emitter here rather than by PyYAML's dumper because PyYAML
cannot attach comments to keys; each scalar is still quoted by PyYAML, and the text is
read back and compared with the document before anyone sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, get_args

import yaml

from harness.discover.probe import Probe
from harness.errors import InfraError
from harness.model.board import BoardProfile, Identity
from harness.model.facts import Facts

UNKNOWN = "unknown"
ROOT_HUB_VENDOR = "1d6b"  # Linux Foundation: the kernel's own root hubs, not devices
ARCHES: tuple[str, ...] = get_args(Identity.model_fields["arch"].annotation)

Path_ = tuple[str, ...]


@dataclass
class Draft:
    """The profile as a document, the comments above its keys, and what a person must decide."""

    doc: dict[str, Any]
    comments: dict[Path_, list[str]] = field(default_factory=dict)
    decide: list[str] = field(default_factory=list)

    def note(self, path: Path_, text: str) -> None:
        self.comments.setdefault(path, []).append(text)

    def ask(self, path: Path_, text: str) -> None:
        """A choice the probe cannot make: marked in the file and listed on the terminal."""
        self.note(path, f"DECIDE: {text}")
        self.decide.append(f"{'.'.join(path)}: {text}")


@dataclass
class Settings:
    """How the unit was reached: the settings the draft records as the ones that worked."""

    profile: BoardProfile  # console, ssh and boot settings used to log in
    baud: int | None  # the console port's speed from the environment, if it names one
    lab: dict[str, Any]  # the profile's `lab:` entry
    lab_note: str
    ssh_note: str | None = None


def fitted_memory(memtotal_mib: int) -> int:
    """The smallest usual RAM size (2^n or 3·2^n MiB) at or above what the kernel reports.

    MemTotal is the RAM less what firmware and the kernel keep, so the RAM fitted is the
    next size up; precert accepts MemTotal up to 30 % below the profile's figure.
    """
    size = 64
    while True:
        for candidate in (size, size * 3 // 2):
            if candidate >= memtotal_mib:
                return candidate
        size *= 2


def slug(text: str) -> str:
    """A profile name (`^[a-z0-9][a-z0-9._-]*$`) from a model string."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return name or "new-board"


def _first(*values: str | None) -> tuple[str | None, int]:
    """The first value given, and its position (which source it came from)."""
    for index, value in enumerate(values):
        if value:
            return value, index
    return None, -1


def _identity(draft: Draft, probe: Probe, facts: Facts) -> dict[str, Any]:
    dmi, dt = probe.dmi, probe.dt_compatible
    path = ("identity",)
    model, src = _first(probe.dt_model, dmi.get("product_name"), dmi.get("board_name"))
    if model is None:
        draft.ask((*path, "model"), "neither a device tree nor a DMI table names the model")
    else:
        where = ("device tree model", "DMI product_name", "DMI board_name")[src]
        draft.note((*path, "model"), f"from the {where}")
    vendor, src = _first(
        dmi.get("sys_vendor"), dmi.get("board_vendor"), dt[0].split(",")[0] if dt else None
    )
    where = ("DMI sys_vendor", "DMI board_vendor", "device-tree vendor prefix", "")[src]
    draft.ask(
        (*path, "vendor"),
        f"the vendor's name as the certificate shows it (read: {where})"
        if vendor
        else "the vendor's name as the certificate shows it (the unit does not say)",
    )
    revision, src = _first(dmi.get("product_version"), dmi.get("board_version"), probe.cpu_revision)
    where = ("DMI product_version", "DMI board_version", "/proc/cpuinfo Revision", "")[src]
    draft.ask(
        (*path, "revision"),
        f"the hardware revision this profile covers (read: {where})"
        if revision
        else "the hardware revision this profile covers (the unit does not say)",
    )
    soc, src = _first(
        dt[-1] if len(dt) > 1 else None, probe.cpu_hardware, probe.cpu_model, dt[0] if dt else None
    )
    if soc is None:
        draft.ask((*path, "soc"), "the SoC or CPU (the unit does not say)")
    else:
        where = ("SoC compatible", "/proc/cpuinfo Hardware", "/proc/cpuinfo CPU model", "")[src]
        draft.note((*path, "soc"), f"from the {where or 'device tree'}")
    arch = facts.arch
    if arch not in ARCHES:
        raise InfraError(
            f"the unit reports architecture {arch!r}; a board profile names one of "
            f"{', '.join(ARCHES)}"
        )
    compatible, src = _first(dt[0] if dt else None, dmi.get("product_name"))
    if compatible is None:
        draft.ask((*path, "compatible"), "a compatible string (no device tree, no DMI table)")
    else:
        draft.note(
            (*path, "compatible"),
            "the device tree's first compatible" if src == 0 else "the DMI product_name",
        )
    return {
        "vendor": vendor or UNKNOWN,
        "model": model or UNKNOWN,
        "revision": revision or UNKNOWN,
        "soc": soc or UNKNOWN,
        "arch": arch,
        "compatible": compatible or UNKNOWN,
    }


def _console_ssh_boot(draft: Draft, probe: Probe, settings: Settings) -> None:
    used = settings.profile
    console = used.console.model_dump()
    if settings.baud:
        console["baud"] = settings.baud
    draft.doc["console"] = console
    draft.note(
        ("console",),
        "the settings this discovery logged in with"
        + (" (baud: the environment's serial port)" if settings.baud else ""),
    )
    draft.doc["ssh"] = used.ssh.model_dump(exclude_none=True)
    if settings.ssh_note:
        draft.note(("ssh",), settings.ssh_note)
    boot: dict[str, Any] = {"flow": used.boot.flow}
    loader = used.boot.bootloader.model_dump(exclude_defaults=True)
    if probe.uboot:
        boot["flow"] = "u-boot"
        draft.note(("boot", "flow"), f"the device tree's /chosen names U-Boot {probe.uboot}")
    else:
        hint = "; the unit has EFI firmware (grub?)" if probe.efi else ""
        draft.ask(
            ("boot", "flow"),
            "the unit was found running, so its bootloader was not seen: direct, u-boot, "
            f"barebox or grub{hint}",
        )
    if loader and boot["flow"] == used.boot.flow:
        boot["bootloader"] = loader
    boot["timeout"] = used.boot.timeout
    draft.note(("boot", "timeout"), "power-on to login prompt, seconds: measure a cold boot")
    draft.doc["boot"] = boot


def _inventory(draft: Draft, probe: Probe, facts: Facts) -> dict[str, Any]:
    path = ("inventory",)
    if facts.cpus is None or facts.memory_mib is None:
        raise InfraError("the unit did not report its CPU count and memory size")
    inventory: dict[str, Any] = {"cpus": facts.cpus}
    inventory["memory_mib"] = fitted_memory(facts.memory_mib)
    draft.ask(
        (*path, "memory_mib"),
        f"the RAM fitted: the kernel reports {facts.memory_mib} MiB, drafted as the next "
        "usual size up",
    )
    disks = [d for d in facts.block_devices if d.size_mib]
    inventory["block_devices"] = [{"name": d.name, "size_mib": d.size_mib} for d in disks]
    removable = [d.name for d in disks if d.removable]
    empty = [d.name for d in facts.block_devices if not d.size_mib]
    draft.ask(
        (*path, "block_devices"),
        "every device listed is required; remove what a unit may lack (cards, sticks)"
        + (f"; removable here: {', '.join(removable)}" if removable else ""),
    )
    if empty:
        draft.note((*path, "block_devices"), f"left out, no medium: {', '.join(empty)}")
    inventory["network_interfaces"] = [n.name for n in probe.net if n.hardware and n.up]
    down = [n.name for n in probe.net if n.hardware and not n.up]
    virtual = [n.name for n in probe.net if not n.hardware]
    if down:
        draft.ask(
            (*path, "network_interfaces"),
            f"hardware interfaces that are down were left out: {', '.join(down)}",
        )
    if virtual:
        draft.note((*path, "network_interfaces"), f"left out, not hardware: {', '.join(virtual)}")
    usb = [u for u in facts.usb_devices if u.vendor_id and u.vendor_id != ROOT_HUB_VENDOR]
    inventory["usb_devices"] = [
        {"kind": u.kind or "other", "vendor_id": u.vendor_id, "product_id": u.product_id}
        for u in usb
    ]
    if usb:
        draft.ask(
            (*path, "usb_devices"),
            "USB devices plugged in now are listed: keep those every unit has",
        )
    inventory["serial_ports"] = facts.serial_ports or 0
    draft.note((*path, "serial_ports"), "UARTs the kernel registered, the console included")
    inventory["watchdog"] = bool(facts.watchdog)
    inventory["rtc"] = bool(facts.rtc)
    return inventory


def draft_profile(name: str | None, probe: Probe, facts: Facts, settings: Settings) -> Draft:
    """The profile of the unit as it showed itself, with what a person must decide."""
    draft = Draft(doc={})
    identity = _identity(draft, probe, facts)
    if name is None:
        known = identity["model"] != UNKNOWN
        name = slug(identity["model"] if known else facts.hostname or "")
        draft.ask(
            ("name",),
            "the short id on the command line and the file's name"
            + ("" if known else " (from the unit's hostname: no model was read)"),
        )
    draft.doc.update(schema=1, kind="board", name=name)
    draft.doc["identity"] = identity
    _console_ssh_boot(draft, probe, settings)
    draft.doc["inventory"] = _inventory(draft, probe, facts)
    draft.doc["lab"] = settings.lab
    draft.note(("lab",), settings.lab_note)
    return draft


# -- YAML with comments ---------------------------------------------------------------------


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(
        value, default_flow_style=True, width=1 << 20, allow_unicode=True, sort_keys=False
    )
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _emit(mapping: dict[str, Any], draft: Draft, path: Path_, indent: int, out: list[str]) -> None:
    pad = " " * indent
    for key, value in mapping.items():
        here = (*path, key)
        out.extend(f"{pad}# {line}" for line in draft.comments.get(here, []))
        if isinstance(value, dict) and value:
            out.append(f"{pad}{key}:")
            _emit(value, draft, here, indent + 2, out)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out.append(f"{pad}{key}:")
            out.extend(f"{pad}  - {_scalar(item)}" for item in value)
        else:
            out.append(f"{pad}{key}: {_scalar(value)}")


def render(draft: Draft, header: list[str]) -> str:
    """The profile as YAML text, comments above the keys they are about."""
    out = [f"# {line}" if line else "#" for line in header]
    _emit(draft.doc, draft, (), 0, out)
    text = "\n".join(out) + "\n"
    if yaml.safe_load(text) != draft.doc:  # the emitter is ours: prove it wrote the document
        raise InfraError("the drafted profile did not read back as written (a harness defect)")
    return text
