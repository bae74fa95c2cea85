"""Command-line options shared by several commands, defined once so they cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

# Where run folders go: relative to the working directory, like boards/ and testplans/
# (harness/model/board.py BOARDS_DIR); `harness run`, `certify` and `repro` take it.
results_option = click.option(
    "--results",
    "results_root",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="folder that holds the run folders",
)


def place_options(func: F) -> F:
    """--reserve, --wait and --wait-timeout: how a command holds a place on the coordinator
    (docs/farm.md); `harness run`, `certify` and `repro` take them alike."""
    func = click.option(
        "--wait-timeout",
        type=click.FloatRange(min=1),
        help="give up waiting for a place after this many seconds (implies --wait)",
    )(func)
    func = click.option(
        "--wait", is_flag=True, help="queue for the place if it is taken (labgrid reserve --wait)"
    )(func)
    return click.option(
        "--reserve",
        metavar="TAGS",
        help="any one place with these tags, e.g. 'board=qemu-x86_64' (a labgrid reservation)",
    )(func)


# The id of a new run: a fan-out names each board's run so it can find its folder.
run_id_option = click.option(
    "--run-id", "new_run_id", hidden=True, help="id for the new run (fan-out sets it)"
)
