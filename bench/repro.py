"""Repro iteration overhead: a one-command case repeated 200 times on the simulated board.

`harness repro CASE --repeat 200 --between none` runs the case's single command per
iteration; its time per iteration comes from results.jsonl (first iteration's start to
the last one's end, divided by the count), so process start-up and login are not in it.
The baseline, on the same board in the same run, is that command sent 200 times
through `Board.console.run` in a bare loop. Every iteration must be classified
`not-reproduced` (the command's output never shows the signature).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.context import Context
from bench.core import REPO, Row, check
from harness.lab.board import Board

TITLE = "repro iteration overhead"
BASELINE = "the same command through Board.console.run in a bare loop"
COMMAND = 'echo "status: OK"'
CASE = """\
kind: case
case:
  id: bench-one-command
  customer_ref: BENCH-1
  severity: 4
  subsystem: userspace
description:
  summary: one console command, to time what an iteration costs beyond the command
seen_on:
  vendor: Harness Virtual Lab
  model: SIM (simulated, not hardware)
  revision: "1"
trigger:
  - run: '{command}'
signature:
  output: ['ERROR state']
settings:
  iterations: 1
"""


def _stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run(ctx: Context) -> Row:
    row = Row("repro", TITLE, BASELINE)
    count = ctx.n(200, 5)
    folder = ctx.folder("repro")
    case = folder / "case.yaml"
    case.write_text(CASE.format(command=COMMAND.replace("'", "''")))
    with ctx.board("sim") as running:
        board = Board.open(running.profile, running.env_file, console_log=folder / "bare.log")
        try:
            board.ensure_shell()
            bare = []
            for _ in range(count):
                result = board.console.run(COMMAND, timeout=10)
                check(result.stdout == "status: OK\n", f"bare loop answered {result.stdout!r}")
                bare.append(result.duration)
        finally:
            board.close()
        argv = [
            sys.executable, "-m", "harness", "repro", str(case), "--board", str(running.profile.source),
            "--env", str(running.env_file), "--repeat", str(count), "--between", "none",
            "--results", str(folder / "results"), "--no-submit",
        ]  # fmt: skip
        env = {**os.environ, "HARNESS_DATA_HOME": str(folder / "home")}
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=1800)
        check(
            done.returncode == 0, f"harness repro exited {done.returncode}: {done.stderr[-1500:]}"
        )
        records = [
            json.loads(line)
            for line in next((folder / "results").glob("*/results.jsonl")).read_text().splitlines()
        ]
        check(len(records) == count, f"{len(records)} iterations recorded, {count} asked")
        outcomes = {r["outcome"] for r in records}
        check(outcomes == {"not-reproduced"}, f"iteration outcomes {outcomes}")
        span = _stamp(records[-1]["finished_at"]) - _stamp(records[0]["started_at"])
        if not ctx.quick:
            _profile_iterations(argv, env, folder, ctx)
    per_iteration = span / count
    base = row.add("sim: Board.console.run in a bare loop", bare, baseline=True)
    row.add("sim: `harness repro` time per iteration (results.jsonl span / n)", [per_iteration])
    row.add(
        "sim: `harness repro` iteration durations as recorded", [r["duration"] for r in records]
    )
    row.ok(
        f"sim: {count} iterations, each recorded and classified not-reproduced; {count} bare commands answered"
    )
    row.target(
        "sim: iteration / bare command (mean)",
        per_iteration / statistics.mean(base.samples),
        "<=",
        1.2,
    )
    return row


def _profile_iterations(argv: list[str], env: dict[str, str], folder: Path, ctx: Context) -> None:
    """The same repro run under cProfile, kept as bench/profiles/repro-sim.txt."""
    import pstats

    prof = folder / "repro.prof"
    again = [a if a != str(folder / "results") else str(folder / "results-profiled") for a in argv]
    again[1:3] = ["-m", "cProfile", "-o", str(prof), "-m", "harness"]
    subprocess.run(again, cwd=REPO, capture_output=True, env=env, timeout=1800, check=False)
    if prof.exists():
        ctx.keep_profile(pstats.Stats(str(prof)), "repro-sim")
