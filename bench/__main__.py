"""`python3 -m bench`: run every benchmark and write bench/RESULTS.md.

    python3 -m bench                 # full run (~20-30 min on 2 cores), writes bench/RESULTS.md
    python3 -m bench --quick         # correctness only, < 1 min, simulated board, tiny sizes
    python3 -m bench --only console --only registry --out /tmp/partial.md

Exit status: 0 when every row ran and every correctness check held (targets missed are
reported in the table, not in the exit status); 1 when a row failed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.context import Context
from bench.core import REPO, Row, load_average, utc_now
from bench.report import render, write

# Row modules in the order of the table, then the virtual lab's own rows.
ROWS = [
    "console",
    "capture",
    "ssh",
    "boot",
    "plan",
    "repro",
    "fanout",
    "registry",
    "submissions",
    "vlab",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="correctness only, tiny sizes")
    parser.add_argument("--only", action="append", choices=ROWS, help="run only these rows")
    parser.add_argument(
        "--out", type=Path, help="where to write the table (default: bench/RESULTS.md; "
        "--quick writes nothing unless given)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    out = args.out or (None if args.quick else REPO / "bench" / "RESULTS.md")
    names = args.only or ROWS
    scratch = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    # Boards started here live in this run's own lab folder, never a user's `harness lab up`.
    os.environ["HARNESS_LAB_DIR"] = str(scratch / "lab")
    ctx = Context(quick=args.quick, scratch=scratch)
    started, load_start, clock = utc_now(), load_average(), time.monotonic()
    rows: list[Row] = []
    try:
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            print(f"bench: {module.TITLE} ...", file=sys.stderr, flush=True)
            row_started, cpu_started = time.monotonic(), _cpu_seconds()
            try:
                row = module.run(ctx)
            except Exception as exc:  # one broken row must not hide the others' results
                traceback.print_exc()
                row = Row(name, module.TITLE, module.BASELINE, error=f"{type(exc).__name__}: {exc}")
            row.seconds = time.monotonic() - row_started
            row.cpu_seconds = _cpu_seconds() - cpu_started
            rows.append(row)
            _print_row(row)
            # The table is rewritten after every row: a run stopped part-way (a deadline, a
            # hang in a later row) keeps what it measured, and says which rows it lacks.
            if out is not None:
                not_run = [r for r in ROWS if r not in {done.key for done in rows}]
                text = render(
                    rows,
                    quick=args.quick,
                    started=started,
                    load_start=load_start,
                    seconds=time.monotonic() - clock,
                    not_run=[importlib.import_module(f"bench.{r}").TITLE for r in not_run],
                )
                write(out, text)
    finally:
        ctx.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if out is not None:
        print(f"bench: wrote {out}", file=sys.stderr)
    return 1 if any(r.error for r in rows) else 0


def _cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for (boards, harness runs,
    servers): unlike wall time it hardly grows when other jobs share the host."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _print_row(row: Row) -> None:
    if row.error:
        print(f"  FAILED: {row.error}", file=sys.stderr)
        return
    for goal in row.targets:
        print(
            f"  {goal.label}: {goal.text()} (target {goal.goal()}: "
            f"{'met' if goal.met else 'missed'})",
            file=sys.stderr,
        )
    for what in row.checks:
        print(f"  ok: {what}", file=sys.stderr)
    print(f"  ({row.seconds:.0f} s, {row.cpu_seconds:.0f} s of CPU)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
