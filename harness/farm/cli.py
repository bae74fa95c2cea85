"""`harness farm`: board health (check, status) and the lease reaper of a labgrid farm.

    harness farm status                  places, health, holders, recent history
    harness farm health [PLACE...]       run the health plan on places (all by default)
    harness farm health --every 3600     ... and again every hour (or run it from cron)
    harness farm reaper                  release places whose holder died (next to the coordinator)

The coordinator comes from $LG_COORDINATOR; the history from the farm folder
($HARNESS_FARM_DIR). docs/farm.md explains the states.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from harness.errors import InfraError, Location, UserError
from harness.farm.address import coordinator_address, farm_dir

REPO = Path(__file__).resolve().parents[2]
HEALTH_PLAN = REPO / "testplans" / "health.yaml"


@click.group()
def farm() -> None:
    """Device farm on a labgrid coordinator: board health and lease reaping."""


@farm.command()
@click.option(
    "--history",
    "events",
    type=click.IntRange(0, 1000),
    default=10,
    show_default=True,
    help="history lines to show",
)
@click.option("--json", "as_json", is_flag=True, help="print the state as JSON")
def status(events: int, as_json: bool) -> None:
    """Each place's state (good/bad), holder, tags and streak; then recent health history."""
    from harness.farm.client import FarmClient
    from harness.farm.health import History, is_bad, streak

    with FarmClient() as client:
        places = client.places()
        owners = {r.token: r.owner for r in client.run(client.reservations())}
    history = History(farm_dir()).read()
    rows = []
    for place in places.values():
        holder = place.acquired or ""
        if not holder and place.reservation in owners:
            holder = f"reserved for {owners[place.reservation]}"
        rows.append(
            {
                "place": place.name,
                "state": "bad" if is_bad(place) else "good",
                "holder": holder,
                "tags": place.tags,
                "infra_errors": streak(place),
                "comment": place.comment,
                "last": next((e for e in reversed(history) if e.get("place") == place.name), None),
            }
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "coordinator": coordinator_address(),
                    "places": rows,
                    "history": history[-events:] if events else [],
                },
                indent=2,
            )
        )
        return
    click.echo(f"coordinator {coordinator_address()}: {len(rows)} place(s)")
    click.echo(f"{'place':<24} {'state':<5} {'holder':<28} {'streak':>6}  tags")
    for row in rows:
        tags = " ".join(f"{k}={v}" for k, v in sorted(row["tags"].items()) if k != "lease")
        click.echo(
            f"{row['place']:<24} {row['state']:<5} {row['holder'] or '-':<28} {row['infra_errors']:>6}  {tags}"
        )
        if row["comment"]:
            click.echo(f"{'':<24} {row['comment']}")
    if events:
        click.echo(f"history ({History(farm_dir()).path}):")
        for event in history[-events:]:
            click.echo(
                f"  {event.get('at')} {event.get('place')} {event.get('event')}: {event.get('reason')}"
            )


@farm.command()
@click.argument("places", nargs=-1)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path),
    default=HEALTH_PLAN,
    show_default=True,
    help="the health-check plan",
)
@click.option(
    "--board", "board_ref", help="board profile for every place [default: each place's board tag]"
)
@click.option(
    "--every",
    type=click.FloatRange(min=10),
    help="check again every this many seconds, until stopped",
)
@click.option(
    "--results",
    "results_root",
    type=click.Path(path_type=Path),
    default=None,
    help="run folders of the checks [default: FARM_DIR/health]",
)
def health(
    places: tuple[str, ...],
    plan_file: Path,
    board_ref: str | None,
    every: float | None,
    results_root: Path | None,
) -> int:
    """Run the health plan on places (default: every place); a pass returns a bad place to service.

    Exit status: 0 every checked place is healthy, 1 a place failed its check (it is now
    marked bad), 3 a place could not be checked (held by someone, coordinator unreachable).
    """
    from harness.model.plan import load_plan
    from harness.run.place import require_coordinator

    require_coordinator("harness farm health")
    load_plan(plan_file)
    root = results_root or farm_dir() / "health"
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        while True:
            code = _check_all(list(places), plan_file, board_ref, root)
            if every is None or stop.wait(every):
                return code
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_all(names: list[str], plan_file: Path, board_ref: str | None, root: Path) -> int:
    from harness.farm.client import FarmClient

    with FarmClient() as client:
        known = client.places()
    for name in names:
        if name not in known:
            raise UserError(
                f"no place named {name!r} (places: {', '.join(known) or 'none'})",
                Location(field="PLACES"),
            )
    codes = []
    for name in names or list(known):
        place = known[name]
        board = board_ref or place.tags.get("board") or place.tags.get("bad_board")
        if board is None:
            click.echo(f"health: {name}: skipped (no board tag; give --board)", err=True)
            continue
        if place.acquired:
            click.echo(f"health: {name}: not checked, acquired by {place.acquired}", err=True)
            codes.append(3)
            continue
        codes.append(_check(name, board, plan_file, root))
    return max(codes, key=lambda c: {0: 0, 1: 1, 3: 2}.get(c, 2), default=0)


def _check(name: str, board: str, plan_file: Path, root: Path) -> int:
    argv = [
        sys.executable, "-m", "harness", "run", "--board", board, "--plan", str(plan_file),
        "--place", name, "--health-check", "--results", str(root), "--no-submit", "--plain",
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    seconds = time.monotonic() - started
    verdict = {0: "healthy", 1: "failed (now bad)", 3: "failed (now bad)"}.get(
        done.returncode, "not checked"
    )
    click.echo(f"health: {name}: {verdict} ({seconds:.0f} s)")
    if done.returncode not in (0,):
        tail = [line for line in done.stderr.splitlines() if line.startswith("harness:")][-2:]
        for line in tail:
            click.echo(f"  {line}", err=True)
    if done.returncode == 0:
        return 0
    return 1 if done.returncode in (1, 3) else 3


@farm.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=1.0,
    show_default=True,
    help="seconds between looks",
)
def reaper(interval: float) -> None:
    """Release places whose holder's lease ran out (run one next to the coordinator)."""
    from harness.farm.client import FarmClient
    from harness.farm.health import History
    from harness.farm.lease import Reaper

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    with FarmClient() as client:
        reap = Reaper(client, History(farm_dir()))
        click.echo(f"reaper: watching leases on {client.address}", err=True)
        while not stop.is_set():
            try:
                for line in client.run(reap.step()):
                    click.echo(f"reaper: {line}")
            except InfraError as exc:
                if not client.connected:
                    raise
                click.echo(f"reaper: {exc}", err=True)
            client.run(client.wait_change(interval))
