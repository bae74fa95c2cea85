"""Plan overhead: the harness's own share of a precert run's wall time on a QEMU board.

`harness run --plan testplans/precert.yaml` on a running qemu-x86_64 board (the smoke plan
on the simulated board under --quick), as a user starts it, but through bench/probe.py,
which sums the time spent inside board operations (commands, copies, login, reboots,
settling). Wall time is the whole process, from exec to exit. The harness's own time
is the difference: interpreter start-up, imports, plan loading, pytest, results,
bundle. The run must finish with every test passed.
"""

from __future__ import annotations

import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

from bench.context import Context
from bench.core import REPO, Row, check

TITLE = "plan overhead"
BASELINE = "time spent inside board commands (console, SSH, boot, reboot, settling)"
GUARD = 1800
LIMIT = 3.0  # per cent of wall


def probe_run(
    board_source: Path,
    env_file: Path,
    plan: Path,
    folder: Path,
    profile: Path | None,
    allowed: frozenset[str] = frozenset({"pass", "skip"}),
) -> tuple[float, dict]:
    """Wall seconds of one probed `harness run`, and the probe's report. Every test must
    end with an outcome in `allowed`."""
    out = folder / "probe.json"
    argv = [sys.executable, "-m", "bench.probe"]
    if profile is not None:  # before OUT: everything after OUT is the harness's
        argv += ["--profile", str(profile)]
    argv.append(str(out))
    argv += [
        "--", "run", "--board", str(board_source), "--plan", str(plan), "--env", str(env_file),
        "--results", str(folder / "results"), "--no-submit", "--plain",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=GUARD,
        env={**os.environ, "HARNESS_DATA_HOME": str(folder / "home")},
    )  # fmt: skip
    wall = time.perf_counter() - started
    check(
        done.returncode in ((0, 1) if "fail" in allowed else (0,)),
        f"harness run exited {done.returncode}: {done.stderr[-1500:]}",
    )
    report = json.loads(out.read_text())
    results = next((folder / "results").glob("*/results.jsonl")).read_text().splitlines()
    outcomes = {json.loads(line)["outcome"] for line in results}
    check(outcomes <= allowed, f"the plan did not pass: outcomes {outcomes}")
    report["tests"] = len(results)
    return wall, report


def run(ctx: Context) -> Row:
    row = Row("plan", TITLE, BASELINE)
    ref, plan = ("sim", "smoke") if ctx.quick else ("qemu-x86_64", "precert")
    folder = ctx.folder("plan")
    with ctx.board(ref) as running:
        profile = running.profile
        plan_file = REPO / "testplans" / f"{plan}.yaml"
        # The sim board shares the host's kernel log, whose crash reports (from anything
        # else on the host) may fail dmesg-clean: under --quick every test must run to a
        # pass or fail, with no error or not-run.
        allowed = frozenset({"pass", "skip", "fail"} if ctx.quick else {"pass", "skip"})
        wall, report = probe_run(profile.source, running.env_file, plan_file, folder, None, allowed)
        board = report["board_seconds"]
        own = wall - board
        if not ctx.quick and own / wall > LIMIT / 100:
            # A second, profiled run says where the time goes (the profiler slows it, so
            # the figures above come from the unprofiled run).
            again = ctx.folder("plan-profiled")
            probe_run(profile.source, running.env_file, plan_file, again, again / "run.prof")
            ctx.keep_profile(pstats.Stats(str(again / "run.prof")), f"plan-{ref}")
    row.add(f"{ref}: `harness run` {plan}, wall", [wall], "s")
    row.add(f"{ref}: inside board operations", [board], "s", True)
    row.add(f"{ref}: the harness's own time", [own], "s")
    calls = ", ".join(f"{k} {v}" for k, v in sorted(report["calls"].items()))
    row.ok(
        f"{ref}: {plan} plan ran to the end ({report['tests']} tests); board operations: {calls}"
    )
    row.target(f"{ref}: harness's own time / wall", 100 * own / wall, "<=", LIMIT, " %")
    return row
