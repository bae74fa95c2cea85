"""Command framing on a console where the kernel prints in the middle of the shell's output.

Seen in a loaded precert run on qemu-aarch64-uboot: `hrtimer: interrupt took …` landed
between the end marker's closing byte and the shell's newline, and the harness waited 60 s
for a newline-terminated marker that never came, failing a test that had passed. A scripted
console answers exactly like the board did, so the test does not depend on printk timing.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.lab.console import ConsoleSession
from harness.lab.consolelog import ConsoleLog
from harness.model.board import Console
from tests.lab.scripted_console import ScriptedConsole

KERNEL_LINE = b"[   71.570514] hrtimer: interrupt took 35875232 ns\r\n"


class InterruptedShell(ScriptedConsole):
    """Answers each framed command with its markers, a kernel message wedged in after `where`."""

    def __init__(self, output: bytes, where: str) -> None:
        super().__init__()
        self.reply = output
        self.where = where

    def write(self, data: bytes) -> None:
        token = re.search(rb"\\036S%s\\036\\n' (\w+);", data)
        if token is None:
            return
        start = b"\x1eS" + token.group(1) + b"\x1e"
        end = b"\x1eE" + token.group(1) + b":0\x1e"
        if self.where == "after-start":
            self.output += start + KERNEL_LINE + self.reply + b"\r\n" + end + b"\r\n"
        else:
            self.output += start + b"\r\n" + self.reply + b"\r\n" + end + KERNEL_LINE


def session(shell: InterruptedShell, tmp_path: Path) -> ConsoleSession:
    console = ConsoleSession(shell, Console(), ConsoleLog(tmp_path / "console.log"))  # type: ignore[arg-type]
    console.ready = True  # the machine shell is up; only the framing is under test
    return console


def test_a_kernel_message_right_after_the_end_marker_does_not_hide_the_exit_status(
    tmp_path: Path,
) -> None:
    console = session(
        InterruptedShell(b"rtc-pl031 9010000.pl031\r\n2026-11-30\r\n", "after-end"), tmp_path
    )
    result = console.run("cat /sys/class/rtc/rtc0/name /sys/class/rtc/rtc0/date", timeout=5)
    assert result.exit_status == 0
    assert result.stdout == "rtc-pl031 9010000.pl031\n2026-11-30\n"


def test_a_kernel_message_right_after_the_start_marker_stays_in_the_output(
    tmp_path: Path,
) -> None:
    console = session(InterruptedShell(b"hello\r\n", "after-start"), tmp_path)
    result = console.run("echo hello", timeout=5)
    assert result.exit_status == 0
    assert result.stdout.endswith("hello\n")
    assert "hrtimer" in result.stdout  # what the console showed during the command is kept
