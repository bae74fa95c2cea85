"""Lab access on a real QEMU x86_64 board: every console, crash, SSH and power feature once.

One board serves the module (booting costs a core for seconds); tests that
break it (panic, reset, power-off) leave it recovered for the next one, which
is itself part of what they prove.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lab.board import Board
from harness.lab.errors import BoardCrashed, CommandTimeout, ShellUnresponsive, SSHLinkLost
from tests.lab.conftest import began, opened_board

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def vm(qemu_board):
    return qemu_board("qemu-x86_64")


@pytest.fixture(scope="module")
def board(vm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    with opened_board(vm, tmp_path_factory.mktemp("qemu-x86") / "console.log") as opened:
        yield opened


@pytest.fixture(autouse=True)
def shell_answers(board: Board) -> None:
    """Each test starts from a working shell, whatever the previous one did to the board."""
    board.ensure_shell()


def test_console_gives_exact_status_and_output_and_keeps_shell_state(board: Board) -> None:
    statuses = [
        board.console.run(cmd).exit_status
        for cmd in ("true", "false", "(exit 42)", "sh -c 'exit 255'")
    ]
    assert statuses == [0, 1, 42, 255]
    assert board.console.run("printf '\\036E1:0\\036\\nx'").stdout == "\x1eE1:0\x1e\nx"
    board.console.run("cd /proc && export STEP=two")
    assert board.console.run('pwd; echo "$STEP"').stdout == "/proc\ntwo\n"


def test_console_timeout_recovers_the_shell(board: Board) -> None:
    with pytest.raises(CommandTimeout):
        board.console.run("sleep 30", timeout=1)
    assert board.console.run("echo recovered").stdout == "recovered\n"


def test_console_log_records_output_and_sent_commands(board: Board) -> None:
    board.console.run("uname -m")
    log = Path(board.log.path).read_text()  # type: ignore[arg-type]
    assert "> uname -m\n" in log
    assert "| x86_64\n" in log
    assert "Linux version" in log or "login:" in log  # the boot or the login conversation


def test_ssh_keeps_stderr_apart_and_sftp_round_trips(board: Board, tmp_path: Path) -> None:
    result = board.ssh.run("echo out; echo err >&2; exit 3")
    assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")
    payload = os.urandom(200_000)
    (tmp_path / "up.bin").write_bytes(payload)
    board.ssh.put(tmp_path / "up.bin", "/tmp/up.bin")
    board.ssh.get("/tmp/up.bin", tmp_path / "down.bin")
    assert (tmp_path / "down.bin").read_bytes() == payload


def test_kernel_panic_during_a_command_raises_board_crashed_and_a_power_cycle_brings_it_back(
    board: Board, vm, on_console
) -> None:
    before = board.boot_id()
    marker, shown = began("cmd")
    on_console(vm, shown, lambda: vm.fault("panic"))
    with pytest.raises(BoardCrashed) as crash:
        board.console.run(f"{marker}; sleep 600", timeout=150)
    assert crash.value.kind == "panic"
    assert "Kernel panic - not syncing: sysrq triggered crash" in crash.value.excerpt
    seconds = board.power_cycle()
    assert seconds > 0
    assert board.boot_id() != before


def test_unexpected_reset_is_detected_as_a_crash(board: Board, vm, on_console) -> None:
    marker, shown = began("cmd")
    on_console(vm, shown, lambda: vm.fault("reset"))
    with pytest.raises(BoardCrashed) as crash:
        board.console.run(f"{marker}; sleep 600", timeout=150)
    assert crash.value.kind == "unexpected-reset"
    assert "Linux version" in crash.value.excerpt
    board.ensure_shell()
    assert board.console.run("echo up-again").stdout == "up-again\n"


def test_hang_times_out_and_the_shell_recovers_after_resume(board: Board, vm) -> None:
    before = board.boot_id()
    vm.fault("hang")
    with pytest.raises(ShellUnresponsive):
        board.console.run("echo frozen", timeout=1)
    vm.fault("resume")
    board.ensure_shell()
    assert board.boot_id() == before


def test_power_off_drops_the_ssh_link_and_boot_brings_the_board_back(
    board: Board, vm, on_console
) -> None:
    # The SSH command announces itself on the console, so the power goes only once it runs.
    tty = board.console.run("tty").stdout.strip()
    marker, shown = began("ssh-cmd")
    command = f"{marker} >{tty}; sleep 600"
    on_console(vm, shown, lambda: vm.fault("power-off"))
    with pytest.raises(SSHLinkLost) as lost:
        board.ssh.run(command, timeout=150)
    assert repr(command) in str(lost.value)
    seconds = board.boot()
    assert seconds > 0
    assert board.ssh.run("echo ssh-back").stdout == "ssh-back\n"


def test_reboot_confirms_a_new_boot_and_reports_the_boot_time(board: Board) -> None:
    events_before = len(board.crash_events)
    before = board.boot_id()
    seconds = board.reboot()
    assert seconds > 0
    assert board.boot_id() != before
    assert board.ssh.run("true").exit_status == 0
    assert board.crash_events[events_before:] == []  # a deliberate reboot is not a reset
