"""Fan-out: one plan (or case) over many places, K at a time, each board in its own run.

`harness certify --places 'board=qemu-*' --parallel 3` (or several `--place`)
picks the places on the coordinator, then runs one `harness run --place NAME
--wait` per place, at most K at once. Each child holds its own place through
its own keeper, so every guarantee of a single run (reservation, release on
any exit, lost place = error) holds per board, and a child that dies takes
nothing else down. Children die with the fan-out (PR_SET_PDEATHSIG, SIGTERM:
they release their places as on any SIGTERM), and get Ctrl-C with it.

Places marked bad are left out and named in the summary. The board profile of
a place is its `board` tag unless --board was given.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import click

from harness.errors import Location, UserError
from harness.farm.client import FarmClient, PlaceInfo
from harness.farm.health import is_bad
from harness.farm.summary import BoardRun, write_summary
from harness.farm.tags import matches, parse_filter
from harness.report.runfolder import new_run_id


@dataclass
class Selection:
    places: list[PlaceInfo]
    left_out: list[tuple[str, str]]  # (place, why)


def select_places(client: FarmClient, patterns: list[str], names: list[str]) -> Selection:
    """Places named, or whose tags match a pattern (`board=qemu-*`, globs allowed); bad ones left out."""
    places = client.places()
    chosen: dict[str, PlaceInfo] = {}
    for name in names:
        if name not in places:
            raise UserError(
                f"no place named {name!r} on the coordinator at {client.address} "
                f"(places: {', '.join(places) or 'none'})",
                Location(field="--place"),
            )
        chosen[name] = places[name]
    for pattern in patterns:
        wanted = parse_filter(pattern, "--places")
        found = [p for p in places.values() if matches(p.tags, p.name, wanted)]
        held = [p for p in places.values() if is_bad(p) and _matches_held(p, wanted)]
        if not found and not held:
            raise UserError(
                f"no place on the coordinator at {client.address} matches {pattern!r}",
                Location(field="--places"),
            )
        for place in found + held:
            chosen.setdefault(place.name, place)
    left_out = [(p.name, f"out of service: {p.comment}") for p in chosen.values() if is_bad(p)]
    usable = [p for p in chosen.values() if not is_bad(p)]
    return Selection(sorted(usable, key=lambda p: p.name), left_out)


def _matches_held(place: PlaceInfo, wanted: dict[str, str]) -> bool:
    held = {k[len("bad_") :]: v for k, v in place.tags.items() if k.startswith("bad_")}
    return matches(held, place.name, wanted)


def _exporter(place: PlaceInfo, client: FarmClient) -> str:
    exporters = sorted({path[0] for path in client.place_resources(place.name)})
    return ",".join(exporters) or "?"


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_us() -> None:
    """Children get SIGTERM when the fan-out dies: they stop their run and release their place.

    The kernel ties PR_SET_PDEATHSIG to the thread that forked; the pool's worker threads
    live until every child of the fan-out has been waited for, so it fires only when the
    fan-out process itself goes."""
    _libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def fan_out(
    *,
    command: Callable[[str, str, str], list[str]],
    patterns: list[str],
    names: list[str],
    board_ref: str | None,
    parallel: int,
    results_root: Path,
    label: str,
) -> int:
    """Run `command(board, place, run_id)` (an argv) per selected place; write the farm summary."""
    with FarmClient() as client:
        selection = select_places(client, patterns, names)
        runs: list[BoardRun] = []
        for place in selection.places:
            board = board_ref or place.tags.get("board")
            if board is None:
                raise UserError(
                    f"place {place.name} has no board= tag: give --board", Location(field="--board")
                )
            runs.append(BoardRun(place.name, board, _exporter(place, client), new_run_id(board)))
    if not runs:
        reasons = "; ".join(f"{name}: {why}" for name, why in selection.left_out)
        raise UserError(f"no usable place to run on ({reasons})", Location(field="--places"))
    farm_id = new_run_id("farm")
    folder = results_root / farm_id
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name, why in selection.left_out:
        click.echo(f"farm: leaving out {name}: {why}", err=True)
    click.echo(
        f"farm {farm_id}: {label} on {len(runs)} place(s), {parallel} at a time: "
        + ", ".join(r.place for r in runs),
        err=True,
    )

    def one(run: BoardRun) -> None:
        argv = command(run.board, run.place, run.run_id)
        started = time.monotonic()
        with (logs / f"{run.place}.log").open("wb") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_us
            )
            try:
                run.exit_code = proc.wait()
            except BaseException:
                proc.terminate()
                run.exit_code = proc.wait()
                raise
        run.seconds = time.monotonic() - started
        if run.exit_code not in (0, 1):
            run.note = _last_line(logs / f"{run.place}.log")
        click.echo(
            f"farm: {run.place} ({run.board}) exit {run.exit_code} after {run.seconds:.0f} s",
            err=True,
        )

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, runs))
    code = write_summary(folder, farm_id, runs, results_root, selection.left_out)
    show(runs, selection.left_out, folder)
    return code


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    harness_lines = [line for line in lines if line.startswith("harness:")]
    return (harness_lines or lines or [""])[-1][:500]


def show(runs: list[BoardRun], left_out: list[tuple[str, str]], folder: Path) -> None:
    click.echo("")
    click.echo(f"{'place':<22} {'board':<18} {'verdict':<15} {'exit':>4}  run folder")
    for run in runs:
        click.echo(
            f"{run.place:<22} {run.board:<18} {run.verdict:<15} {run.exit_code!s:>4}  "
            f"{run.folder(folder.parent)}"
        )
    for name, why in left_out:
        click.echo(f"{name:<22} {'-':<18} {'left out':<15} {'-':>4}  {why}")
    click.echo(f"summary: {folder / 'summary.md'}; JUnit: {folder / 'junit.xml'}")


def python_harness(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]
