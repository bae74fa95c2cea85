"""What a `python:` step receives: the board, the profile, the facts, a log and a way to measure.

Python steps exist for checks a command and a regex cannot express (compare a
list of disks against the profile, parse a binary file). They get the same
board object the engine uses, so they run over the same console session and
inherit its crash watch; they fail by raising AssertionError (or calling
`ctx.fail`), and any lab problem they hit propagates as the InfraError it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from harness.run.expect import Measurement

if TYPE_CHECKING:
    from harness.lab.contract import BoardLink
    from harness.lab.result import CommandResult
    from harness.model.board import BoardProfile
    from harness.model.plan import TestSpec
    from harness.run.operator import OperatorDesk


class StepFailed(AssertionError):
    """A python step decided the board does not meet the test; the message is the reason."""


@dataclass
class Transcript:
    """The readable story of one test: commands, outputs (trimmed), notes. Goes to JUnit system-out."""

    lines: list[str] = field(default_factory=list)
    max_output_lines: int = 60

    def command(
        self, via: str, command: str, exit_status: int, output: str, duration: float
    ) -> None:
        self.lines.append(f"$ {command}    [{via}, exit {exit_status}, {duration:.3f} s]")
        out = output.rstrip("\n").splitlines()
        if len(out) > self.max_output_lines:
            skipped = len(out) - self.max_output_lines
            out = [
                *out[: self.max_output_lines // 2],
                f"... {skipped} lines ...",
                *out[-self.max_output_lines // 2 :],
            ]
        self.lines.extend(f"  {line}" for line in out)

    def note(self, text: str) -> None:
        self.lines.append(f"# {text}")

    def text(self) -> str:
        return "\n".join(self.lines)


class StepLog:
    """`ctx.log.info(...)`: messages land in the test's transcript (and so in JUnit system-out)."""

    def __init__(self, transcript: Transcript):
        self._transcript = transcript

    def info(self, message: str, *args: Any) -> None:
        self._transcript.note(message % args if args else message)

    warning = info
    debug = info


@dataclass
class TestContext:
    """The argument of a `python: module:function` step."""

    __test__ = False

    board: BoardLink
    profile: BoardProfile
    facts: dict[str, Any]
    test: TestSpec
    artifacts: Path
    transcript: Transcript
    transport: str
    measurements: list[Measurement] = field(default_factory=list)
    # What one step of a test leaves for a later step of the same test (e.g. a pattern's sha256).
    state: dict[str, Any] = field(default_factory=dict)
    # Who answers `manual` steps (harness/run/operator.py); None: nobody, they are not run.
    desk: OperatorDesk | None = None

    @property
    def item(self) -> Any:
        """In an instance of a template test, the device or fixture it is about (a dict or str)."""
        return self.test.item

    @property
    def params(self) -> dict[str, Any]:
        """The plan's parameters, after the lab's and the command line's overrides."""
        return self.test.params

    @property
    def log(self) -> StepLog:
        return StepLog(self.transcript)

    def run(
        self, command: str, timeout: float = 30.0, transport: str | None = None
    ) -> CommandResult:
        """Run a command on the test's transport (or the one given); returns a CommandResult."""
        via = transport or self.transport
        session = self.board.ssh if via == "ssh" else self.board.console
        result = session.run(command, timeout=timeout)
        self.transcript.command(
            via, command, result.exit_status, result.stdout + result.stderr, result.duration
        )
        return result

    def integer(self, command: str, timeout: float = 30.0) -> int | None:
        """The number a command prints on a line of its own; None if it printed none.

        On a console the kernel may print in the middle of a command's output (seen on a
        loaded aarch64 board: `[ 76.5] hrtimer: interrupt took …` right after `262144`), so
        the output is searched for the number's line instead of being taken whole.
        """
        result = self.run(command, timeout=timeout)
        match = re.search(r"^\s*(\d+)\s*$", result.stdout, re.MULTILINE)
        return int(match.group(1)) if result.exit_status == 0 and match else None

    def measure(self, name: str, value: float, unit: str) -> None:
        self.measurements.append(Measurement(name, float(value), unit))

    def fail(self, reason: str) -> NoReturn:
        raise StepFailed(reason)
