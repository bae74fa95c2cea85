"""Board on the simulated board: power, boot, crash and hang handling, recovery, bad env files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.lab.board import Board
from harness.lab.errors import BoardCrashed, ShellUnresponsive


def test_boot_from_power_off_reaches_a_shell_and_ssh(lab: Board) -> None:
    seconds = lab.boot()
    assert seconds > 0
    assert lab.console.run("echo console-up").stdout == "console-up\n"
    assert lab.ssh.run("echo ssh-up").stdout == "ssh-up\n"


def test_power_cycle_reports_a_new_boot_id_and_a_boot_time(lab: Board) -> None:
    before = lab.boot_id()
    seconds = lab.power_cycle()
    assert seconds > 0
    assert lab.boot_id() != before


def test_panic_during_a_command_raises_board_crashed_with_the_panic_excerpt(
    lab: Board, sim_board, later
) -> None:
    later(0.5, lambda: sim_board.fault("panic"))
    with pytest.raises(BoardCrashed) as crash:
        lab.console.run("sleep 20", timeout=15)
    assert crash.value.kind == "panic"
    assert "Kernel panic - not syncing" in crash.value.excerpt
    assert crash.value.exit_code == 1  # the board failed the test step
    assert [e.kind for e in lab.crash_events] == ["panic"]
    # The panicked board cannot answer: recovery power-cycles it.
    before = sim_board.state().boot_id
    lab.ensure_shell()
    assert lab.console.run("echo back").stdout == "back\n"
    assert sim_board.state().boot_id != before


def test_a_crash_while_idle_is_reported_by_the_next_command(lab: Board, sim_board) -> None:
    sim_board.fault("panic")
    time.sleep(0.3)  # let the panic line reach the console before the next command
    with pytest.raises(BoardCrashed, match="panic"):
        lab.console.run("true")


def test_hang_times_out_then_the_shell_recovers_after_resume(lab: Board, sim_board) -> None:
    before = lab.boot_id()
    sim_board.fault("hang")
    with pytest.raises(ShellUnresponsive):
        lab.console.run("echo during-hang", timeout=1)
    assert ShellUnresponsive.exit_code == 3
    sim_board.fault("resume")
    lab.ensure_shell()
    assert lab.console.run("echo after-resume").stdout == "after-resume\n"
    assert lab.boot_id() == before  # recovered without a power cycle


def test_ensure_shell_logs_in_again_after_a_logout(lab: Board) -> None:
    lab.console.logout()
    lab.ensure_shell()
    assert lab.console.run("id -u").stdout == "0\n"


def test_software_identity_reports_kernel_and_os(lab: Board) -> None:
    identity = lab.software_identity()
    assert identity.kernel_release == lab.console.run("uname -r").stdout.strip()
    assert identity.os_release  # PRETTY_NAME of the board's /etc/os-release
    assert identity.os_version_id


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("targets: [unclosed\n", "cannot load the labgrid environment"),
        ("targets:\n  other:\n    resources: {}\n", "no target 'main'"),
        ("targets:\n  main:\n    resources: {}\n    drivers: {}\n", "serial console"),
    ],
    ids=["bad-yaml", "no-main-target", "no-console"],
)
def test_a_broken_env_file_is_a_user_error_naming_the_file(
    sim_board, tmp_path: Path, content: str, message: str
) -> None:
    env = tmp_path / "bench.yaml"
    env.write_text(content)
    with pytest.raises(UserError, match=message) as error:
        Board.open(sim_board.profile, env)
    assert str(env) in str(error.value)
    assert error.value.exit_code == 2
