"""The board state machine on real QEMU boards: U-Boot driven on purpose, a board opened
mid-boot, and a 20-boot stress run through U-Boot with resets, noise and busy CPUs.

Faults are injected on evidence: the harness's own console reads fire the fault
the moment the boot it is driving reaches the named stage (U-Boot banner, kernel
start, login prompt), so the test never bets on how fast a loaded host boots, nor
on a watcher keeping up with a harness that logs in faster than it polls.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.lab.board import Board
from harness.lab.states import BoardState
from tests.lab.conftest import opened_board

pytestmark = pytest.mark.qemu


class FaultOnConsole:
    """Fire `action` once, when the console output read since it was armed matches `regex`.

    Hooked into the console session (`on_read`), it runs in the harness's own thread for
    each chunk read, before the board state machine acts on that chunk: the fault lands at
    the named stage of the boot being driven, before `power_cycle()` can return, and the
    shell that call returns with belongs to a boot after the fault. What is read after the
    fault is kept (`after`) as evidence of that boot.
    """

    TAIL = 4096  # enough for any trigger line split across reads

    def __init__(self, regex: str, action: Callable[[], object]):
        self.regex, self.action = re.compile(regex.encode()), action
        self.seen = bytearray()
        self.after = bytearray()
        self.fired = False

    def __call__(self, data: bytes) -> None:
        if self.fired:
            self.after += data
            return
        self.seen += data
        if self.regex.search(self.seen):
            self.fired = True
            self.action()
        else:
            del self.seen[: -self.TAIL]


@pytest.fixture
def busy_cpus() -> Iterator[None]:
    """Two busy loops, one per core of a CI machine, for the length of the test."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for loop in loops:
        loop.kill()
        loop.wait()


def sent_lines(log_text: str) -> list[str]:
    return [line.split(" > ", 1)[1] for line in log_text.splitlines() if " > " in line[:30]]


def test_uboot_is_stopped_at_its_prompt_and_booted_with_an_echo_checked_boot_command(
    qemu_board, tmp_path: Path
) -> None:
    vm = qemu_board("qemu-aarch64-uboot")
    log = tmp_path / "console.log"
    with opened_board(vm, log, login=False) as board:
        board.ensure_shell()
        before = board.boot_id()
        board.machine.drive(BoardState.BOOTLOADER)
        assert board.state is BoardState.BOOTLOADER
        mark = log.stat().st_size
        board.ensure_shell()
        assert board.boot_id() != before
        assert board.console.run("uname -m").stdout == "aarch64\n"
    text = log.read_text()
    assert "state: bootloader -> bootloader (prompt)" in text or re.search(
        r"state: \S+ -> bootloader \(prompt\)", text
    )
    after = text[mark:]
    assert "> boot\n" in after  # the boot command, typed at the prompt
    assert re.search(r"state: bootloader -> booting \((?:kernel|boot command typed)\)", after)


def test_a_board_opened_while_its_kernel_boots_logs_in_once_without_a_power_cycle(
    qemu_board, tmp_path: Path
) -> None:
    vm = qemu_board("qemu-x86_64")
    with opened_board(vm, tmp_path / "first.log", login=False) as first:
        first.power_off()
        first.power_on()  # closed at once: the kernel is booting when the next one opens
    log = tmp_path / "console.log"
    with opened_board(vm, log, login=False) as board:
        board.ensure_shell()
        assert board.console.run("echo $((6 * 7))").stdout == "42\n"
        stats = board.machine_stats
    assert stats.power_cycles == 0
    assert stats.actions["type user name"] == 1
    text = log.read_text()
    typed_user = text.index("> root\n")
    assert re.search(r"state: \S+ -> login \(login\)", text[:typed_user])


BOOT_MIX = (
    ["power-cycle"] * 4
    + ["reboot"] * 4
    + ["reset-in-uboot"] * 3
    + ["reset-in-kernel"] * 3
    + ["reset-at-login"] * 3
    + ["noise"] * 3
)
TRIGGERS = {
    "reset-in-uboot": r"U-Boot 20\d\d\.\d\d",
    "reset-in-kernel": r"Booting Linux on physical CPU",
    "reset-at-login": r"login: ",
    "noise": r"Starting kernel",
}


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 20 boots of a TCG guest beside two busy loops
def test_twenty_boots_through_uboot_under_load_with_resets_and_noise_all_reach_a_new_shell(
    qemu_board, tmp_path: Path, busy_cpus: None
) -> None:
    vm = qemu_board("qemu-aarch64-uboot", fresh=True)
    mix = list(BOOT_MIX)
    random.Random(20261130).shuffle(mix)
    assert len(mix) == 20
    log = tmp_path / "console.log"
    report: list[dict[str, object]] = []
    with opened_board(vm, log, login=False) as board:
        board.ensure_shell()
        for number, kind in enumerate(mix, 1):
            before = board.boot_id()
            seconds = _one_boot(board, vm, kind)
            after = board.boot_id()
            assert after != before, f"boot {number} ({kind}) did not restart the board"
            assert board.console.run("echo up").stdout == "up\n"
            report.append({"boot": number, "kind": kind, "seconds": round(seconds, 2)})
            print(f"boot {number:2}/20 {kind:16} up after {seconds:6.1f} s", flush=True)
        stats = board.machine_stats.as_dict()
    summary = {"boots": report, "machine": stats}
    (tmp_path / "stress.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    assert len(report) == 20


def _one_boot(board: Board, vm, kind: str) -> float:
    if kind == "reboot":
        return board.reboot()
    if kind == "power-cycle":
        return board.power_cycle()
    action: Callable[[], object]
    if kind == "noise":
        action = lambda: vm.fault("noise", bytes=400)  # noqa: E731
    else:
        action = lambda: vm.fault("reset")  # noqa: E731
    fault = FaultOnConsole(TRIGGERS[kind], action)
    board.console.on_read.append(fault)
    try:
        seconds = board.power_cycle()
    finally:
        board.console.on_read.remove(fault)
    assert fault.fired, f"{kind}: the boot never showed {TRIGGERS[kind]!r}"
    if kind != "noise":
        # The shell power_cycle() came back with is that of the boot after the reset.
        banner = TRIGGERS["reset-in-uboot"].encode()
        assert re.search(banner, bytes(fault.after)), f"{kind}: no boot after the reset"
    return seconds
