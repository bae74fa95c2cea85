"""`harness lab export`: a virtual farm on this machine, served by labgrid's own coordinator.

    harness lab export sim sim sim                  # three simulated boards, a coordinator
    harness lab export --places-from 'boards/*.yaml' --units 1
    harness lab export --coordinator HOST:PORT --name lab2 sim   # a second lab host

It runs in the foreground until Ctrl-C or SIGTERM, then takes down what it
started. docs/farm.md says what runs where and how to use it.
"""

from __future__ import annotations

import glob
import signal
import socket
from pathlib import Path
from typing import Any

import click

from harness.errors import Location, UserError
from harness.farm.address import farm_dir
from harness.model.board import BoardProfile, load_board


def _profiles(
    boards: tuple[str, ...], places_from: tuple[str, ...], units: int
) -> tuple[list[BoardProfile], list[BoardProfile]]:
    """(virtual boards to start, profiles whose `lab.place` gets a place) from the arguments."""
    from harness.vlab.boardhost import resolve_board

    virtual = [resolve_board(ref) for ref in boards]
    physical: list[BoardProfile] = []
    for pattern in places_from:
        paths = sorted(glob.glob(pattern))
        if not paths:
            raise UserError(
                f"no board profile matches {pattern!r}", Location(field="--places-from")
            )
        for path in paths:
            profile = load_board(Path(path))
            if profile.lab.virtual is not None:
                virtual += [profile] * units
            elif profile.lab.place is not None:
                physical.append(profile)
            else:
                click.echo(
                    f"export: {path}: skipped, its unit is reached through an env file, not a place",
                    err=True,
                )
    return virtual, physical


@click.command()
@click.argument("boards", nargs=-1)
@click.option(
    "--places-from",
    multiple=True,
    metavar="GLOB",
    help="board profiles (e.g. 'boards/*.yaml'): --units virtual boards of each, and a tagged "
    "place for each profile that names a `lab.place`",
)
@click.option(
    "--units",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    help="virtual boards per profile from --places-from",
)
@click.option(
    "--adopt",
    multiple=True,
    metavar="NAME",
    help="also export a board already running (`harness lab up`)",
)
@click.option(
    "--name", "exporter", default=None, help="exporter (lab host) name [default: this host's name]"
)
@click.option(
    "--coordinator", default=None, help="use this coordinator (HOST:PORT) instead of starting one"
)
@click.option(
    "--listen",
    default=None,
    help="address of the coordinator started here [default: 127.0.0.1:20408]",
)
@click.option(
    "--farm-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="where the farm keeps its files [default: $HARNESS_FARM_DIR or ~/.cache/harness/farm]",
)
@click.option("--no-reaper", is_flag=True, help="do not run the lease reaper here")
@click.pass_obj
def export(
    lab_dir: Path,
    boards: tuple[str, ...],
    places_from: tuple[str, ...],
    units: int,
    adopt: tuple[str, ...],
    exporter: str | None,
    coordinator: str | None,
    listen: str | None,
    farm_dir: Path | None,
    no_reaper: bool,
) -> None:
    """Serve virtual boards through a real labgrid exporter and coordinator, as a farm does.

    BOARDS are profile names or paths (`sim` for the simulated board), one unit each. Each
    board is exported with its console, SSH and a power port labgrid switches (NetworkPowerPort),
    and gets a place named EXPORTER-BOARD-N tagged board=, arch= and soc=.
    """
    if coordinator is not None and listen is not None:
        raise UserError("give --coordinator or --listen, not both", Location(field="--listen"))
    if not boards and not places_from and not adopt:
        raise UserError(
            "name boards to export (e.g. `sim sim`), --places-from or --adopt",
            Location(field="BOARDS"),
        )
    from harness.farm.export import FarmHost

    name = exporter or socket.gethostname().split(".")[0].lower()
    virtual, physical = _profiles(boards, places_from, units)
    folder = _folder(farm_dir)
    host = FarmHost(folder, name, lab_dir, coordinator or "")
    if coordinator is None:
        listen = listen or "127.0.0.1:20408"
    stop = host.stopping

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    try:
        host.start(virtual, list(adopt), physical, listen)
        _announce(host)
        host.serve(reaper=not no_reaper and coordinator is None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        click.echo("export: stopping", err=True)
        host.stop()


def _folder(given: Path | None) -> Path:
    folder = farm_dir(given).resolve()  # the labgrid programs run in folders of their own
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _announce(host: Any) -> None:
    click.echo(f"coordinator: {host.coordinator}")
    click.echo(f"exporter:    {host.exporter_name} (pid {host.services['exporter'].pid})")
    for unit in host.units:
        tags = " ".join(f"{k}={v}" for k, v in unit.tags.items())
        click.echo(f"place:       {unit.place}  {tags}  (outlet {unit.outlet})")
    for place in host.physical:
        click.echo(f"place:       {place}  (physical, from its board profile)")
    click.echo(f"use it:      . {host.folder / 'farm.env'}")
    click.echo("farm ready (Ctrl-C to stop)", err=True)
