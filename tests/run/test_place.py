"""`harness run --place` and `harness repro --place`: a unit reserved on a real labgrid coordinator, exported by a real exporter."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.run.conftest import PLANS, REPO, RunOutput

pytestmark = pytest.mark.skipif(
    shutil.which("labgrid-coordinator") is None, reason="labgrid tools not installed"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# A bound for a hang only: a loaded host starts the coordinator and the exporter slowly.
READY_GUARD = 120.0


def _wait_until_listening(address: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the coordinator accepts connections on `address`; fail with its output if it died."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + READY_GUARD
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"labgrid-coordinator exited ({proc.returncode}): {log.read_text()[-2000:]}"
            )
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"labgrid-coordinator never listened on {address}: {log.read_text()[-2000:]}"
                )
            time.sleep(0.05)


def _client(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["labgrid-client", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def place(sim_board, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The sim board's console and SSH exported through a coordinator as place `h4-place`, acquired."""
    lab_env = yaml.safe_load(Path(sim_board.env_file).read_text())
    resources = lab_env["targets"]["main"]["resources"]
    exported = {
        "bench": {name: resources[name] for name in ("NetworkSerialPort", "NetworkService")}
    }
    (tmp_path / "exporter.yaml").write_text(yaml.safe_dump(exported))
    ssh_port = resources["NetworkService"]["port"]
    (tmp_path / "known_hosts").write_text(
        f"[127.0.0.1]:{ssh_port} {lab_env['options']['harness_ssh_host_key']}\n"
    )
    address = f"127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "LG_COORDINATOR": address,
        "HARNESS_SSH_KNOWN_HOSTS": str(tmp_path / "known_hosts"),
    }
    coordinator_log = tmp_path / "coordinator.log"
    with coordinator_log.open("wb") as log:
        coordinator = subprocess.Popen(
            ["labgrid-coordinator", "-l", address], cwd=tmp_path, stdout=log, stderr=log
        )
    procs = [coordinator]
    try:
        _wait_until_listening(address, coordinator, coordinator_log)
        procs.append(
            subprocess.Popen(
                [
                    "labgrid-exporter",
                    "-c",
                    address,
                    "--name",
                    "h4exp",
                    "--hostname",
                    "127.0.0.1",
                    "exporter.yaml",
                ],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + READY_GUARD
        while "h4exp/bench/NetworkService" not in _client(env, "resources"):
            assert time.monotonic() < deadline, "exporter never registered its resources"
            time.sleep(0.3)  # poll interval of the wait above, not a wait of its own
        _client(env, "-p", "h4-place", "create")
        _client(env, "-p", "h4-place", "add-match", "h4exp/bench/*")
        _client(env, "-p", "h4-place", "acquire")
        yield env
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=READY_GUARD)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_plan_and_case_run_on_a_place_reserved_through_the_coordinator(
    sim_board, place: dict[str, str], tmp_path: Path
) -> None:
    results_root = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--board",
            str(sim_board.profile.source),
            "--plan",
            str(PLANS / "all-pass.yaml"),
            "--place",
            "h4-place",
            "--results",
            str(results_root),
            "--no-submit",
            "--plain",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=place,
        timeout=540,  # a bound for a hang only, inside pytest's own 600 s
    )
    run = RunOutput(done.returncode, done.stdout, done.stderr, results_root)
    assert run.code == 0, run.stderr
    assert set(run.outcomes().values()) == {"pass"}
    assert run.run_json()["lab"] == {**run.run_json()["lab"], "kind": "place", "name": "h4-place"}

    # `harness repro` reaches the board the same way (the same place, still acquired)
    certified = run.folder
    repro = subprocess.run(
        [sys.executable, "-m", "harness", "repro", str(REPO / "testplans" / "cases" / "always.yaml"),
         "--board", str(sim_board.profile.source), "--place", "h4-place", "--repeat", "2",
         "--results", str(results_root), "--no-submit"],
        capture_output=True, text=True, cwd=REPO, env=place, timeout=540,
    )  # fmt: skip
    assert repro.returncode == 1, repro.stderr
    (folder,) = [p for p in results_root.glob("[!.]*") if p.is_dir() and p != certified]
    repro_run = json.loads((folder / "run.json").read_text())
    assert (repro_run["lab"]["kind"], repro_run["lab"]["name"]) == ("place", "h4-place")
    assert repro_run["summary"]["reproduced"] == repro_run["summary"]["iterations"] == 2
