"""Reaching a running unit for a short look: by its labgrid environment or, for a virtual
board, by name.

`harness eligible` and `harness board discover` both read a live unit without running a
plan. The unit is reached through a labgrid environment file (`--env`, as `harness run`
does) or, for a virtual board, by its name (`--board`): a board already started with
`harness lab up` is read as it runs; otherwise the board is started for the look and
stopped after it, through the run engine's own lab (harness/run/launch.py `lab`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from harness.errors import Location, UserError
from harness.model.board import BoardProfile, find_board


def profile_named_by_env(env: Path) -> str | None:
    """The board profile a labgrid environment names (the virtual lab's do), or None."""
    from labgrid import Environment

    from harness.vlab.envfile import OPT_PROFILE

    try:
        profile = Environment(str(env)).config.get_option(OPT_PROFILE, None)
    except Exception as exc:  # labgrid reports bad files with many exception types
        raise UserError(
            f"not a usable labgrid environment: {exc}", Location(str(env), None, "--env")
        ) from None
    return str(profile) if profile else None


def profile_of_env(env: Path) -> BoardProfile:
    """The profile the environment names; bad input (exit 2) when it names none."""
    from harness.vlab.envfile import OPT_PROFILE

    profile = profile_named_by_env(env)
    if not profile:
        raise UserError(
            f"the environment names no board profile (option {OPT_PROFILE}): give --board PROFILE",
            Location(str(env), None, f"options.{OPT_PROFILE}"),
        )
    return find_board(profile)


@contextlib.contextmanager
def live_unit(board_ref: str | None, env: Path | None) -> Iterator[tuple[BoardProfile, Path]]:
    """(profile, env file) of the unit to read, for as long as the caller needs it."""
    if env is not None:
        if not env.is_file():
            raise UserError("labgrid environment file not found", Location(str(env), None, "--env"))
        yield (find_board(board_ref) if board_ref else profile_of_env(env)), env
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
    # The lab `harness run --board` uses: a virtual board is started for the look and stopped.
    with lab(profile, None, None, new_run_id(profile.name)) as where:
        yield where.profile, where.env_file
