"""What every benchmark row shares: samples, percentiles, ratios, targets and the machine.

A row measures one thing (the harness) next to its baseline in the same run, so a
loaded machine slows both alike and the ratio stays meaningful. Each row returns a
`Row`: its sample series (seconds, or another unit), the ratios it derives, each
compared with the issue's target, and the correctness checks it made (commands
answered, bytes intact, nothing lost). `--quick` keeps only the correctness checks
binding; targets are reported, never enforced (speed on a shared CI host is noise).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy

REPO = Path(__file__).resolve().parents[1]


class CheckFailed(AssertionError):
    """A benchmark's correctness check failed: its numbers would measure a broken path."""


def check(condition: bool, what: str) -> None:
    """A correctness check (never a speed check): raise when it does not hold."""
    if not condition:
        raise CheckFailed(what)


@dataclass
class Series:
    """Samples of one method, e.g. 200 command round trips of ConsoleSession.run."""

    name: str
    samples: list[float]
    unit: str = "ms"  # samples are seconds; shown in this unit ("ms", "s", "MB/s", ...)
    baseline: bool = False

    def _scale(self, value: float) -> float:
        return value * 1000 if self.unit == "ms" else value

    @property
    def median(self) -> float:
        return float(numpy.median(self.samples))

    def percentile(self, q: float) -> float:
        return float(numpy.percentile(self.samples, q))

    def cells(self) -> list[str]:
        if len(self.samples) == 1:
            value = _fmt(self._scale(self.samples[0]))
            return [str(1), value, "—", "—"]
        return [
            str(len(self.samples)),
            _fmt(self._scale(self.median)),
            _fmt(self._scale(self.percentile(90))),
            _fmt(self._scale(self.percentile(99))),
        ]


@dataclass
class Target:
    """One of the issue's targets: `value` compared with `limit` (`<=` or `>=`)."""

    label: str  # what is compared, e.g. "ConsoleSession / raw loop (median)"
    value: float
    op: str
    limit: float
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def text(self) -> str:
        return f"{_fmt(self.value)}{self.unit}"

    def goal(self) -> str:
        return f"{'≤' if self.op == '<=' else '≥'} {_fmt(self.limit)}{self.unit}"


@dataclass
class Row:
    """One line of the issue's table, with everything measured for it."""

    key: str
    title: str
    baseline: str
    series: list[Series] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # correctness checks that held
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # parts of the row not measured, and why
    profiles: list[str] = field(default_factory=list)  # bench/profiles/*.txt this row wrote
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process and its waited-for children
    error: str | None = None

    def add(
        self, name: str, samples: list[float], unit: str = "ms", baseline: bool = False
    ) -> Series:
        series = Series(name, list(samples), unit, baseline)
        self.series.append(series)
        return series

    def target(self, label: str, value: float, op: str, limit: float, unit: str = "x") -> Target:
        goal = Target(label, value, op, limit, unit)
        self.targets.append(goal)
        return goal

    def ok(self, what: str) -> None:
        """Record a correctness check that held (the caller checked it with `check`)."""
        self.checks.append(what)


def ratio(numerator: Series, denominator: Series) -> float:
    return numerator.median / denominator.median


def timed(call: Callable[[], object], count: int) -> list[float]:
    """Wall time of `count` calls, one sample each."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


# ---------------------------------------------------------------------------------------------
# The machine and the revision measured


def git_revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    revision = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = git(
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":!bench/RESULTS.md",
        ":!bench/RESULTS.json",
    )
    return revision + (" (with uncommitted changes)" if dirty else "")


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": f"{cpu}, {os.cpu_count()} CPUs",
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
