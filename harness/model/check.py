"""`harness check`: validate profiles, plans and cases without touching a board."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from harness.errors import UserError
from harness.model.yamlsource import load_yaml

# kind -> "module:function" that loads and validates a file of that kind
LOADERS: dict[str, str] = {
    "board": "harness.model.board:load_board",
    "plan": "harness.model.plan:load_plan",
    "case": "harness.model.case:load_case",
}


def load_any(file: Path) -> object:
    doc = load_yaml(file, labgrid_env=True)  # labgrid's `!template` is read; our loaders refuse it
    kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
    if kind is None and isinstance(doc.data, dict) and "targets" in doc.data:
        from harness.model.labenv import check_env_file

        return check_env_file(file)  # a labgrid environment file: no `kind:` of ours
    if kind is None:
        raise doc.error(f"missing 'kind' (one of: {', '.join(LOADERS)})", ("kind",))
    if not isinstance(kind, str) or kind not in LOADERS:
        raise doc.error(f"unknown kind {kind!r} (one of: {', '.join(LOADERS)})", ("kind",))
    module_name, attr = LOADERS[kind].split(":")
    try:
        loader = getattr(importlib.import_module(module_name), attr)
    except ModuleNotFoundError:
        raise doc.error(
            f"files of kind {kind!r} are not supported by this harness version", ("kind",)
        ) from None
    return loader(file)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def check(files: tuple[Path, ...]) -> int:
    """Validate board profiles, plans, cases and labgrid environment files; errors name file, line and field (exit 2)."""
    problems = 0
    for file in files:
        try:
            loaded = load_any(file)
        except UserError as exc:
            problems += 1
            click.echo(f"harness: {exc}", err=True)
        else:
            click.echo(f"ok: {file}")
            for line in getattr(loaded, "lines", lambda: [])():
                click.echo(f"  {line}")  # a labgrid environment: what the harness will use
    return 2 if problems else 0
