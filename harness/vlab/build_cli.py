"""`harness lab build`: build (or find cached) the virtual lab's images, with live progress.

A cold build downloads ~150 MB of Debian packages and unpacks two kernels,
so the engineer sees each step as it happens; a warm one says "cached" at once.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.errors import UserError
from harness.vlab.build import ROLES, STALE_AFTER_DAYS, build_lab, prune_cache
from harness.vlab.recipe import ARCHES


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        role, sep, name = pair.partition("=")
        if not sep or not role or not name:
            raise UserError(
                f"--package expects ROLE=DEBIAN-PACKAGE, got {pair!r}",
                hint=f"roles: {', '.join(ROLES)}",
            )
        overrides[role] = name
    return overrides


@click.command("build")
@click.option(
    "--arch",
    "arches",
    multiple=True,
    type=click.Choice(list(ARCHES)),
    help="Architecture to build (repeatable); default: all.",
)
@click.option(
    "--package",
    "packages",
    multiple=True,
    metavar="ROLE=NAME",
    help="Use another Debian package for a role, e.g. kernel=linux-image-cloud-amd64 (repeatable).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the artifacts as JSON instead of a table."
)
@click.option(
    "--prune",
    is_flag=True,
    help="Remove every other cached build now (by default, builds unused for 14 days go).",
)
def build(arches: tuple[str, ...], packages: tuple[str, ...], as_json: bool, prune: bool) -> None:
    """Build kernels, initramfs and the aarch64 U-Boot disk from Debian packages (cached)."""
    overrides = _parse_overrides(packages)
    wanted = arches or tuple(ARCHES)
    console = Console(stderr=True)
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[arch]:8}"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {arch: progress.add_task("waiting", arch=arch, total=1) for arch in wanted}

        def report(arch: str, message: str) -> None:
            if message.startswith("note:"):
                progress.console.print(f"[yellow]{arch}: {message}")
                return
            done = message in ("built", "cached")
            progress.update(tasks[arch], description=message, completed=1 if done else 0)

        results = build_lab(wanted, report, overrides=overrides)
    removed = prune_cache(
        {a.directory.parent for a in results.values()},
        unused_days=None if prune else STALE_AFTER_DAYS,
    )
    if removed:
        console.print(f"removed {len(removed)} old cached build(s) from {removed[0].parent}")

    if as_json:
        click.echo(
            json.dumps(
                {
                    arch: {"status": a.status, **a.to_json(), "directory": str(a.directory)}
                    for arch, a in results.items()
                },
                indent=2,
            )
        )
        return
    table = Table("arch", "status", "kernel", "directory", "SSH host key")
    for column in table.columns:
        column.overflow = "fold"  # paths and fingerprints are copied from here: never truncate them
    for arch, artifacts in results.items():
        table.add_row(
            arch,
            artifacts.status,
            artifacts.kernel_release,
            str(artifacts.directory),
            artifacts.host_key_fingerprint,
        )
    Console().print(table)
