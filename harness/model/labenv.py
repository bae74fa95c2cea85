"""Checking a labgrid environment file before anything depends on it.

labgrid parses environment files with its own unbounded PyYAML loader and
reports problems with many exception types. So the file first goes through
`load_yaml` (bounded in size, nodes and depth: see 'Limits' in
docs/plan-format.md), and only a file that passed is handed to labgrid;
whatever labgrid then rejects becomes one `UserError` naming the file (exit 2).
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import Location, UserError
from harness.model.yamlsource import load_yaml


def check_env_file(path: Path, target: str | None = None, field: str | None = None) -> None:
    """Raise a UserError unless `path` is a usable labgrid environment (with `target`, if given).

    Without a target, every target in the file is built: that is what
    `harness check` does with a file that has `targets:` and no `kind:`.
    """
    if not path.is_file():
        raise UserError("labgrid environment file not found", Location(str(path), None, field))
    doc = load_yaml(path)
    targets = doc.data.get("targets") if isinstance(doc.data, dict) else None
    if not isinstance(targets, dict) or not targets:
        wanted = f"no target {target!r} in the labgrid environment: " if target else ""
        raise doc.error(f"{wanted}a labgrid environment needs a 'targets:' mapping", ("targets",))
    names = [target] if target is not None else [str(name) for name in targets]
    from labgrid import Environment

    for name in names:
        try:
            found = Environment(str(path)).get_target(name)
        except Exception as exc:  # labgrid reports bad files with many exception types
            raise UserError(
                f"not a usable labgrid environment: {exc}", Location(str(path), None, field)
            ) from None
        if found is None:
            raise doc.error(f"no target {name!r} in the labgrid environment", ("targets", name))
