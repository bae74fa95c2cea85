"""Fan-out: 1, 3 and 6 simulated boards certified in parallel through labgrid places.

The farm is the harness's own: `harness lab export sim sim ...` serves six simulated boards
behind a real `labgrid-exporter` and `labgrid-coordinator` (console, SSH and a power
port per board, a place tagged `board=sim` each), exactly as docs/farm.md sets one up.
Then `harness certify --places 'name=...' --parallel N` runs the fan-out plan (console,
SSH, SFTP) on N of those places at once, each board in its own `harness run --place`
holding its place through its keeper, as a CI job on a farm would. wall(N) is the whole
`harness certify` command; every run must pass. The baseline is one board alone
(N = 1, the same command over one place), measured in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.context import Context
from bench.core import REPO, Row, check

TITLE = "fan-out through labgrid places"
BASELINE = "one board alone"
PLAN = Path(__file__).with_name("plans") / "fanout.yaml"
GUARD = 300.0  # a bound for a hang only (six boards starting on a loaded host)
EXPORTER = "bench"


@contextlib.contextmanager
def farm(ctx: Context, count: int, folder: Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    """`harness lab export` serving `count` simulated boards; (environment, place names)."""
    from harness.farm.services import free_address

    farm_dir = folder / "farm"
    env = {**os.environ, "LG_COORDINATOR": free_address()}
    for name in ("LG_ENV", "LG_PLACE", "HARNESS_FARM_DIR"):
        env.pop(name, None)
    argv = [
        sys.executable, "-m", "harness", "lab", "--lab-dir", str(ctx.lab_dir), "export",
        *["sim"] * count, "--name", EXPORTER, "--listen", env["LG_COORDINATOR"],
        "--farm-dir", str(farm_dir),
    ]  # fmt: skip
    log = folder / "export.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + GUARD
        while not (farm_dir / "farm.json").is_file():
            check(proc.poll() is None, f"harness lab export exited: {log.read_text()[-1500:]}")
            check(time.monotonic() < deadline, "harness lab export never served its places")
            time.sleep(0.2)  # poll interval while the boards start
        info = json.loads((farm_dir / "farm.json").read_text())
        env["HARNESS_SSH_KNOWN_HOSTS"] = info["known_hosts"]
        places = sorted(unit["place"] for unit in info["places"])
        check(len(places) == count, f"the farm serves {len(places)} places, {count} asked")
        yield env, places
    finally:
        proc.terminate()  # the export takes down its boards, exporter and coordinator
        try:
            proc.wait(timeout=GUARD)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fan_out(places: list[str], env: dict[str, str], folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `harness certify --places` over `places`, N at once (the CPU of
    the whole process tree: the fan-out, each board's run and its place's keeper); all must
    pass."""
    results = folder / f"n{len(places)}"
    # The places are named bench-sim-1..; one name glob selects exactly those given.
    pattern = "name=" + (places[0] if len(places) == 1 else f"{EXPORTER}-sim-[1-{len(places)}]")
    argv = [
        sys.executable, "-m", "harness", "certify", "--board", "sim", "--plan", str(PLAN),
        "--places", pattern, "--parallel", str(len(places)), "--results", str(results),
        "--no-submit",
    ]  # fmt: skip
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        argv,
        cwd=REPO,
        env={**env, "HARNESS_DATA_HOME": str(folder / "home")},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu
    check(
        done.returncode == 0,
        f"harness certify --places exited {done.returncode}: {done.stderr[-1500:]}",
    )
    summaries = list(results.glob("*/summary.md"))
    check(len(summaries) == 1, f"{len(summaries)} farm summaries in {results}")
    farm_runs = json.loads((summaries[0].parent / "farm.json").read_text())
    codes = {r["place"]: r["exit_code"] for r in farm_runs["runs"]}
    check(
        sorted(codes) == sorted(places) and set(codes.values()) == {0},
        f"the farm summary's runs: {codes}, expected {places} all passed",
    )
    return wall, cpu


def _profile_one_run(place: str, env: dict[str, str], folder: Path, ctx: Context) -> None:
    """One board's `harness run --place` under cProfile, kept as bench/profiles/fanout-run-sim.txt
    (an extra pass: the measured ones run unprofiled)."""
    import pstats

    prof = folder / "run.prof"
    argv = [
        sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "harness", "run", "--board",
        "sim", "--plan", str(PLAN), "--place", place, "--wait", "--results",
        str(folder / "profiled"), "--no-submit", "--plain",
    ]  # fmt: skip
    env = {**env, "HARNESS_DATA_HOME": str(folder / "home")}
    subprocess.run(argv, cwd=REPO, env=env, capture_output=True, timeout=1800, check=False)
    if prof.exists():
        ctx.keep_profile(pstats.Stats(str(prof)), "fanout-run-sim")


def run(ctx: Context) -> Row:
    row = Row("fanout", TITLE, BASELINE)
    # --quick proves the place path with two boards at once; the curve needs the full run.
    sizes = [2] if ctx.quick else [1, 3, 6]
    folder = ctx.folder("fanout")
    with farm(ctx, max(sizes), folder) as (env, places):
        measured = {n: fan_out(places[:n], env, folder) for n in sizes}
        if not ctx.quick:
            _profile_one_run(places[0], env, folder, ctx)
    walls = {n: [wall] for n, (wall, _) in measured.items()}
    one = row.add("1 board alone", walls[1], "s", baseline=True) if 1 in walls else None
    for n in sizes:
        if n == 1:
            continue
        many = row.add(f"{n} boards in parallel", walls[n], "s")
        if one is not None:
            row.target(f"wall({n}) / wall(1)", many.median / one.median, "<=", 1.3)
    row.ok(
        f"{sum(sizes)} runs through `harness certify --places` on a `harness lab export` farm, "
        "every one passed"
    )
    row.notes.append(
        "Each board's run is a whole `harness run --place` process (interpreter start-up, plan "
        "loading, its place's keeper, login, bundle) on a 2-core host: N runs share two cores, "
        "so wall(N) grows with N once the harness's own CPU time, not the board, is what a run "
        "waits on."
    )
    row.notes.append(
        "CPU of each fan-out (the whole process tree, from the kernel's accounting): "
        + "; ".join(
            f"{n} board{'s' if n > 1 else ''}: {cpu:.1f} s ({cpu / n:.1f} s per board)"
            for n, (_, cpu) in measured.items()
        )
        + f". On {os.cpu_count()} cores, N boards' runs need at least N x (CPU per board) / "
        f"{os.cpu_count()} seconds of wall time even on an idle host."
    )
    return row
