"""GPIO: a level driven on an output line is read on the input line wired to it.

Done through the kernel's sysfs GPIO interface (/sys/class/gpio: export, direction, value)
with shell built-ins and `cat`, because every board OS with CONFIG_GPIO_SYSFS can do it with
nothing installed. The libgpiod tools (gpioset/gpioget) are not used: their command lines
differ between libgpiod 1 and 2, and libgpiod 1's gpioset releases the line when it exits,
so the level it set is undefined by the time gpioget reads the other line.

The fixture names a line as the GPIO character device does (chip `gpiochipN` or the chip's
label, and the offset in it); sysfs numbers lines globally, from the base of each chip's
/sys/class/gpio/gpiochipBASE folder, so the global number is that base plus the offset. The
output is switched to output driven low (`low`: no glitch high), then driven through a fixed
pattern with both transitions repeated, the input read after each step. Afterwards the
output goes back to input (undriven) and the lines the check exported are unexported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.run.context import TestContext

PATTERN = (1, 0, 1, 1, 0, 0, 1, 0)
SYSFS = "/sys/class/gpio"


@dataclass(frozen=True)
class SysfsChip:
    base: int
    device: str  # gpiochipN, the character device's name
    label: str


def _chips(ctx: TestContext) -> list[SysfsChip]:
    listing = ctx.run(
        f'for d in {SYSFS}/gpiochip*; do [ -r "$d/base" ] || continue; '
        'echo "chip $(cat "$d/base") $(basename "$(readlink -f "$d/device")") $(cat "$d/label")"; '
        "done"
    )
    found = re.findall(r"^chip (\d+) (\S+) ?(.*?)\s*$", listing.stdout, re.MULTILINE)
    return [SysfsChip(int(base), device, label) for base, device, label in found]


def _global_number(chips: list[SysfsChip], line: dict[str, object]) -> int | None:
    for chip in chips:
        if line["chip"] in (chip.device, chip.label):
            return chip.base + int(str(line["line"]))
    return None


def _describe(line: dict[str, object], number: int) -> str:
    return f"{line['chip']} line {line['line']} (GPIO {number})"


def loopback(ctx: TestContext) -> None:
    fixture = ctx.item
    if ctx.run(f"[ -w {SYSFS}/export ]").exit_status != 0:
        ctx.fail(
            f"the kernel has no sysfs GPIO interface ({SYSFS}/export: CONFIG_GPIO_SYSFS), "
            "which this check drives the lines through"
        )
    chips = _chips(ctx)
    numbers = {}
    for role in ("output", "input"):
        number = _global_number(chips, fixture[role])
        if number is None:
            known = ", ".join(f"{c.device} ({c.label}, base {c.base})" for c in chips) or "none"
            ctx.fail(f"{role} chip {fixture[role]['chip']!r} is not on the unit (chips: {known})")
        numbers[role] = number
    out, into = numbers["output"], numbers["input"]
    exported = ctx.run(
        f"for n in {out} {into}; do [ -d {SYSFS}/gpio$n ] && continue; "
        f'echo $n >{SYSFS}/export && echo "exported $n"; done'
    )
    ours = re.findall(r"^exported (\d+)\s*$", exported.stdout, re.MULTILINE)
    try:
        _drive_and_read(ctx, fixture, out, into)
    finally:
        ctx.run(
            f"echo in >{SYSFS}/gpio{out}/direction; "
            + "".join(f"echo {n} >{SYSFS}/unexport; " for n in ours)
            + "true"
        )


def _drive_and_read(ctx: TestContext, fixture: dict[str, object], out: int, into: int) -> None:
    setup = ctx.run(
        f"echo in >{SYSFS}/gpio{into}/direction && echo low >{SYSFS}/gpio{out}/direction"
    )
    if setup.exit_status != 0:
        ctx.fail(
            f"cannot set GPIO {into} as input and GPIO {out} as output (claimed by a driver?): "
            f"{(setup.stdout + setup.stderr).strip()[-200:]}"
        )
    pattern = " ".join(str(level) for level in PATTERN)
    result = ctx.run(
        f"for v in {pattern}; do echo $v >{SYSFS}/gpio{out}/value && "
        f'echo "level $v $(cat {SYSFS}/gpio{into}/value)"; done'
    )
    pairs = re.findall(r"^level ([01]) (\S*)\s*$", result.stdout, re.MULTILINE)
    read = [level for _driven, level in pairs]
    if [int(driven) for driven, _ in pairs] != list(PATTERN) or read != [str(v) for v in PATTERN]:
        ctx.fail(
            f"drove {_describe(fixture['output'], out)} {pattern}, "
            f"{_describe(fixture['input'], into)} read {' '.join(read) or 'nothing'}"
        )
