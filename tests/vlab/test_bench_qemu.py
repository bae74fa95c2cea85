"""A bench runs a real QEMU board that labgrid can drive, and cannot leak QEMU processes."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from labgrid import Environment

from harness.vlab.boardhost import resolve_board
from harness.vlab.envfile import OPT_CONTROL, OPT_PROFILE, OPT_SSH_HOST_KEY
from harness.vlab.handle import RunningBoard
from harness.vlab.state import pid_alive, running
from tests.vlab.processes import live_processes_mentioning

pytestmark = pytest.mark.qemu


def test_env_file_loads_in_labgrid_and_serial_driver_sees_the_login_prompt(qemu_board):
    board = qemu_board("qemu-x86_64")
    env = Environment(str(board.env_file))
    assert Path(env.config.get_option(OPT_PROFILE)) == board.profile.source
    assert env.config.get_option(OPT_SSH_HOST_KEY).startswith("ssh-ed25519 ")
    assert Path(env.config.get_option(OPT_CONTROL)).is_socket()
    target = env.get_target("main")
    serial = target.get_driver("SerialDriver")
    try:
        serial.write(b"\n")
        index, _, _, _ = serial.expect([r"qemu-x86_64 login: "], timeout=60)
        assert index == 0
    finally:
        target.deactivate_all_drivers()


def test_external_power_driver_cycle_relaunches_qemu_and_the_board_boots_again(qemu_board):
    board = qemu_board("qemu-x86_64")
    before = board.state()
    mark = board.console_mark()
    target = Environment(str(board.env_file)).get_target("main")
    target.get_driver("ExternalPowerDriver").cycle()
    after = board.state()
    assert after.boot_count == before.boot_count + 1
    assert after.machine_pid != before.machine_pid
    assert not pid_alive(before.machine_pid)
    assert after.ssh_port == before.ssh_port, "SSH forward port must survive a power cycle"
    board.wait_until_up(since=mark)
    rebooted = board.console_log.read_bytes()[mark:]
    assert b"Linux version" in rebooted


def test_killing_the_owner_kills_the_bench_and_its_qemu(vlab_dir, lab_artifacts, eventually):
    owner = subprocess.Popen(["sleep", "600"])
    board = RunningBoard.start(
        resolve_board("qemu-x86_64-mini"), "owned", lab_dir=vlab_dir, owner=owner.pid, wait=False
    )
    qemu_pid = board.state().machine_pid
    assert qemu_pid is not None and pid_alive(qemu_pid)
    state_dir = str(board.env_file.parent)
    try:
        owner.kill()
        owner.wait()
        eventually(
            lambda: not pid_alive(board.bench_pid) and not pid_alive(qemu_pid),
            120,
            "bench and QEMU to exit after their owner died",
        )
        eventually(
            lambda: live_processes_mentioning(state_dir) == [],
            120,
            "every process of the bench to end",
        )
        assert "owned" not in [s.name for s in running(vlab_dir)]
    finally:
        board.stop()


def test_qemu_dies_with_a_bench_that_is_killed_outright(vlab_dir, lab_artifacts, eventually):
    board = RunningBoard.start(
        resolve_board("qemu-x86_64-mini"), "killed", lab_dir=vlab_dir, wait=False
    )
    qemu_pid = board.state().machine_pid
    assert qemu_pid is not None and pid_alive(qemu_pid)
    try:
        os.kill(board.bench_pid, signal.SIGKILL)
        eventually(lambda: not pid_alive(board.bench_pid), 120, "the SIGKILLed bench to end")
        eventually(lambda: not pid_alive(qemu_pid), 120, "QEMU to die with its SIGKILLed bench")
        assert "killed" not in [s.name for s in running(vlab_dir)]
    finally:
        board.stop()
