"""The bisection search over builds (harness.repro.builds.bisect_table) with intermittent builds.

Each build here is a seeded Bernoulli source standing in for a board: the QEMU test
(test_repro_builds_qemu.py) shows the search on four real Debian kernels once; this file
covers what a deterministic kernel cannot show cheaply: an intermittent regression, a build
the lab could not test enough (uncertain), and a newest build that does not reproduce.
"""

from __future__ import annotations

import random

from harness.repro import stats
from harness.repro.builds import BuildRun, bisect_table
from harness.repro.session import Plan

PLAN = Plan(repeat=20, until_first=False, max_time=None, between="none")


class Builds:
    """Runs "iterations" of a build: reproduces with the build's rate; `errors` lab errors first."""

    def __init__(self, rates: list[float], errors: dict[int, int] | None = None, seed: int = 1):
        self.rates = rates
        self.errors = errors or {}
        self.rng = random.Random(seed)
        self.names = [f"build-{i}" for i in range(len(rates))]
        self.calls: list[tuple[str, int]] = []

    def run(self, build: str, plan: Plan) -> BuildRun:
        index = self.names.index(build)
        self.calls.append((build, plan.repeat))
        errors = self.errors.get(index, 0)
        counted = reproduced = 0
        budget = plan.repeat if errors == 0 else min(plan.repeat, 2)  # the lab gave up early
        while counted < budget:
            counted += 1
            if self.rng.random() < self.rates[index]:
                reproduced += 1
                if plan.until_first:
                    break
        return BuildRun(build, f"run-{index}", None, reproduced, counted, errors)


def test_intermittent_regression_is_found_with_enough_clean_iterations_per_good_call() -> None:
    builds = Builds([0.0] * 5 + [0.3] * 3)  # first bad: build-5, failing 30% of the time
    table, runs = bisect_table(builds.names, PLAN, builds.run)
    newest = next(r for r in runs if r.build == "build-7")
    per_build = stats.iterations_needed(stats.wilson(newest.reproduced, newest.iterations)[0])
    assert table["answer"] == "first bad build: build-5"
    assert table["iterations_per_build"] == per_build > 9, "against the lower bound, not 30%"
    calls = {row[1]: row[3] for row in table["rows"]}
    for run in runs:
        if run.call == "good":
            assert (run.reproduced, run.iterations) == (0, per_build)
        if run.call == "bad":
            assert run.reproduced >= 1
    assert calls["build-5"] == "bad" and calls["build-4"] == "good"
    assert builds.calls[0] == ("build-7", 20), "the newest build first, with the run's plan"
    assert len(builds.calls) <= 1 + 3, "a binary search: log2(8) probes after the newest"


def test_a_build_the_lab_could_not_test_enough_is_uncertain_and_stops_the_search() -> None:
    builds = Builds([0.0] * 4 + [0.5] * 4, errors={3: 5})  # build-3: the lab failed 5 times
    table, _ = bisect_table(builds.names, PLAN, builds.run)
    calls = {row[1]: row[3] for row in table["rows"]}
    assert calls["build-3"] == "uncertain"
    assert table["answer"].startswith("uncertain at build-3: 2 of")
    assert "first bad is after" in table["answer"] and "at or before build-7" in table["answer"]
    assert "first bad build" not in table["answer"]


def test_a_newest_build_that_does_not_reproduce_leaves_nothing_to_bisect() -> None:
    builds = Builds([0.0] * 4)
    table, runs = bisect_table(builds.names, PLAN, builds.run)
    assert table["answer"] == "the newest build build-3 does not reproduce: nothing to bisect"
    assert [r.build for r in runs] == ["build-3"]
    assert [row[3] for row in table["rows"]] == ["not run"] * 3 + ["good"]
