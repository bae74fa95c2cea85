"""SSHSession on the simulated board: exit status and stderr, SFTP, timeouts, link loss, host keys."""

from __future__ import annotations

import os
from pathlib import Path

import paramiko
import pytest

from harness.lab.board import Board
from harness.lab.errors import CommandTimeout, HostKeyRejected, SSHLinkLost
from harness.lab.hostkeys import HostKeyPolicy
from harness.lab.ssh import SSHSession
from tests.lab.conftest import began


def test_ssh_keeps_exit_status_and_stderr_apart(lab: Board) -> None:
    result = lab.ssh.run("echo to-stdout; echo to-stderr >&2; exit 42")
    assert (result.exit_status, result.stdout, result.stderr) == (42, "to-stdout\n", "to-stderr\n")


def test_sftp_round_trip_keeps_every_byte(lab: Board, tmp_path: Path) -> None:
    payload = os.urandom(1 << 20)
    local = tmp_path / "payload.bin"
    local.write_bytes(payload)
    lab.ssh.put(local, "/tmp/payload.bin")
    assert lab.ssh.run("wc -c < /tmp/payload.bin").stdout.strip() == str(len(payload))
    back = tmp_path / "back.bin"
    lab.ssh.get("/tmp/payload.bin", back)
    assert back.read_bytes() == payload


def test_sftp_of_a_missing_file_is_a_file_error_not_a_lost_link(lab: Board, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        lab.ssh.get("/no/such/file", tmp_path / "x")
    assert lab.ssh.run("true").exit_status == 0


def test_ssh_timeout_while_the_link_answers_is_a_command_timeout(lab: Board) -> None:
    with pytest.raises(CommandTimeout) as timeout:
        lab.ssh.run("echo begun; sleep 30", timeout=1)
    assert timeout.value.via == "ssh"
    assert lab.ssh.run("echo next").stdout == "next\n"


def test_power_loss_during_a_command_is_reported_as_ssh_link_lost(
    lab: Board, sim_board, on_console
) -> None:
    # The SSH command announces itself on the console, so the power goes only once it runs.
    tty = lab.console.run("tty").stdout.strip()
    marker, shown = began("ssh-cmd")
    command = f"{marker} >{tty}; sleep 600"
    on_console(sim_board, shown, lambda: sim_board.fault("power-off"))
    with pytest.raises(SSHLinkLost) as lost:
        lab.ssh.run(command, timeout=150)
    assert repr(command) in str(lost.value)  # the user is told which command the link took down


def test_ssh_reconnects_after_a_power_cycle(lab: Board) -> None:
    before = lab.ssh.run("cat /proc/sys/kernel/random/boot_id").stdout
    lab.power_cycle()
    after = lab.ssh.run("cat /proc/sys/kernel/random/boot_id").stdout
    assert after.strip() and after != before


def _session(board, policy: HostKeyPolicy) -> SSHSession:
    return SSHSession("127.0.0.1", board.ssh_port, "root", "root", host_keys=policy)


def test_a_host_key_other_than_the_pinned_one_is_rejected(sim_board) -> None:
    other = paramiko.RSAKey.generate(1024)
    session = _session(sim_board, HostKeyPolicy(pinned=[other]))
    with pytest.raises(HostKeyRejected, match=r"unknown SSH host key|changed"):
        session.connect()


def test_unknown_host_key_is_rejected_unless_trust_on_first_use_is_asked_for(
    sim_board, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(HostKeyRejected, match="not in known_hosts"):
        _session(sim_board, HostKeyPolicy(known_hosts=known)).connect()
    first = _session(sim_board, HostKeyPolicy(known_hosts=known, trust_on_first_use=True))
    assert first.run("true").exit_status == 0
    first.close()
    assert f"[127.0.0.1]:{sim_board.ssh_port} ssh-" in known.read_text()
    # Recorded: the next, strict, connection accepts the same key.
    second = _session(sim_board, HostKeyPolicy(known_hosts=known))
    assert second.run("echo ok").stdout == "ok\n"
    second.close()
