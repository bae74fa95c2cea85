"""Thermal zones: every zone the kernel registers is readable, and each reads a plausible temperature.

One zone at a time, so a sensor that answers EIO or reads -273 °C is named by zone and type
instead of disappearing behind the hottest one. The upper bound (`thermal_max_c`) is where an
idle board is too hot (a missing heatsink, a stuck fan); below -40 °C no SBC runs, so a colder
reading is a broken sensor or driver.
"""

from __future__ import annotations

import re

from harness.run.context import TestContext

ZONE = re.compile(r"^zone (\S+) (\S+) (.*)$", re.MULTILINE)
COLDEST_PLAUSIBLE_C = -40.0


def zones_in_range(ctx: TestContext) -> None:
    hottest = float(ctx.params.get("thermal_max_c", 90))
    listing = ctx.run(
        "for z in /sys/class/thermal/thermal_zone*; do [ -d $z ] || continue; "
        'echo "zone ${z##*/} $(cat $z/type 2>/dev/null || echo unknown) $(cat $z/temp 2>&1)"; done'
    ).stdout
    zones = ZONE.findall(listing)
    if not zones:
        ctx.fail(f"no thermal zone could be listed: {listing.strip()[-200:]!r}")
    problems = []
    for zone, kind, reading in zones:
        value = reading.strip()
        if not re.fullmatch(r"-?\d+", value):
            problems.append(f"{zone} ({kind}) is not readable: {value[:80]!r}")
            continue
        celsius = int(value) / 1000
        ctx.measure(f"{zone}_temperature", celsius, "C")
        if not COLDEST_PLAUSIBLE_C <= celsius <= hottest:
            problems.append(
                f"{zone} ({kind}) reads {celsius:g} °C, outside {COLDEST_PLAUSIBLE_C:g}..{hottest:g} °C"
            )
    if problems:
        ctx.fail("thermal zones: " + "; ".join(problems))
