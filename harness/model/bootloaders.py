"""What each kind of bootloader prints and understands, as a table.

A lab engineer onboarding a board with another bootloader adds a row here
(or overrides fields in the profile's `boot.bootloader:`); the board state
machine (harness/lab/machine.py) reads only the resolved settings, never a
bootloader's name.

The firmware banners that only announce a stage (TF-A, coreboot, EDK II)
and are never driven live in the crash table instead
(harness/lab/crash_patterns.py), where a banner after the kernel ran means
the board reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.model.board import Bootloader


@dataclass(frozen=True)
class ResolvedBootloader:
    """A profile's bootloader settings with every default filled in."""

    name: str
    banner: str
    prompt: str
    autoboot: str | None
    menu: str | None
    menu_key: str
    interrupt: str
    kill_line: str
    boot_command: str
    on_autoboot: str


# name -> defaults; keys are Bootloader's fields.
KNOWN: dict[str, dict[str, str | None]] = {
    "u-boot": {
        "banner": r"U-Boot(?: SPL| TPL)? \d{4}\.\d{2}",
        "prompt": r"=> ",
        "autoboot": r"(?i)hit any key to stop autoboot|autoboot in \d+ seconds",
        "menu": None,
        "boot_command": "boot",
    },
    "barebox": {
        "banner": r"barebox(?:-pbl)? \d{4}\.\d{2}\.\d+",
        "prompt": r"barebox@[^\n]*:[^\n ]* ",
        "autoboot": r"Hit (?:m for menu or )?any (?:other )?key to stop autoboot",
        "menu": None,
        "boot_command": "boot",
    },
    "grub": {
        "banner": r"GNU GRUB +version \d|Welcome to GRUB!",
        "prompt": r"grub> ",
        "autoboot": r"will be (?:executed|booted) automatically in \d+s",
        "menu": r"Use the [^\n]* keys to select which entry is highlighted",
        "boot_command": "normal",
    },
}


def resolve(flow: str, given: Bootloader) -> ResolvedBootloader | None:
    """Merge the profile's overrides over the table's defaults for `flow`."""
    if flow == "direct":
        return None
    defaults = KNOWN[flow]

    def pick(field: str) -> str | None:
        value = getattr(given, field)
        return value if value is not None else defaults.get(field)

    return ResolvedBootloader(
        name=flow,
        banner=pick("banner") or "",
        prompt=pick("prompt") or "",
        autoboot=pick("autoboot"),
        menu=pick("menu"),
        menu_key=given.menu_key,
        interrupt=given.interrupt,
        kill_line=given.kill_line,
        boot_command=pick("boot_command") or "boot",
        on_autoboot=given.on_autoboot,
    )
