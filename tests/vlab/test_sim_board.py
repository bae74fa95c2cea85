"""The simulated board behaves like a board where the harness looks: console login, SSH, SFTP, power."""

from __future__ import annotations

import io
import os
import signal
import socket
import uuid
from pathlib import Path

import paramiko
import pytest
from labgrid import Environment

from harness.vlab.boardhost import stop_bench
from harness.vlab.envfile import OPT_LAB_KIND, OPT_SSH_HOST_KEY
from harness.vlab.state import pid_alive
from tests.vlab.processes import live_processes_mentioning


def ssh(board, password: str = "root") -> paramiko.SSHClient:
    """SSH with the host key pinned from the env file, as the harness does."""
    env = Environment(str(board.env_file))
    key_type, key_b64 = env.config.get_option(OPT_SSH_HOST_KEY).split()
    client = paramiko.SSHClient()
    client.get_host_keys().add(
        f"[127.0.0.1]:{board.ssh_port}", key_type, paramiko.Ed25519Key(data=_b64(key_b64))
    )
    client.connect(
        "127.0.0.1",
        port=board.ssh_port,
        username="root",
        password=password,
        look_for_keys=False,
        allow_agent=False,
        timeout=60,
    )
    return client


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def run(client: paramiko.SSHClient, command: str) -> tuple[int, str, str]:
    _, out, err = client.exec_command(command, timeout=60)
    status = out.channel.recv_exit_status()
    return status, out.read().decode(), err.read().decode()


def login(console, password: str) -> bytes:
    console.send("\n")
    console.read_until(b"login: ")
    console.send("root\n")
    console.read_until(b"Password: ")
    console.send(password + "\n")
    return console.read_until(b"# ") if password == "root" else console.read_until(b"login: ")


def test_console_banner_says_the_board_is_simulated(sim_board):
    text = sim_board.console_log.read_text(errors="replace")
    assert "SIMULATED board" in text
    assert "not hardware" in text


def test_console_login_with_right_password_gives_a_shell_on_the_board(sim_board, console_client):
    console = console_client(sim_board.console_port)
    login(console, "root")
    console.send("hostname; cat /etc/os-release\n")
    shown = console.read_until(b"VERSION_ID")
    assert f"sim-{sim_board.name}".encode() in shown
    assert b"ID=harness-sim" in shown


def test_console_login_with_wrong_password_is_refused(sim_board, console_client):
    console = console_client(sim_board.console_port)
    refused = login(console, "not-the-password")
    assert b"Login incorrect" in refused


def test_ssh_command_reports_exit_status_and_separate_stderr(sim_board):
    client = ssh(sim_board)
    try:
        status, out, err = run(client, "echo to-out; echo to-err >&2; exit 7")
    finally:
        client.close()
    assert (status, out, err) == (7, "to-out\n", "to-err\n")


def test_ssh_with_wrong_password_is_rejected(sim_board):
    with pytest.raises(paramiko.AuthenticationException):
        ssh(sim_board, password="wrong")


def test_sftp_round_trip_stays_inside_the_board(sim_board):
    marker = f"/tmp/harness-sim-{uuid.uuid4()}"
    client = ssh(sim_board)
    try:
        sftp = client.open_sftp()
        sftp.putfo(io.BytesIO(b"payload\n"), marker)
        status, out, _ = run(client, f"cat {marker}")
        fetched = io.BytesIO()
        sftp.getfo(marker, fetched)
    finally:
        client.close()
    assert (status, out) == (0, "payload\n")
    assert fetched.getvalue() == b"payload\n"
    assert not Path(marker).exists(), "a write on the simulated board leaked onto the host"


def test_power_cycle_changes_boot_id_and_forgets_writes(sim_board):
    client = ssh(sim_board)
    _, before, _ = run(client, "cat /proc/sys/kernel/random/boot_id; touch /root/left-behind")
    client.close()
    since = sim_board.console_mark()
    sim_board.power("cycle")
    sim_board.wait_until_up(since)
    client = ssh(sim_board)
    try:
        _, after, _ = run(client, "cat /proc/sys/kernel/random/boot_id")
        gone, _, _ = run(client, "test -e /root/left-behind")
    finally:
        client.close()
    assert before.strip() != after.strip()
    assert uuid.UUID(after.strip())
    assert gone == 1
    assert sim_board.state().boot_count == 2


def test_console_connection_survives_power_off_and_on(sim_board, console_client):
    console = console_client(sim_board.console_port)
    sim_board.power("off")
    assert sim_board.state().power == "off"
    sim_board.power("on")
    console.send("\n")
    assert b"login: " in console.read_until(b"login: ")


def test_second_console_client_is_refused_with_a_message(sim_board, console_client):
    first = console_client(sim_board.console_port)
    first.send("\n")
    first.read_until(b"login: ")
    second = socket.create_connection(("127.0.0.1", sim_board.console_port), timeout=5)
    try:
        message = second.recv(4096)
    finally:
        second.close()
    assert b"already in use" in message
    first.send("\n")
    assert b"login: " in first.read_until(b"login: ")


def test_noise_reaches_the_console_client(sim_board, console_client, eventually):
    console = console_client(sim_board.console_port)
    reply = sim_board.fault("noise", bytes=256)
    sent = bytes.fromhex(reply["noise_hex"])
    assert len(sent) == 256
    received = bytearray()

    def arrived() -> bool:
        received.extend(console.read_for(0.2))
        return sent in received

    eventually(arrived, 120, "the noise bytes on the console")


def test_hang_freezes_the_board_until_resume(sim_board, console_client):
    console = console_client(sim_board.console_port)
    sim_board.fault("hang")
    assert sim_board.state().paused
    # Typed only after the freeze: in-flight output may still come, the probe's echo must not.
    console.send("typed-while-hung")
    assert b"typed-while-hung" not in console.read_for(1.0)
    sim_board.fault("resume")
    assert b"typed-while-hung" in console.read_until(b"typed-while-hung")  # read once thawed


def test_env_file_drives_the_board_through_labgrid(sim_board):
    env = Environment(str(sim_board.env_file))
    assert env.config.get_option(OPT_LAB_KIND) == "sim"
    target = env.get_target("main")
    serial = target.get_driver("SerialDriver")
    serial.write(b"\n")
    seen = serial.expect(r"login: ", timeout=120)
    assert seen[0] == 0
    power = target.get_driver("ExternalPowerDriver")
    power.cycle()
    assert sim_board.state().boot_count == 2
    serial.expect(r"power-on #2", timeout=120)
    target.deactivate_all_drivers()


def test_taking_down_a_bench_that_does_not_answer_returns_once_it_and_its_board_are_gone(
    sim_board,
):
    state = sim_board.state()
    folder = state.state_dir + "/"
    assert state.machine_pid in live_processes_mentioning(folder)  # the board's unshare
    os.kill(state.pid, signal.SIGSTOP)  # the bench can neither answer nor exit: it is killed
    stop_bench(state, timeout=1.0)
    assert live_processes_mentioning(folder) == []
    assert not pid_alive(state.pid) and not pid_alive(state.machine_pid)
