"""`harness lab build`: build (or find cached) the virtual lab's images, with live progress.

A cold build downloads ~150 MB of Debian packages and unpacks two kernels,
so the engineer sees each step as it happens; a warm one says "cached" at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.errors import UserError
from harness.vlab.build import ROLES, STALE_AFTER_DAYS, build_lab, prune_cache
from harness.vlab.recipe import ARCHES


def _register(results: dict, registry_db: str | None) -> list[dict]:
    from harness.model.board import BOARDS_DIR
    from harness.registry.config import default_db_url
    from harness.registry.interface import open_registry
    from harness.vlab.build import cache_root
    from harness.vlab.vendor_kernels import register_lab_kernels

    if registry_db and "://" not in registry_db:
        registry_db = f"sqlite:///{Path(registry_db).absolute()}"
    registry = open_registry(registry_db or default_db_url())  # the lab's own registry file
    try:
        return register_lab_kernels(results, registry, cache_root() / "debs", BOARDS_DIR.absolute())
    finally:
        registry.close()


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
@click.option(
    "--register-vendor-kernels",
    is_flag=True,
    help="Register the kernel packages built as vendor kernels of the virtual board models "
    "(boards/) in the registry (default: the local one; see --registry-db).",
)
@click.option("--registry-db", help="registry database for --register-vendor-kernels")
def build(
    arches: tuple[str, ...],
    packages: tuple[str, ...],
    as_json: bool,
    prune: bool,
    register_vendor_kernels: bool,
    registry_db: str | None,
) -> None:
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

    vendor = _register(results, registry_db) if register_vendor_kernels else []
    if as_json:
        document = {
            arch: {"status": a.status, **a.to_json(), "directory": str(a.directory)}
            for arch, a in results.items()
        }
        if register_vendor_kernels:
            document["vendor_kernels"] = vendor  # type: ignore[assignment]
        click.echo(json.dumps(document, indent=2))
        return
    for item in vendor:
        boards = ", ".join(f"{b['vendor']} {b['model']}" for b in item.get("boards", []))
        click.echo(
            f"vendor kernel {item['status']}: {item['package']} build {item.get('build_id', '?')} "
            f"for {boards or 'its models'}",
            err=True,
        )
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
