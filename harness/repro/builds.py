"""A/B comparison and bisection of a case over builds (on the virtual lab: Debian kernel packages).

Each build gets a board of its own (a bench started with that kernel package, see
`harness.vlab.boardhost.start_bench(kernel_package=…)`) and an ordinary repro run, so every
number in the table below has a run folder and a report behind it.

Bisection handles intermittent cases (docs/repro.md, "Bisection"): the newest build is run
first and must reproduce; the lower 95% Wilson bound of its rate, p, sets the iterations n
for a "good" call: n is the fewest with P(no reproduction in n | rate p) <= 5%. A build is
`bad` at its first reproduction (a matched signature is proof) and `good` after n clean
iterations; anything less (lab errors) is `uncertain` and stops the search there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.model.board import BoardProfile
from harness.model.case import Case
from harness.model.case_records import IterationRecord, Summary
from harness.report.runfolder import new_run_id
from harness.repro import stats
from harness.repro.report import write_report
from harness.repro.session import Plan, ReproSession, open_or_fail


@dataclass
class BuildRun:
    build: str
    run_id: str
    kernel_release: str | None
    reproduced: int
    iterations: int
    errors: int
    call: str = ""

    @property
    def rate(self) -> float | None:
        return self.reproduced / self.iterations if self.iterations else None


Progress = Callable[[IterationRecord, Summary], None]


def run_build(
    case: Case,
    profile: BoardProfile,
    build: str,
    results_root: Path,
    plan: Plan,
    progress: Progress | None = None,
) -> BuildRun:
    """One repro run of the case on a fresh virtual board booting kernel package `build`."""
    from harness.vlab import boardhost
    from harness.vlab import state as lab_state

    run_id = new_run_id(profile.name)
    name = f"build-{run_id.rsplit('-', 1)[-1]}-{os.getpid()}"
    started = boardhost.start_bench(
        profile, name, lab_dir=lab_state.lab_dir(), owner=os.getpid(), kernel_package=build
    )
    try:
        session = ReproSession(
            case,
            profile,
            Path(started.env_file),
            results_root,
            plan,
            run_id=run_id,
            lab_kind="virtual",
            lab_name=f"{profile.name} kernel {build}",
            progress=progress,
        )
        try:
            open_or_fail(session)
            session.iterate()
            session.finish()
        finally:
            session.close()
    finally:
        boardhost.stop_bench(started)
    summary = session.run.summary
    assert summary is not None
    return BuildRun(
        build=build,
        run_id=run_id,
        kernel_release=session.run.software.kernel_release,
        reproduced=summary.reproduced,
        iterations=summary.iterations,
        errors=summary.errors,
    )


def ab_table(a: BuildRun, b: BuildRun) -> dict[str, Any]:
    result = stats.compare(a.reproduced, a.iterations, b.reproduced, b.iterations)
    rows = []
    for run in (a, b):
        interval = stats.wilson(run.reproduced, run.iterations)
        rows.append(
            [
                run.build,
                run.kernel_release or "?",
                f"{run.reproduced}/{run.iterations}",
                f"{100 * run.rate:.0f}%" if run.rate is not None else "—",
                f"{100 * interval[0]:.0f}% to {100 * interval[1]:.0f}%" if interval else "—",
                run.run_id,
            ]
        )
    return {
        "title": "A/B comparison",
        "columns": ["build", "kernel", "reproduced", "rate", "95% interval", "run"],
        "rows": rows,
        "note": f"Fisher's exact test (two-sided): p = {result.p_value:.4g}",
        "p_value": result.p_value,
    }


RunOne = Callable[[str, Plan], BuildRun]


def bisect(
    case: Case,
    profile: BoardProfile,
    builds: list[str],
    results_root: Path,
    plan: Plan,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Find the first bad build in `builds` (oldest first); returns the bisection table, which
    every build's report carries."""

    def run_one(build: str, probe: Plan) -> BuildRun:
        return run_build(case, profile, build, results_root, probe, progress)

    table, runs = bisect_table(builds, plan, run_one)
    for run in runs:
        write_report(results_root / run.run_id, table)
    return table


def bisect_table(
    builds: list[str], plan: Plan, run_one: RunOne
) -> tuple[dict[str, Any], list[BuildRun]]:
    """The search itself, over `run_one(build, plan)`: newest first, then binary search."""
    runs: dict[int, BuildRun] = {}
    last = len(builds) - 1
    newest = run_one(builds[last], plan)
    newest.call = "bad" if newest.reproduced else "good"
    runs[last] = newest
    answer: str
    per_build = 0
    if not newest.reproduced:
        answer = f"the newest build {builds[last]} does not reproduce: nothing to bisect"
    else:
        low = stats.wilson(newest.reproduced, newest.iterations)
        assert low is not None
        per_build = stats.iterations_needed(max(low[0], 1e-6))
        good, bad = -1, last
        answer = ""
        while bad - good > 1:
            mid = (good + bad) // 2
            probe = Plan(
                repeat=per_build, until_first=True, max_time=plan.max_time, between=plan.between
            )
            run = run_one(builds[mid], probe)
            if run.reproduced:
                run.call, bad = "bad", mid
            elif run.iterations >= per_build:
                run.call, good = "good", mid
            else:
                run.call = "uncertain"
                runs[mid] = run
                answer = (
                    f"uncertain at {builds[mid]}: {run.iterations} of {per_build} clean "
                    f"iterations ({run.errors} lab errors); first bad is after {builds[good] if good >= 0 else 'the start'} "
                    f"and at or before {builds[bad]}"
                )
                break
            runs[mid] = run
        if not answer:
            answer = f"first bad build: {builds[bad]}" + (
                " (the oldest build given; no good build was seen)" if bad == 0 else ""
            )
    rows = []
    for index, build in enumerate(builds):
        run = runs.get(index)
        if run is None:
            rows.append([index + 1, build, "", "not run", "", ""])
            continue
        rows.append(
            [
                index + 1,
                build,
                run.kernel_release or "?",
                run.call,
                f"{run.reproduced}/{run.iterations}"
                + (f" (+{run.errors} errors)" if run.errors else ""),
                run.run_id,
            ]
        )
    table = {
        "title": "Bisection",
        "columns": ["#", "build", "kernel", "call", "reproduced", "run"],
        "rows": rows,
        "note": f"{answer}. A good call needs {per_build} clean iterations (95% confidence "
        "against the newest build's lower Wilson bound); a bad call needs one reproduction.",
        "answer": answer,
        "iterations_per_build": per_build,
    }
    return table, list(runs.values())
