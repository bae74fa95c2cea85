"""Command-line options shared by several commands, defined once so they cannot drift apart."""

from __future__ import annotations

from pathlib import Path

import click

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
