"""`python3 -m bench`: run every benchmark and write bench/RESULTS.md.

    python3 -m bench                 # full run (about an hour on 2 busy cores), writes bench/RESULTS.md
    python3 -m bench --quick         # correctness only, ~2 min, simulated board, tiny sizes
    python3 -m bench --only console --only registry --out /tmp/partial.md
    python3 -m bench --only repro --merge   # re-measure one row, keep the others of RESULTS.md

Exit status: 0 when every row ran and every correctness check held (targets missed are
reported in the table, not in the exit status); 1 when a row failed; 2 for bad arguments.
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

from bench import store
from bench.context import Context
from bench.core import REPO, Row, git_revision, load_average, utc_now
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
    parser.add_argument(
        "--merge", action="store_true", help="keep the rows of the existing table (from its "
        ".json beside it) that this run does not measure, instead of listing them as not run",
    )  # fmt: skip
    args = parser.parse_args(argv)
    out = args.out or (None if args.quick else REPO / "bench" / "RESULTS.md")
    names = args.only or ROWS
    runs, kept = store.load(out) if args.merge and out is not None else ([], [])
    if any(run.quick != args.quick for run in runs):
        parser.error(f"--merge: {out} holds rows of another mode (--quick and full never mix)")
    kept = [(index, row) for index, row in kept if row.key not in names]
    runs.append(store.Provenance(utc_now(), git_revision(), load_average(), quick=args.quick))
    this_run = len(runs) - 1
    scratch = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    # Boards started here live in this run's own lab folder, never a user's `harness lab up`.
    os.environ["HARNESS_LAB_DIR"] = str(scratch / "lab")
    ctx = Context(quick=args.quick, scratch=scratch)
    clock = time.monotonic()
    rows: list[Row] = []
    try:
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            print(f"bench: {module.TITLE} ...", file=sys.stderr, flush=True)
            row_started, cpu_started = time.monotonic(), _cpu_seconds()
            profiles_before = len(ctx.saved_profiles)
            try:
                row = module.run(ctx)
            except Exception as exc:  # one broken row must not hide the others' results
                traceback.print_exc()
                row = Row(name, module.TITLE, module.BASELINE, error=f"{type(exc).__name__}: {exc}")
            row.seconds = time.monotonic() - row_started
            row.profiles = [
                path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
                for path in ctx.saved_profiles[profiles_before:]
            ]
            row.cpu_seconds = _cpu_seconds() - cpu_started
            rows.append(row)
            _print_row(row)
            # The table is rewritten after every row: a run stopped part-way (a deadline, a
            # hang in a later row) keeps what it measured, and says which rows it lacks.
            if out is not None:
                runs[this_run].rows = [r.key for r in rows]
                runs[this_run].load_end = load_average()
                runs[this_run].seconds = time.monotonic() - clock
                _write(out, runs, kept + [(this_run, r) for r in rows], args.quick)
    finally:
        ctx.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if out is not None:
        print(f"bench: wrote {out}", file=sys.stderr)
    return 1 if any(r.error for r in rows) else 0


def _write(
    out: Path, runs: list[store.Provenance], rows: list[tuple[int, Row]], quick: bool
) -> None:
    """RESULTS.md (rows in the issue's order) and the JSON it is rendered from; only the runs
    that still own a row are named."""
    order = {name: position for position, name in enumerate(ROWS)}
    rows = sorted(rows, key=lambda item: order[item[1].key])
    used = sorted({index for index, _ in rows})
    runs = [runs[index] for index in used]
    rows = [(used.index(index), row) for index, row in rows]
    have = {row.key for _, row in rows}
    not_run = [importlib.import_module(f"bench.{r}").TITLE for r in ROWS if r not in have]
    write(out, render(rows, runs, quick=quick, not_run=not_run))
    store.save(out, runs, rows)


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
