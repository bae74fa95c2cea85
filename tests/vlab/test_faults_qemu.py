"""Every fault kind, observed on a real QEMU board the way a harness (or a person) would see it.

The tests share one board (booting costs CPU) and run in file order; each
leaves the board usable for the next, except panic, after which the power
test boots it afresh.
"""

from __future__ import annotations

import pytest

from harness.vlab.fixtures import wait_for_console
from harness.vlab.state import pid_alive

pytestmark = pytest.mark.qemu

BOARD = "qemu-x86_64"


def test_hang_silences_the_console_and_qemu_reports_paused(qemu_board, console_client):
    board = qemu_board(BOARD)
    console = console_client(board.console_port)
    console.send("\n")
    console.read_until(b"login: ")
    board.fault("hang")
    try:
        state = board.state()
        assert state.extra["run_state"] == "paused"
        assert state.paused
        console.read_for(0.3)  # output the board produced before it froze may still be in flight
        console.send("\n")
        assert console.read_for(1.5) == b"", "a hung board must not answer on its console"
    finally:
        board.fault("resume")


def test_resume_after_hang_brings_the_console_back(qemu_board, console_client):
    board = qemu_board(BOARD)
    console = console_client(board.console_port)
    board.fault("hang")
    console.send("\n")
    board.fault("resume")
    assert board.state().extra["run_state"] == "running"
    assert b"login: " in console.read_until(b"login: ")


def test_noise_bytes_arrive_at_the_console_client(qemu_board, console_client, eventually):
    board = qemu_board(BOARD)
    console = console_client(board.console_port)
    sent = bytes.fromhex(board.fault("noise", bytes=128)["noise_hex"])
    received = bytearray()

    def arrived() -> bool:
        received.extend(console.read_for(0.2))
        return sent in received

    eventually(arrived, 10, "the injected noise on the console")


def test_reset_reboots_the_board_with_boot_messages_again(qemu_board):
    board = qemu_board(BOARD)
    mark = board.console_mark()
    qemu_pid = board.state().machine_pid
    board.fault("reset")
    wait_for_console(board, r"Linux version \d", 120, since=mark)
    board.wait_until_up(since=mark)
    assert board.state().machine_pid == qemu_pid, "a reset is not a power cycle: same QEMU"


def test_panic_shows_a_kernel_panic_on_the_console(qemu_board):
    board = qemu_board(BOARD)
    mark = board.console_mark()
    board.fault("panic")
    shown = wait_for_console(board, r"Kernel panic - not syncing: [^\r\n]*\r?\n", 60, since=mark)
    assert "sysrq triggered crash" in shown


def test_console_client_stays_connected_through_power_off_and_power_on(qemu_board, console_client):
    board = qemu_board(BOARD)
    console = console_client(board.console_port)
    qemu_pid = board.state().machine_pid
    board.fault("power-off")
    state = board.state()
    assert (state.power, state.machine_pid) == ("off", None)
    assert not pid_alive(qemu_pid), "power-off must kill QEMU"
    console.read_for(0.3)  # bytes the board sent before it lost power may still be in flight
    console.send("\n")  # typing into an unpowered board: nothing comes back, nothing breaks
    assert console.read_for(0.5) == b""
    board.fault("power-on")
    booted = console.read_until(b"login: ", timeout=120)
    assert b"Linux version" in booted
    assert board.state().machine_pid not in (None, qemu_pid)
