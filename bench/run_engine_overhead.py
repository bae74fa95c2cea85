"""Per-test overhead of the run engine, against the bare console command it wraps.

Both are measured in the same run on the same board:
  baseline  `Board.console.run("true")`, N times, straight through the Board facade;
  engine    `harness run` of a plan of N tests whose only step is `run: "true"`:
            pytest item dispatch, applicability, expectations, transcript, the results.jsonl
            append + fsync, progress, per test.
Per-test engine time is taken from results.jsonl timestamps (first test's start to last test's
end, divided by N), so process start-up, board login and fact discovery are not counted.

Usage: python bench/run_engine_overhead.py [--board sim|qemu-x86_64] [-n 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.lab.board import Board  # noqa: E402
from harness.vlab.boardhost import resolve_board  # noqa: E402
from harness.vlab.handle import RunningBoard  # noqa: E402


def _plan(path: Path, count: int) -> None:
    lines = ["kind: plan", "id: overhead", 'version: "1"', "title: engine overhead", "tests:"]
    for index in range(count):
        lines.append(
            f'  - {{id: t{index:04d}, title: "true {index}", category: console, steps: [{{run: "true"}}]}}'
        )
    path.write_text("\n".join(lines) + "\n")


def _stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--board", default="sim")
    parser.add_argument("-n", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        board = RunningBoard.start(resolve_board(args.board), "overhead", lab_dir=tmp / "lab")
        try:
            direct = Board.open(board.profile, board.env_file, console_log=tmp / "baseline.log")
            direct.ensure_shell()
            times = []
            for _ in range(args.n):
                started = time.perf_counter()
                direct.console.run("true", timeout=10)
                times.append(time.perf_counter() - started)
            direct.close()
            baseline = statistics.mean(times)

            plan = tmp / "overhead.yaml"
            _plan(plan, args.n)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "harness",
                    "run",
                    "--board",
                    str(board.profile.source),
                    "--plan",
                    str(plan),
                    "--env",
                    str(board.env_file),
                    "--results",
                    str(tmp / "results"),
                    "--no-submit",
                    "--plain",
                ],
                check=True,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ},
            )
            folder = next((tmp / "results").glob("*/results.jsonl"))
            records = [json.loads(line) for line in folder.read_text().splitlines()]
            assert len(records) == args.n and all(r["outcome"] == "pass" for r in records)
            span = _stamp(records[-1]["finished_at"]) - _stamp(records[0]["started_at"])
            per_test = span / args.n
        finally:
            board.stop()
    print(f"board: {args.board}, {args.n} commands / tests")
    print(
        f"baseline console.run('true'): mean {baseline * 1000:.2f} ms, median {statistics.median(times) * 1000:.2f} ms"
    )
    print(f"engine, one test of one step: {per_test * 1000:.2f} ms")
    print(f"engine overhead per test:     {(per_test - baseline) * 1000:.2f} ms")
    print(f"ratio engine / bare command:  {per_test / baseline:.2f}x")


if __name__ == "__main__":
    main()
