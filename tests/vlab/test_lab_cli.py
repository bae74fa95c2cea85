"""`harness lab` through the real command line, as an engineer types it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.vlab.state import pid_alive
from tests.vlab.processes import live_processes_mentioning


def lab(lab_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "lab", "--lab-dir", str(lab_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def up_facts(output: str) -> dict[str, str]:
    return dict(re.findall(r"^([a-z ]+):\s+(.+)$", output, re.MULTILINE))


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    path = tmp_path / "lab"
    yield path
    lab(path, "down", "--all")


@pytest.mark.qemu
def test_up_list_down_two_qemu_boards_at_once(lab_dir, lab_artifacts):
    first = lab(lab_dir, "up", "qemu-x86_64-mini", "--name", "bench-a")
    assert first.returncode == 0, first.stderr
    second = lab(lab_dir, "up", "qemu-aarch64-uboot", "--name", "bench-b")
    assert second.returncode == 0, second.stderr
    a, b = up_facts(first.stdout), up_facts(second.stdout)
    assert "login prompt seen" in first.stdout and "login prompt seen" in second.stdout
    assert a["console"] != b["console"] and a["ssh"] != b["ssh"]
    env_a = yaml.safe_load(Path(a["env file"]).read_text())
    serial = env_a["targets"]["main"]["resources"]["NetworkSerialPort"]
    assert f"127.0.0.1:{serial['port']}" == a["console"]

    listed = lab(lab_dir, "list")
    assert listed.returncode == 0
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows["bench-a"][1:3] == ["qemu-x86_64-mini", "on"]
    assert rows["bench-b"][1:3] == ["qemu-aarch64-uboot", "on"]

    assert lab(lab_dir, "down", "bench-a").returncode == 0  # returns once its processes are gone
    listed = lab(lab_dir, "list").stdout
    assert "bench-a" not in listed and "bench-b" in listed
    assert live_processes_mentioning(str(lab_dir / "bench-a")) == []

    assert lab(lab_dir, "down", "--all").returncode == 0
    assert "no virtual boards running" in lab(lab_dir, "list").stdout
    assert live_processes_mentioning(str(lab_dir)) == []


def test_unknown_board_profile_is_exit_2_with_the_known_names(lab_dir):
    result = lab(lab_dir, "up", "no-such-board")
    assert result.returncode == 2
    assert "no board profile named 'no-such-board'" in result.stderr
    assert "qemu-x86_64" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [("power", "ghost", "on"), ("fault", "ghost", "hang"), ("down", "ghost")],
    ids=["power", "fault", "down"],
)
def test_unknown_running_board_is_exit_2_naming_it(lab_dir, args):
    result = lab(lab_dir, *args)
    assert result.returncode == 2
    assert "no running virtual board named 'ghost'" in result.stderr
    assert "Traceback" not in result.stderr


def test_sim_board_up_power_fault_and_duplicate_name(lab_dir):
    started = lab(lab_dir, "up", "sim", "--name", "s1")
    assert started.returncode == 0, started.stderr
    assert "board:    sim (sim)" in started.stdout

    again = lab(lab_dir, "up", "sim", "--name", "s1")
    assert again.returncode == 2
    assert "already running" in again.stderr

    cycled = lab(lab_dir, "power", "s1", "cycle")
    assert (cycled.returncode, cycled.stdout.strip()) == (0, "s1: power on")
    noisy = lab(lab_dir, "fault", "s1", "noise", "--bytes", "16")
    assert noisy.returncode == 0, noisy.stderr
    off = lab(lab_dir, "fault", "s1", "power-off")
    assert "power off" in off.stdout
    assert lab(lab_dir, "list").stdout.split("\n")[1].split()[2] == "off"

    bad = lab(lab_dir, "fault", "s1", "noise", "--bytes", "0")
    assert bad.returncode == 2


def test_board_of_a_killed_bench_is_cleaned_up_not_listed(lab_dir, eventually):
    assert lab(lab_dir, "up", "sim", "--name", "doomed").returncode == 0
    state = yaml.safe_load((lab_dir / "doomed" / "bench.json").read_text())
    os.kill(state["pid"], signal.SIGKILL)
    # kill() only queues the signal: the bench is gone once the kernel has ended it.
    eventually(lambda: not pid_alive(state["pid"]), 120, "the SIGKILLed bench to end")
    listed = lab(lab_dir, "list")
    assert "doomed" not in listed.stdout
    assert not (lab_dir / "doomed").exists()
    eventually(lambda: not pid_alive(state["machine_pid"]), 120, "the board to die with its bench")


def test_board_goes_down_when_the_calling_shell_ends(lab_dir, eventually):
    shell = subprocess.run(
        [
            "sh",
            "-c",
            f"{sys.executable} -m harness lab --lab-dir {lab_dir} up sim --name sess --no-wait; echo shell-done",
        ],
        capture_output=True,
        text=True,
        timeout=300,  # a bound for a hang only
        check=False,
    )
    assert shell.returncode == 0, shell.stderr
    eventually(
        lambda: "sess" not in lab(lab_dir, "list").stdout,
        120,
        "the board to go down after its shell exited",
    )
    eventually(
        lambda: live_processes_mentioning(str(lab_dir / "sess")) == [],
        120,
        "every process of the board to end",
    )


def test_list_and_up_never_delete_folders_the_lab_did_not_make(lab_dir):
    foreign = lab_dir / "photos"
    foreign.mkdir(parents=True)
    (foreign / "holiday.jpg").write_bytes(b"not a bench")
    assert "no virtual boards running" in lab(lab_dir, "list").stdout
    refused = lab(lab_dir, "up", "sim", "--name", "photos")
    assert refused.returncode == 2
    assert "is not a bench's folder" in refused.stderr
    assert (foreign / "holiday.jpg").read_bytes() == b"not a bench"
