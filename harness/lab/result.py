"""The outcome of one command on a board, whichever way it was sent."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    """What a command did. Console results carry stdout and stderr merged in `stdout`
    (a serial line has one stream) and `stderr == ""`; SSH results keep them apart.
    `duration` is wall time in seconds from sending the command to its exit status."""

    command: str
    exit_status: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0
