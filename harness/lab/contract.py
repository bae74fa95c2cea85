"""The one contract between the run engine and a board: what `harness/run/` may call.

`Board` (board.py) implements it for every unit reached through labgrid; the
run engine, the repro runner and the checks type against this Protocol only,
so a change on either side that breaks the other fails the type check and
the tests, instead of being papered over with `getattr` fallbacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.lab.result import CommandResult
from harness.lab.states import BoardState

if TYPE_CHECKING:
    from harness.lab.board import SoftwareIdentity
    from harness.lab.crashwatch import CrashEvent
    from harness.lab.machine import MachineStats
    from harness.lab.settle import SettleReport
    from harness.model.board import BoardProfile


class CommandChannel(Protocol):
    """A way to run shell commands on the board (the console, or SSH)."""

    def run(self, command: str, timeout: float = 60.0) -> CommandResult: ...


class FileChannel(CommandChannel, Protocol):
    """SSH: commands, plus files to and from the board."""

    def put(self, local: str | Path, remote: str) -> None: ...
    def get(self, remote: str, local: str | Path) -> None: ...
    def sftp(self) -> Any: ...  # paramiko.SFTPClient: mkdir, chmod, symlink, remove


class BoardLink(Protocol):
    """A unit under test, as the run engine sees it. Errors: harness/lab/errors.py."""

    profile: BoardProfile
    boot_times: list[float]
    last_settle: SettleReport | None

    @property
    def console(self) -> CommandChannel: ...
    @property
    def ssh(self) -> FileChannel: ...
    @property
    def has_ssh(self) -> bool: ...
    @property
    def state(self) -> BoardState: ...
    @property
    def crash_events(self) -> list[CrashEvent]: ...
    @property
    def machine_stats(self) -> MachineStats: ...

    def ensure_shell(self) -> None: ...
    def reboot(self, command: str = ..., restart_within: float | None = ...) -> float: ...
    def power_cycle(self) -> float: ...
    def boot_id(self) -> str: ...
    def software_identity(self) -> SoftwareIdentity: ...
    def close(self) -> None: ...
