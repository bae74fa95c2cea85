"""The run engine's one door to the lab: open a `Board` and read its software identity.

Kept apart so the engine depends on the Board contract in harness/README.md
("Lab access") in exactly one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import InfraError
from harness.lab.contract import BoardLink
from harness.model.board import BoardProfile
from harness.model.facts import Facts


def open_board(profile: BoardProfile, env_file: Path | None, console_log: Path) -> BoardLink:
    """Open the board, bring it to a logged-in shell (from whatever state it is in) and wait
    until its devices have settled; the console is recorded to `console_log`."""
    from harness.lab.board import Board

    if env_file is None:
        raise InfraError(
            f"no labgrid environment for board {profile.name!r}: give --env or --place"
        )
    board = Board.open(profile, env_file, console_log=console_log)
    try:
        board.ensure_shell()
        board.settle()
    except BaseException:
        board.close()
        raise
    return board


def kernel_identity(board: BoardLink) -> dict[str, Any]:
    """The running kernel's build id, release and signing facts (harness/lab/kernel_identity.py)."""
    from harness.lab.kernel_identity import read_kernel_identity

    return read_kernel_identity(board.console).to_dict()


def software_identity(board: BoardLink, facts: Facts) -> dict[str, Any]:
    """Kernel, OS and bootloader as the registry records them; the board's own view first."""
    identity = board.software_identity().to_dict()
    os_release = identity.get("os_release") or (
        " ".join(part for part in (facts.os_name, facts.os_version) if part) or None
    )
    return {
        "kernel_release": identity.get("kernel_release") or facts.kernel_release,
        "kernel_version": identity.get("kernel_version") or facts.kernel_version,
        "os_release": os_release,
        "bootloader": identity.get("bootloader"),
    }
