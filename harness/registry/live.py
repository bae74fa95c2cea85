"""`harness eligible`: read a live unit's identity and ask the registry whether it is eligible.

What the unit says about itself is read on the unit (board identity from its
profile; OS release, kernel release and the running kernel's GNU build id
from the unit, see harness/lab/kernel_identity.py), so the answer is about the
kernel that actually runs, not about what someone typed. The unit is reached
through a labgrid environment file (`--env`, as `harness run` does) or, for a
virtual board, by its name (`--board`): a board already started with `harness lab up`
is read as it runs; otherwise the board is started for the check and stopped after it,
as `harness run --board` does (harness/run/unit.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from harness.errors import Location, UserError
from harness.model.board import BoardProfile
from harness.registry.cli import print_answer
from harness.registry.eligibility import Device
from harness.registry.interface import open_registry
from harness.run.unit import live_unit


def read_device(profile: BoardProfile, env_file: Path, console_log: Path) -> dict[str, Any]:
    """Open the unit, read its OS and kernel identity, close it (console logged out)."""
    from harness.run.boardlink import kernel_identity, open_board, software_identity
    from harness.run.facts import discover_facts

    board = open_board(profile, env_file, console_log)
    try:
        facts = discover_facts(board)
        software = software_identity(board, facts)
        kernel = kernel_identity(board)
    finally:
        board.close()
    return {"software": software, "kernel": kernel}


def _live_device(
    profile: BoardProfile, env_file: Path, console_log: Path | None
) -> tuple[Device, dict[str, Any]]:
    """The device as the unit reports it, and its kernel identity record."""
    with tempfile.TemporaryDirectory(prefix="harness-eligible-") as scratch:
        found = read_device(profile, env_file, console_log or Path(scratch) / "console.log")
    software, kernel = found["software"], found["kernel"]
    if not software.get("kernel_release") or not software.get("os_release"):
        raise UserError(
            "the unit did not report its kernel release and OS release", Location(str(env_file))
        )
    identity = profile.identity
    device = Device(
        identity.vendor,
        identity.model,
        identity.revision,
        software["os_release"],
        software["kernel_release"],
        software.get("kernel_version") or "",
        kernel.get("build_id") or "",
    )
    return device, kernel


@click.command()
@click.option(
    "--env",
    type=click.Path(path_type=Path, dir_okay=False),
    help="labgrid environment file of the unit",
)
@click.option(
    "--board",
    "board_ref",
    help="with --env: the unit's board profile (default: the env file's); "
    "alone: a virtual board: the name of one running (`harness lab up`), or a board "
    "profile to start for the check",
)
@click.option("--db", help="registry database (default: the local registry file)")
@click.option("--url", help="HTTP registry (default: $HARNESS_REGISTRY_URL)")
@click.option("--token", help="bearer token for --url")
@click.option("--console-log", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="JSON for machines instead of text")
def eligible(
    env: Path | None,
    board_ref: str | None,
    db: str | None,
    url: str | None,
    token: str | None,
    console_log: Path | None,
    as_json: bool,
) -> None:
    """Read a live unit (its running kernel's build id, release, OS) and ask the registry."""
    if db and "://" not in db:
        db = f"sqlite:///{Path(db).absolute()}"
    registry = open_registry(db, url, token)  # a bad setting fails before the unit is touched
    try:
        with live_unit(board_ref, env) as (profile, env_file):
            device, kernel = _live_device(profile, env_file, console_log)
        answer = registry.eligibility(device)
    finally:
        registry.close()
    if as_json:
        answer = {**answer, "kernel_identity": kernel}
    elif kernel.get("problem"):
        click.echo(f"note: {kernel['problem']}", err=True)
    print_answer(answer, as_json)
