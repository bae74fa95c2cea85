"""Numbers read from a console where the kernel prints in the middle of a command's output."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from harness.lab.result import CommandResult
from harness.run.context import TestContext, Transcript

# What a loaded qemu-aarch64-uboot board answered to `cat /sys/block/vda/size` in a precert run.
INTERLEAVED = "262144\n[   76.527105] hrtimer: interrupt took 32811936 ns\n"


class OneAnswerConsole:
    def __init__(self, stdout: str, exit_status: int = 0) -> None:
        self.stdout, self.exit_status = stdout, exit_status

    def run(self, command: str, timeout: float) -> CommandResult:
        return CommandResult(command, self.exit_status, self.stdout, "", 0.01)


def _ctx(stdout: str, exit_status: int = 0) -> TestContext:
    board = SimpleNamespace(console=OneAnswerConsole(stdout, exit_status))
    return TestContext(
        board=board, profile=None, facts={}, test=None, artifacts=Path("."),
        transcript=Transcript(), transport="console",
    )  # type: ignore[arg-type]  # fmt: skip


def test_a_kernel_message_after_the_number_does_not_hide_it() -> None:
    assert _ctx(INTERLEAVED).integer("cat /sys/block/vda/size") == 262144


def test_no_number_or_a_failed_command_gives_none() -> None:
    assert _ctx("cat: can't open '/sys/block/vdz/size'\n", 1).integer("cat x") is None
    assert _ctx("[   76.527105] hrtimer: interrupt took 32811936 ns\n").integer("cat x") is None
