"""The end of a run hands it to the registry; a registry that is down never changes the verdict."""

from __future__ import annotations

import json
from pathlib import Path

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
