"""The whole farm path once on a QEMU board: exported, reserved by tag, console, SSH, a power
cycle through labgrid's NetworkPowerPort, released. Everything else is shown on simulated
boards (test_farm_sim.py); this proves it holds for a real kernel booting under QEMU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.farm.conftest import READY_GUARD, REPO, RUN_GUARD, eventually

pytestmark = [pytest.mark.qemu, pytest.mark.slow]  # over a minute on a loaded 2-core machine


def test_a_qemu_board_is_reserved_by_tag_power_cycled_through_the_farm_and_released(
    qemu_board, vlab_dir: Path, tmp_path: Path
) -> None:
    from harness.farm.services import free_address

    board = qemu_board("qemu-x86_64")
    farm = tmp_path / "farm"
    address = free_address()
    env = {**os.environ, "LG_COORDINATOR": address, "HARNESS_FARM_DIR": str(farm)}
    with (tmp_path / "export.log").open("wb") as log:
        export = subprocess.Popen(
            [sys.executable, "-m", "harness", "lab", "--lab-dir", str(vlab_dir), "export",
             "--adopt", board.name, "--name", "qlab", "--listen", address, "--farm-dir", str(farm)],
            cwd=REPO, env=env, stdout=log, stderr=log,
        )  # fmt: skip
    try:

        def exported() -> bool:
            if export.poll() is not None:
                pytest.fail(f"export exited: {(tmp_path / 'export.log').read_text()[-3000:]}")
            return (farm / "farm.json").is_file()

        eventually(exported, READY_GUARD, "the QEMU board exported")
        env["HARNESS_SSH_KNOWN_HOSTS"] = str(farm / "known_hosts")
        boots = board.state().boot_count
        done = subprocess.run(
            [sys.executable, "-m", "harness", "run", "--board", "qemu-x86_64",
             "--plan", str(REPO / "testplans" / "health.yaml"), "--reserve", "board=qemu-x86_64",
             "--wait", "--results", str(tmp_path / "results"), "--no-submit", "--plain"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_GUARD,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"place {board.name} acquired" in done.stderr
        assert f"place {board.name} released" in done.stderr
        run_dir = next((tmp_path / "results").glob("*-qemu-x86_64-*"))
        outcomes = [
            json.loads(line)["outcome"]
            for line in (run_dir / "results.jsonl").read_text().splitlines()
        ]
        assert outcomes == ["pass", "pass", "pass"]  # console, SSH, power cycle
        assert board.state().boot_count > boots  # the PDU outlet really switched QEMU
        status = subprocess.run(
            [sys.executable, "-m", "harness", "farm", "status", "--json"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_GUARD,
        )  # fmt: skip
        place = json.loads(status.stdout)["places"][0]
        assert place["place"] == board.name and not place["holder"]
        assert place["tags"]["board"] == "qemu-x86_64" and place["tags"]["arch"] == "x86_64"
    finally:
        export.send_signal(signal.SIGTERM)
        try:
            export.wait(timeout=60)
        except subprocess.TimeoutExpired:
            export.kill()
            export.wait()
