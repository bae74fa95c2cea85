"""thermal-zones' verdict per zone (no virtual board has thermal zones, so the board is a
scripted console here): temperatures in range pass and are recorded per zone, and a hot
zone, an implausibly cold one or an unreadable one each fail by zone and type."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.lab.result import CommandResult
from harness.run.checks.thermal import zones_in_range
from harness.run.context import StepFailed, TestContext, Transcript


class ZonesConsole:
    def __init__(self, listing: str) -> None:
        self.listing = listing

    def run(self, command: str, timeout: float) -> CommandResult:
        return CommandResult(command, 0, self.listing, "", 0.01)


def _ctx(listing: str) -> TestContext:
    test = SimpleNamespace(params={"thermal_max_c": 90})
    return TestContext(
        board=SimpleNamespace(console=ZonesConsole(listing)), profile=None, facts={}, test=test,
        artifacts=Path("."), transcript=Transcript(), transport="console",
    )  # type: ignore[arg-type]  # fmt: skip


def test_zones_in_range_pass_and_each_is_recorded() -> None:
    ctx = _ctx("zone thermal_zone0 cpu-thermal 48312\nzone thermal_zone1 gpu-thermal 45000\n")
    zones_in_range(ctx)
    assert {m.name: m.value for m in ctx.measurements} == {
        "thermal_zone0_temperature": 48.312,
        "thermal_zone1_temperature": 45.0,
    }


def test_a_hot_a_cold_and_an_unreadable_zone_each_fail_by_name() -> None:
    listing = (
        "zone thermal_zone0 cpu-thermal 95000\n"
        "zone thermal_zone1 pmic-thermal -273000\n"
        "zone thermal_zone2 ddr-thermal cat: read error: Input/output error\n"
        "zone thermal_zone3 gpu-thermal 51000\n"
    )
    with pytest.raises(StepFailed) as failed:
        zones_in_range(_ctx(listing))
    reason = str(failed.value)
    assert "thermal_zone0 (cpu-thermal) reads 95 °C, outside -40..90 °C" in reason
    assert "thermal_zone1 (pmic-thermal) reads -273 °C" in reason
    assert "thermal_zone2 (ddr-thermal) is not readable: 'cat: read error" in reason
    assert "thermal_zone3" not in reason
