"""What every `harness registry` command shares: the registry it talks to and how it prints.

Kept apart from cli.py so the command modules (cli.py, cli_kernels.py, cli_cases.py,
cli_access.py) can share it without importing each other.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from harness.registry.interface import Registry, open_registry


def backend(ctx: click.Context) -> Registry:
    """The registry the command talks to (harness/registry/interface.py), closed with the command."""
    options = ctx.find_object(dict) or {}
    registry = open_registry(options.get("db"), options.get("url"), options.get("token"))
    ctx.call_on_close(registry.close)
    return registry


def emit(
    data: Any, as_json: bool, columns: list[tuple[str, str]] | None = None, title: str = ""
) -> None:
    """`data` as indented JSON, or as a table of `columns` (header, dotted path into a row)."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
        return
    rows = data if isinstance(data, list) else [data]
    table = Table(title=title or None, show_lines=False)
    columns = columns or [(k, k) for k in (rows[0].keys() if rows else [])]
    for header, _ in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*[cell(row, path) for _, path in columns])
    Console(width=None if sys.stdout.isatty() else 200, highlight=False).print(
        table
    ) if rows else click.echo("(none)")


def cell(row: dict[str, Any], path: str) -> str:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="JSON for machines instead of a table"
)
