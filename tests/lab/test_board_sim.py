"""Board on the simulated board: power, boot, crash and hang handling, recovery, bad env files."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.lab.board import Board
from harness.lab.errors import BoardCrashed, ShellUnresponsive
from harness.vlab.fixtures import wait_for_console
from tests.lab.conftest import began


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
    lab: Board, sim_board, on_console
) -> None:
    marker, shown = began("cmd")
    on_console(sim_board, shown, lambda: sim_board.fault("panic"))
    with pytest.raises(BoardCrashed) as crash:
        lab.console.run(f"{marker}; sleep 600", timeout=150)
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
    mark = sim_board.console_mark()
    sim_board.fault("panic")
    # The panic line has left the board before the next command is sent.
    wait_for_console(sim_board, r"Kernel panic - not syncing", 60, since=mark)
    with pytest.raises(BoardCrashed, match="panic") as crash:
        lab.console.run("true")
    assert "Kernel panic - not syncing" in crash.value.excerpt


def test_hang_times_out_then_the_shell_recovers_after_resume(lab: Board, sim_board) -> None:
    before = lab.boot_id()
    sim_board.fault("hang")
    with pytest.raises(ShellUnresponsive) as hang:
        lab.console.run("echo during-hang", timeout=1)
    # What the user reads: which command went unanswered, and that the board may be hung.
    assert "'echo during-hang'" in str(hang.value)
    assert "may be hung" in str(hang.value)
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
    # The simulated board runs on the host's kernel, and the bench writes its os-release:
    # both are known here without asking the board.
    assert (identity.kernel_release, identity.kernel_version) == (
        platform.release(),
        platform.version(),
    )
    assert (identity.os_release, identity.os_version_id) == (
        "Harness Simulated Board (not hardware)",
        "1",
    )
    assert identity.bootloader is None  # boots directly, no bootloader banner seen


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
