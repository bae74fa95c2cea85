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
# What is typed at a frozen or unpowered board; its echo is what must not come back.
HANG_PROBE = "typed-while-hung"
OFF_PROBE = "typed-while-off"
# How long the tests look for an answer that must not come. Not a race: a frozen or
# unpowered board never answers, so looking longer could only make the check stronger.
SILENCE_LOOK = 1.5


def test_hang_silences_the_console_and_qemu_reports_paused(qemu_board, console_client):
    board = qemu_board(BOARD)
    console = console_client(board.console_port)
    console.send("\n")
    console.read_until(b"login: ")
    board.fault("hang")  # returns once QEMU has stopped the CPUs
    try:
        state = board.state()
        assert state.extra["run_state"] == "paused"
        assert state.paused
        # Typed only now, so no byte the board sent before it froze can be its echo. Output
        # still in flight from before the freeze may arrive; the probe's echo must not.
        console.send(HANG_PROBE + "\n")
        seen = console.read_for(SILENCE_LOOK)
        assert HANG_PROBE.encode() not in seen, "a hung board must not answer on its console"
    finally:
        board.fault("resume")
    # Thawed, the board reads what was typed while it was frozen and echoes it: the probe
    # was a fair one. The login program then asks for a password: leave it at the prompt.
    console.read_until(HANG_PROBE.encode(), timeout=120)
    console.send("\n")
    console.read_until(b"login: ", timeout=120)


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

    eventually(arrived, 120, "the injected noise on the console")


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
    # Typing into an unpowered board: nothing comes back, nothing breaks. Bytes the board sent
    # before it lost power may still be in flight; an echo of what is typed now must not come.
    console.send(OFF_PROBE + "\n")
    assert OFF_PROBE.encode() not in console.read_for(SILENCE_LOOK)
    board.fault("power-on")
    booted = console.read_until(b"login: ", timeout=120)
    assert b"Linux version" in booted
    assert OFF_PROBE.encode() not in booted, "keys typed while off must not reach the new boot"
    assert board.state().machine_pid not in (None, qemu_pid)
