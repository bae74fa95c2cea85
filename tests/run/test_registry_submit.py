"""The end of a run hands it to the registry; a registry that is down never changes the verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.kernelid.notes import build_id_from_note_section
from tests.run.conftest import harness_run


def test_finished_run_is_delivered_to_the_local_registry(
    sim_board, results_root: Path, tmp_path: Path
) -> None:
    env = {"HARNESS_DATA_HOME": str(tmp_path / "data")}
    run = harness_run(sim_board, "blocker-fails.yaml", results_root, env=env, submit=True)
    assert run.code == 1
    assert "registry: delivered" in run.stderr
    assert json.loads((run.folder / "submission.json").read_text())["status"] == "delivered"


def test_registry_down_queues_the_run_and_keeps_verdict_and_exit_code(
    sim_board, results_root: Path, tmp_path: Path
) -> None:
    env = {
        "HARNESS_DATA_HOME": str(tmp_path / "data"),
        "HARNESS_REGISTRY_URL": "http://127.0.0.1:9",  # discard port: nothing answers
        "HARNESS_REGISTRY_TOKEN": "lab-token",
    }
    run = harness_run(sim_board, "blocker-fails.yaml", results_root, env=env, submit=True)
    assert run.code == 1, "a test failed; the registry being down must not change that"
    assert run.run_json()["verdict"] == "not-certified"
    assert "registry: queued" in run.stderr
    assert list((tmp_path / "data").rglob("*.bundle.tar")), "the run waits in the outbox"


def _harness(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_run_records_the_running_kernels_build_id_and_eligibility_reads_it_from_the_run(
    sim_board, results_root: Path, tmp_path: Path
) -> None:
    env = {"HARNESS_DATA_HOME": str(tmp_path / "data")}
    run = harness_run(sim_board, "blocker-fails.yaml", results_root, env=env)
    software = run.run_json()["software"]
    # the simulated board shares the host's kernel: its notes, read here directly, must agree
    host_build_id = build_id_from_note_section(Path("/sys/kernel/notes").read_bytes())
    assert software["kernel_build_id"] == host_build_id
    assert software["kernel_identity"]["build_id_source"] == "/sys/kernel/notes"
    inventory = json.loads((run.folder / "inventory.json").read_text())
    assert inventory["kernel"]["build_id"] == host_build_id
    assert inventory["kernel"]["kernel_release"] == software["kernel_release"]

    board = run.run_json()["board"]
    added = _harness("registry", "kernels", "add", "--release", software["kernel_release"],
                     "--build-id", host_build_id.upper(), "--board", f"{board['vendor']}/{board['model']}",
                     env=env)  # fmt: skip
    assert added.returncode == 0, added.stderr
    bundle = tmp_path / "run.bundle.tar"
    made = _harness("bundle", "make", str(run.folder), "-o", str(bundle), env=env)
    assert made.returncode == 0, made.stderr
    for source in (run.folder, bundle):
        asked = _harness("registry", "eligible", "--run", str(source), "--json", env=env)
        assert asked.returncode == 0, asked.stderr
        answer = json.loads(asked.stdout)
        assert answer["status"] == "eligible-vendor-kernel", answer["summary"]
        assert answer["device"]["kernel_build_id"] == host_build_id
        assert [e["build_id"] for e in answer["evidence"]] == [host_build_id]

    # the same run against a vendor kernel of the same release but another build: refused
    other = {**env, "HARNESS_DATA_HOME": str(tmp_path / "other")}
    _harness("registry", "kernels", "add", "--release", software["kernel_release"],
             "--build-id", "ab" * 20, "--board", f"{board['vendor']}/{board['model']}", env=other)  # fmt: skip
    asked = _harness("registry", "eligible", "--run", str(run.folder), env=other)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith("not-eligible: ")
    assert f"release matches {software['kernel_release']}, build id differs" in asked.stdout
