"""ConsoleSession on the simulated board: login, exact results, shell state, timeouts, console.log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.lab.board import Board
from harness.lab.console import ConsoleSession
from harness.lab.errors import CommandTimeout, LoginFailed
from harness.vlab.fixtures import wait_for_console
from tests.lab.conftest import began


def test_login_gives_a_root_shell(lab: Board) -> None:
    result = lab.console.run("id -u; echo $0")
    assert result.exit_status == 0
    assert result.stdout.splitlines()[0] == "0"
    assert result.stderr == ""


def test_wrong_password_is_reported_as_login_failure(sim_board, tmp_path: Path) -> None:
    profile = sim_board.profile.model_copy(deep=True)
    profile.console.password = "not-the-password"
    board = Board.open(profile, sim_board.env_file, console_log=tmp_path / "console.log")
    try:
        with pytest.raises(LoginFailed) as failure:
            board.console.login()
        assert "refused" in str(failure.value)
        assert "Login incorrect" in str(failure.value)
    finally:
        board.close()


def test_exit_statuses_are_exact(lab: Board) -> None:
    statuses = {
        cmd: lab.console.run(cmd).exit_status
        for cmd in ("true", "false", "(exit 42)", "sh -c 'exit 255'")
    }
    assert statuses == {"true": 0, "false": 1, "(exit 42)": 42, "sh -c 'exit 255'": 255}


@pytest.mark.parametrize(
    ("command", "stdout"),
    [
        ("printf 'no newline at the end'", "no newline at the end"),
        ("printf 'two\\n\\n\\nblank lines\\n\\n'", "two\n\n\nblank lines\n\n"),
        ("echo", "\n"),
        ("true", ""),
        (
            "printf '\\036E0ff1:0\\036\\n\\036Sdead2\\036\\nstill output\\n'",
            "\x1eE0ff1:0\x1e\n\x1eSdead2\x1e\nstill output\n",
        ),
        ('echo "it\'s \'quoted\' \\"twice\\" \\$HOME"', "it's 'quoted' \"twice\" $HOME\n"),
        ("cat <<'EOF'\nline one\n  it's line two\nEOF", "line one\n  it's line two\n"),
        ("printf 'caf\\303\\251 \\342\\234\\223\\n'", "café ✓\n"),
        ("printf 'a\\rb\\r\\n'", "a\rb\r\n"),
    ],
    ids=[
        "no-newline",
        "blank-lines",
        "empty-line",
        "nothing",
        "marker-lookalikes",
        "quotes",
        "heredoc",
        "utf8",
        "carriage-returns",
    ],
)
def test_output_is_returned_exactly(lab: Board, command: str, stdout: str) -> None:
    result = lab.console.run(command)
    assert (result.exit_status, result.stdout) == (0, stdout)


def test_binary_junk_and_large_output_do_not_confuse_the_session(lab: Board) -> None:
    junk = lab.console.run("head -c 8192 /dev/urandom; echo; echo END")
    assert junk.exit_status == 0
    assert junk.stdout.endswith("\nEND\n")
    big = lab.console.run("seq 1 20000")
    assert big.stdout.splitlines() == [str(n) for n in range(1, 20001)]
    assert lab.console.run("echo after").stdout == "after\n"


def test_cwd_and_variables_persist_between_commands(lab: Board) -> None:
    lab.console.run("cd /tmp && export GREETING=hello-from-step-1 && mkdir -p here && cd here")
    assert lab.console.run('pwd; echo "$GREETING"').stdout == "/tmp/here\nhello-from-step-1\n"


# Growing command timeouts: a fast host passes at the first, a loaded one gets up to minutes.
TIMEOUT_BOUNDS = (2.0, 10.0, 60.0, 300.0)


def test_timeout_interrupts_the_command_keeps_its_output_and_the_shell_recovers(
    lab: Board,
) -> None:
    lab.console.run("cd /tmp")
    marker, shown = began("cmd")
    # The command never ends by itself. What it printed before the timeout must be in the
    # error; the marker must have come out before the timeout fires, so the timeout grows
    # until it has (every timeout is still interrupted and recovered from). Output lost by
    # the harness fails at every bound.
    outputs = []
    for bound in TIMEOUT_BOUNDS:
        with pytest.raises(CommandTimeout) as timeout:
            lab.console.run(f"{marker}; sleep 600", timeout=bound)
        assert timeout.value.exit_code == 1  # the test's problem, not the lab's
        assert lab.console.run("pwd").stdout == "/tmp\n"
        outputs.append(timeout.value.output)
        if re.search(shown, timeout.value.output):
            break
    else:
        pytest.fail(f"no {shown!r} in the output of any timed-out command: {outputs!r}")
    with pytest.raises(CommandTimeout):
        lab.console.run("cat", timeout=1)  # waits for input that never comes
    assert lab.console.run("echo $((6 * 7))").stdout == "42\n"


def test_a_command_too_long_for_a_console_line_is_a_user_error(lab: Board) -> None:
    with pytest.raises(UserError, match="at most"):
        lab.console.run("echo " + "x" * 5000)
    assert lab.console.run("echo fine").stdout == "fine\n"


USB_LINE = "usb 1-1: reset high-speed USB device number 2"
USB_PRINTED = r"\[ +\d+\.123456\] usb 1-1: reset"  # as printed: the typed command has "%d"


def test_login_finds_the_prompt_despite_kernel_messages_and_line_noise(
    lab: Board, sim_board
) -> None:
    tty = lab.console.run("tty").stdout.strip()
    # Kernel-style messages with colour escapes, 12 of them 0.25 s apart, then the board says
    # they are over. The login waits for a quiet console before it pokes, so it runs while
    # they arrive.
    mark = sim_board.console_mark()
    lab.console.run(
        "setsid sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do "
        'printf "\\033[1;33m[   %d.123456] ' + USB_LINE + '\\033[0m\\r\\n" $i; sleep 0.25; '
        'done; printf "%s-%s\\r\\n" usb quiet\' '
        f">{tty} 2>&1 </dev/null &"
    )
    # The first message is on the console before the harness logs in again.
    wait_for_console(sim_board, USB_PRINTED, 120, since=mark)
    lab.console.send("exit\n")
    sim_board.fault("noise", bytes=300)
    lab.console.login()
    # The last message has left the board before the next command: none lands in its output.
    wait_for_console(sim_board, r"usb-quiet", 120, since=mark)
    lab.console.drain()
    assert lab.console.run("echo $((40 + 2))").stdout == "42\n"
    log = (Path(lab.log.path)).read_text()  # type: ignore[arg-type]
    assert USB_LINE in log


def test_a_new_session_reattaches_to_a_shell_left_in_machine_mode(lab: Board) -> None:
    lab.console.run("cd /tmp; export LEFT_BY=first-session")
    second = ConsoleSession(lab.console.console, lab.profile.console)
    second.login()
    assert second.run('pwd; echo "$LEFT_BY"').stdout == "/tmp\nfirst-session\n"


STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def test_console_log_has_board_output_and_sent_commands_with_timestamps(lab: Board) -> None:
    lab.console.run("echo board-says-$((20 + 3))")
    log = Path(lab.log.path).read_text()  # type: ignore[arg-type]
    assert re.search(rf"^{STAMP} > echo board-says-\$\(\(20 \+ 3\)\)$", log, re.MULTILINE)
    assert re.search(rf"^{STAMP} \| board-says-23$", log, re.MULTILINE)
    assert re.search(rf"^{STAMP} \| .*login: ", log, re.MULTILINE)  # the login conversation too
    assert (
        "> ******" in log and "root\n" not in log.split("> ******")[1][:40]
    )  # password never logged


def test_console_log_keeps_what_the_board_prints_between_commands(lab: Board, sim_board) -> None:
    tty = lab.console.run("tty").stdout.strip()
    mark = sim_board.console_mark()
    lab.console.run(f"(sleep 0.3; printf '%s-%s\\n' printed while-idle >{tty}) &")
    # The line has left the board (the bench logged it) before the next command is sent.
    wait_for_console(sim_board, r"printed-while-idle", 60, since=mark)
    lab.console.drain()
    lab.console.run("true")
    log = Path(lab.log.path).read_text()  # type: ignore[arg-type]
    assert re.search(rf"^{STAMP} \| printed-while-idle$", log, re.MULTILINE)


def test_background_jobs_syntax_errors_and_exit_do_not_lose_the_session(
    lab: Board, sim_board
) -> None:
    tty = lab.console.run("tty").stdout.strip()
    lab.console.run("cd /tmp")
    mark = sim_board.console_mark()
    assert lab.console.run(f"(sleep 0.2; printf '%s-%s\\n' job ended >{tty}) &").exit_status == 0
    # The job ends while the shell waits for input: its last words are on the console.
    wait_for_console(sim_board, r"job-ended", 60, since=mark)
    lab.console.drain()
    assert lab.console.run("pwd").stdout == "/tmp\n"
    broken = lab.console.run("if then fi")
    assert broken.exit_status == 2 and "syntax error" in broken.stdout
    assert lab.console.run("exit 7").exit_status == 7
    assert lab.console.run("echo still here").stdout == "still here\n"
