"""The board state machine's eyes and hands, without a virtual board.

Recognition is table-tested with console excerpts of the kinds a lab engineer
sees (U-Boot, barebox, GRUB, kernel, busybox login). The typing test uses a
scripted U-Boot console that loses the first key typed at its prompt, the
way U-Boot did on a loaded lab host, to show that the machine notices the
bad echo, discards the line and types it again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.lab.console import ConsoleSession
from harness.lab.consolelog import ConsoleLog
from harness.lab.machine import BoardMachine
from harness.lab.prompt import Prompts
from harness.lab.states import BoardState, ConsoleEvidence
from harness.model.board import Bootloader, Console
from harness.model.bootloaders import resolve
from tests.lab.scripted_console import ScriptedConsole

UBOOT = resolve("u-boot", Bootloader())
BAREBOX = resolve("barebox", Bootloader())
GRUB = resolve("grub", Bootloader())
PROMPTS = Prompts.from_console(Console())


def observed(loader, text: str) -> tuple[str, str]:
    evidence = ConsoleEvidence(PROMPTS, loader)
    evidence.feed(text.encode())
    seen = evidence.observe()
    return seen.state.value, seen.detail


CASES = [
    (UBOOT, "U-Boot 2023.01 (Jan 01 2023)\r\nDRAM: 1 GiB\r\n", ("bootloader", "running")),
    (UBOOT, "U-Boot 2023.01\r\nHit any key to stop autoboot:  2 ", ("bootloader", "autoboot")),
    (UBOOT, "U-Boot 2023.01\r\nHit any key to stop autoboot:  0 \r\n=> ", ("bootloader", "prompt")),
    (UBOOT, "=> boot\r\nUnknown command 'trap'\r\n=> \x1b[6n", ("bootloader", "prompt")),
    (
        UBOOT,
        "Starting kernel ...\r\n\r\n[    0.000000] Booting Linux on physical CPU 0x0\r\n",
        ("booting", "kernel"),
    ),
    (None, "[    1.9] Run /init as init process\r\n", ("booting", "userspace")),
    (None, "\r\nqemu login: ", ("login", "login")),
    (None, "qemu login: root\r\nPassword: ", ("login", "password")),
    (None, "root@qemu:~# \x1b[6n", ("shell", "prompt")),
    (
        None,
        "[  212.0] Kernel panic - not syncing: sysrq triggered crash\r\n[  212.1] CPU: 1 PID: 7\r\n",
        ("crashed", "panic"),
    ),
    (None, "[   99.1] reboot: Power down\r\n", ("off", "halted")),
    (None, "[   99.1] reboot: Restarting system\r\n", ("booting", "restarting")),
    (
        BAREBOX,
        "barebox 2023.01.0 #1 Mon Jan 2 2023\r\nHit m for menu or any key to stop autoboot:    3",
        ("bootloader", "autoboot"),
    ),
    (BAREBOX, "barebox 2023.01.0 #1\r\nbarebox@Acme SBC:/ ", ("bootloader", "prompt")),
    (
        GRUB,
        "Welcome to GRUB!\r\n Use the ^ and v keys to select which entry is highlighted.\r\n",
        ("bootloader", "menu"),
    ),
    (GRUB, "GNU GRUB  version 2.06\r\ngrub> ", ("bootloader", "prompt")),
    (None, "NOTICE:  BL31: v2.8(release):v2.8\r\n", ("bootloader", "firmware")),
    (None, "", ("unknown", "nothing seen yet")),
]


@pytest.mark.parametrize(("loader", "text", "expected"), CASES)
def test_the_state_is_recognised_from_what_the_console_shows(loader, text, expected) -> None:
    assert observed(loader, text) == expected


def test_a_login_prompt_buried_under_a_later_kernel_message_is_not_a_prompt() -> None:
    text = "[ 3.1] Run /init as init process\r\nqemu login: [ 4.2] usb 1-1: new high-speed USB device\r\n"
    assert observed(None, text) == ("booting", "userspace")


def test_a_typed_line_is_read_back_as_a_person_sees_it() -> None:
    evidence = ConsoleEvidence(PROMPTS, UBOOT)
    evidence.feed(b"=> bx\x08 \x08oot")
    assert evidence.typed_line(re.compile("=> ")) == "boot"


class ScriptedUBoot(ScriptedConsole):
    """A U-Boot prompt that drops the first key of the first line typed at it, echoes the
    rest, and boots a kernel on `boot`."""

    def __init__(self) -> None:
        super().__init__(b"U-Boot 2023.01\r\nHit any key to stop autoboot:  0 \r\n=> ")
        self.line = ""
        self.dropped = False
        self.lines: list[str] = []

    def write(self, data: bytes) -> None:
        for char in data.decode():
            if char == "\x03":
                self.line = ""
                self.output += b"<INTERRUPT>\r\n=> "
            elif char == "\n":
                self.lines.append(self.line)
                self.output += b"\r\n"
                if self.line == "boot":
                    self.output += b"Starting kernel ...\r\n[ 0.0] Booting Linux\r\nacme login: "
                else:
                    self.output += f"Unknown command '{self.line}'\r\n=> ".encode()
                self.line = ""
            elif not self.dropped:
                self.dropped = True  # the key typed right after the countdown is lost
            else:
                self.line += char
                self.output += char.encode()


def test_a_key_lost_at_the_bootloader_prompt_is_seen_in_the_echo_and_typed_again(
    tmp_path: Path,
) -> None:
    uboot = ScriptedUBoot()
    log = ConsoleLog(tmp_path / "console.log")
    console = ConsoleSession(uboot, Console(), log, bootloader=UBOOT)  # type: ignore[arg-type]
    machine = BoardMachine(console, power=None)
    reached = machine.drive(BoardState.LOGIN, timeout=30)
    log.close()
    assert reached.state is BoardState.LOGIN
    assert uboot.lines == ["boot"]  # Enter was pressed only once the echo was right
    assert machine.stats.retyped == 1
    text = (tmp_path / "console.log").read_text()
    assert "echo showed 'oot' instead of 'boot'" in text
    assert "state: bootloader -> login (login)" in text
