"""cpu-frequency's verdict on what a board's cpufreq sysfs says (no virtual board has cpufreq,
so the board is a scripted console here): scaling that works passes with its numbers, a
policy stuck at its minimum under load or a core in no policy fails by name, and a governor
that holds the frequency low on purpose is not a fault."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.lab.result import CommandResult
from harness.run.checks.cpu import frequency_scaling
from harness.run.context import StepFailed, TestContext, Transcript

# Two clusters, as on a big.LITTLE SBC: CPUs 0-3 at 600-1800 MHz, CPUs 4-5 at 600-2208 MHz.
POLICIES = (
    "policy policy0 600000 1800000 schedutil 0 1 2 3\n"
    "policy policy4 600000 2208000 {governor} 4 5\n"
)


class CpufreqConsole:
    """Answers the check's three kinds of command the way such a board's shell would."""

    def __init__(self, governor: str, loaded: dict[str, int], cores: int = 6) -> None:
        self.governor, self.loaded, self.cores = governor, loaded, cores
        self.loaded_policies: list[str] = []

    def run(self, command: str, timeout: float) -> CommandResult:
        if command.startswith("for p in"):
            out = POLICIES.format(governor=self.governor)
        elif command == "nproc":
            out = f"{self.cores}\n"
        else:
            policy = next(name for name in self.loaded if f"/{name}/" in command)
            self.loaded_policies.append(policy)
            out = f"loaded {self.loaded[policy]}\n"
        return CommandResult(command, 0, out, "", 0.01)


def _ctx(console: CpufreqConsole) -> TestContext:
    return TestContext(
        board=SimpleNamespace(console=console), profile=None, facts={}, test=None,
        artifacts=Path("."), transcript=Transcript(), transport="console",
    )  # type: ignore[arg-type]  # fmt: skip


def test_policies_that_rise_under_load_pass_with_their_range_and_loaded_frequency() -> None:
    ctx = _ctx(CpufreqConsole("ondemand", {"policy0": 1800000, "policy4": 1416000}))
    frequency_scaling(ctx)
    measured = {m.name: m.value for m in ctx.measurements}
    assert measured["policy0_loaded"] == 1800.0 and measured["policy4_loaded"] == 1416.0
    assert (measured["policy4_min"], measured["policy4_max"]) == (600.0, 2208.0)


def test_a_policy_stuck_at_its_minimum_under_load_fails_naming_it_and_its_cpus() -> None:
    ctx = _ctx(CpufreqConsole("schedutil", {"policy0": 1800000, "policy4": 600000}))
    with pytest.raises(StepFailed) as failed:
        frequency_scaling(ctx)
    assert "policy4 (CPUs 4 5) stayed at its minimum 600 MHz under load" in str(failed.value)
    assert "policy0" not in str(failed.value)


def test_a_core_outside_every_policy_fails_and_a_powersave_governor_is_left_alone() -> None:
    console = CpufreqConsole("powersave", {"policy0": 1800000, "policy4": 600000}, cores=8)
    with pytest.raises(StepFailed) as failed:
        frequency_scaling(_ctx(console))
    reason = str(failed.value)
    assert "CPU 6 is in no cpufreq policy; CPU 7 is in no cpufreq policy" in reason
    assert "policy4" not in reason
    assert console.loaded_policies == ["policy0"], "powersave holds the frequency low on purpose"
