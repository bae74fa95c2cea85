"""`harness eligible`: read a live unit's identity and ask the registry whether it is eligible.

What the unit says about itself is read on the unit (board identity from its
profile; OS release, kernel release and the running kernel's GNU build id
from the unit, see harness/lab/kernel_identity.py), so the answer is about the
kernel that actually runs, not about what someone typed. The unit is reached
through a labgrid environment file (`--env`, as `harness run` does) or, for a
virtual board, by its name (`--board`): a board already started with `harness lab up`
is read as it runs; otherwise the board is started for the check and stopped after it,
as `harness run --board` does.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from harness.errors import Location, UserError
from harness.model.board import BoardProfile, find_board
from harness.registry.cli import print_answer
from harness.registry.eligibility import Device
from harness.registry.interface import open_registry


def _profile_of_env(env: Path) -> BoardProfile:
    from labgrid import Environment

    from harness.vlab.envfile import OPT_PROFILE

    try:
        profile = Environment(str(env)).config.get_option(OPT_PROFILE, None)
    except Exception as exc:  # labgrid reports bad files with many exception types
        raise UserError(
            f"not a usable labgrid environment: {exc}", Location(str(env), None, "--env")
        ) from None
    if not profile:
        raise UserError(
            f"the environment names no board profile (option {OPT_PROFILE}): give --board PROFILE",
            Location(str(env), None, f"options.{OPT_PROFILE}"),
        )
    return find_board(str(profile))


@contextlib.contextmanager
def _unit(board_ref: str | None, env: Path | None) -> Iterator[tuple[BoardProfile, Path]]:
    """(profile, env file) of the unit to read, for as long as the check needs it."""
    if env is not None:
        if not env.is_file():
            raise UserError("labgrid environment file not found", Location(str(env), None, "--env"))
        yield (find_board(board_ref) if board_ref else _profile_of_env(env)), env
        return
    if not board_ref:
        raise UserError(
            "give --env ENV (a unit in a lab) or --board NAME (a virtual board)",
            Location(field="--board"),
        )
    from harness.report.runfolder import new_run_id
    from harness.run.launch import lab
    from harness.vlab import state as lab_state
    from harness.vlab.boardhost import resolve_board

    base = lab_state.lab_dir()
    running = next((s for s in lab_state.running(base) if s.name == board_ref), None)
    if running is not None:
        yield find_board(running.profile), Path(running.env_file)
        return
    profile = resolve_board(board_ref)
    if profile.lab.virtual is None and profile.lab.env is None and profile.lab.place is None:
        raise UserError(
            f"board {profile.name} is not a virtual board and none named {board_ref!r} is "
            "running: give the unit's labgrid environment with --env",
            Location(field="--board"),
        )
    # The lab `harness run --board` uses: a virtual board is started for the check and stopped.
    with lab(profile, None, None, new_run_id(profile.name)) as where:
        yield where.profile, where.env_file


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
        with _unit(board_ref, env) as (profile, env_file):
            device, kernel = _live_device(profile, env_file, console_log)
        answer = registry.eligibility(device)
    finally:
        registry.close()
    if as_json:
        answer = {**answer, "kernel_identity": kernel}
    elif kernel.get("problem"):
        click.echo(f"note: {kernel['problem']}", err=True)
    print_answer(answer, as_json)
