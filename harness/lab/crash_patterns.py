"""Kernel crash and reset signatures, as data.

Kept as a table rather than code so that a support engineer who meets a new
signature in a customer log adds one row (and one sample to the scan tests)
without touching the matcher. Rows are tried in order and the first match wins,
so specific rows (soft lockup, which starts with "BUG:") come before general
ones ("BUG:").

Severity says what a match means for a test that was running:
  fatal   - the board is gone or restarted (panic, reset, no root fs)
  error   - the kernel is damaged but may limp on (Oops, BUG, lockups, stalls)
  warning - worth recording, not a crash by itself (WARNING:, a user segfault)
`ConsoleSession.run()` raises `BoardCrashed` for fatal and error.

`boot_marker` rows are not crashes by themselves: they mark the start of a
boot. `CrashWatch` turns one into an `unexpected-reset` event only when it
appears while no boot was expected (see crashwatch.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Severity = Literal["fatal", "error", "warning"]
SEVERITY_RANK: dict[str, int] = {"warning": 0, "error": 1, "fatal": 2}


@dataclass(frozen=True)
class CrashPattern:
    kind: str
    regex: re.Pattern[str]
    severity: Severity
    description: str
    context_after: int
    boot_marker: Literal["bootloader", "kernel"] | None = None


def _p(
    kind: str,
    regex: str,
    severity: Severity,
    description: str,
    context_after: int,
    boot_marker: Literal["bootloader", "kernel"] | None = None,
) -> CrashPattern:
    return CrashPattern(kind, re.compile(regex), severity, description, context_after, boot_marker)


# Lines kept before a match, so an excerpt shows what led up to it.
CONTEXT_BEFORE = 3

PATTERNS: tuple[CrashPattern, ...] = (
    _p("panic", r"(?<!end )Kernel panic - not syncing", "fatal", "kernel panic", 15),
    _p(
        "no-root-fs",
        r"VFS: Unable to mount root fs|Cannot open root device",
        "fatal",
        "the kernel could not mount the root file system",
        8,
    ),
    _p(
        "init-segfault", r"\b(?:init|systemd)\[1\]: segfault at", "fatal", "init (PID 1) crashed", 6
    ),
    _p(
        "watchdog-reset",
        r"\b(?i:reset[ _-]?(?:cause|reason|source)|last reset)\b.*\b(?i:wdog|wdt|watchdog)\b",
        "fatal",
        "the bootloader reports a watchdog reset",
        2,
    ),
    _p(
        "watchdog-reset",
        r"\b(?:softdog|watchdog): Initiating system reboot",
        "fatal",
        "a watchdog is rebooting the system",
        2,
    ),
    _p(
        "soft-lockup",
        r"BUG: soft lockup - CPU#?\d+ stuck for",
        "error",
        "soft lockup: a CPU did not schedule for too long",
        20,
    ),
    _p(
        "hard-lockup",
        r"Watchdog detected hard LOCKUP on cpu|NMI watchdog: .*hard LOCKUP",
        "error",
        "hard lockup detected by the NMI watchdog",
        20,
    ),
    _p(
        "rcu-stall",
        r"rcu: INFO: rcu_\w+ (?:self-)?detected stall|INFO: rcu_\w+ (?:self-)?detected stall",
        "error",
        "RCU stall: a CPU or task held up RCU grace periods",
        20,
    ),
    _p(
        "hung-task",
        r"INFO: task \S+ blocked for more than \d+ seconds",
        "error",
        "hung task: a task stayed in uninterruptible sleep",
        12,
    ),
    _p(
        "oops",
        r"\b(?:Internal error: )?Oops(?: - \w+)?: [0-9a-fx]+ \[#\d+\]",
        "error",
        "kernel Oops",
        20,
    ),
    _p("bug", r"\bBUG: [a-zA-Z]|kernel BUG at \S+", "error", "kernel BUG", 20),
    _p(
        "bad-access",
        r"Unable to handle kernel (?:NULL pointer dereference|paging request)|general protection fault",
        "error",
        "the kernel accessed memory it must not",
        20,
    ),
    _p(
        "oom-kill",
        r"Out of memory(?: and no killable processes)?[:.]? ?Kill|invoked oom-killer:",
        "error",
        "the out-of-memory killer ran",
        8,
    ),
    _p(
        "machine-check",
        r"Machine check events logged|\[Hardware Error\]",
        "error",
        "the CPU reported a hardware error",
        8,
    ),
    _p(
        "fs-error",
        r"EXT4-fs error|EXT4-fs \(\S+\): Remounting filesystem read-only|BTRFS error|XFS \(\S+\): Corruption",
        "error",
        "file system error",
        4,
    ),
    _p("warning", r"WARNING: (?:CPU: \d+ PID: \d+ at|at) \S+", "warning", "kernel WARNING", 12),
    _p("segfault", r"\S+\[\d+\]: segfault at [0-9a-f]+", "warning", "a user program crashed", 2),
    _p("io-error", r"I/O error, dev \S+, sector", "warning", "block device I/O error", 2),
    # Firmware and bootloader banners: one boot shows each stage once (TF-A's BL1, BL2 and
    # BL31, U-Boot SPL then U-Boot, GRUB...); a banner after the kernel ran is a reset.
    _p(
        "bootloader-banner",
        r"(?:^|[\s\]])U-Boot(?P<stage> SPL| TPL)? \d{4}\.\d{2}",
        "fatal",
        "the bootloader (U-Boot) started",
        2,
        boot_marker="bootloader",
    ),
    _p(
        "bootloader-banner",
        r"NOTICE:\s+(?:Booting Trusted Firmware|(?P<stage>BL(?:1|2|31|32)): v\d)",
        "fatal",
        "the firmware (Trusted Firmware-A) started",
        2,
        boot_marker="bootloader",
    ),
    _p(
        "bootloader-banner",
        r"(?:^|[\s\]])coreboot-\S+.* (?P<stage>bootblock|romstage|ramstage|postcar)?\s*starting",
        "fatal",
        "the firmware (coreboot) started",
        2,
        boot_marker="bootloader",
    ),
    _p(
        "bootloader-banner",
        r"(?:^|[\s\]])barebox(?P<stage>-pbl)? \d{4}\.\d{2}\.\d+",
        "fatal",
        "the bootloader (barebox) started",
        2,
        boot_marker="bootloader",
    ),
    _p(
        "bootloader-banner",
        r"UEFI firmware \(version|(?P<stage>BdsDxe): (?:loading|starting) Boot",
        "fatal",
        "the firmware (EDK II / UEFI) started",
        2,
        boot_marker="bootloader",
    ),
    _p(
        "bootloader-banner",
        r"GNU GRUB +version \d|Welcome to GRUB!",
        "fatal",
        "the bootloader (GRUB) started",
        2,
        boot_marker="bootloader",
    ),
    _p(
        "kernel-banner",
        # The built-in simulated board (`harness lab up sim`) has no kernel of its own: its
        # init prints this line at every power-on, where a real board prints `Linux version`.
        r"^\*\*\* Harness SIMULATED board \S+: not hardware",
        "fatal",
        "the simulated board started",
        2,
        boot_marker="kernel",
    ),
    _p(
        "kernel-banner",
        r"(?:^|[\s\]])Linux version \d+\.\d+\S* \(",
        "fatal",
        "a kernel started",
        2,
        boot_marker="kernel",
    ),
)

# The kind reported when a boot marker appears while no boot was expected.
UNEXPECTED_RESET = "unexpected-reset"
