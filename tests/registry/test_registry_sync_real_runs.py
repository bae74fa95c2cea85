"""`harness registry sync --results` drains, on run folders made by a real `harness run`.

The four ways a finished run can be left on a lab machine, each made by the run
engine itself on the simulated board: delivered at the end of the run; queued
because the registry was down; killed (SIGKILL) between finishing and
delivering; made with --no-submit. One sync delivers every undelivered run
exactly once, never resends a delivered one (that used to be refused as "already
stored with a different bundle" forever), and records the delivery in each run
folder's submission.json.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness.labkey import load_or_create_identity
from harness.registry.client import pending
from harness.registry.config import outbox_dir
from harness.registry.store import Store
from tests.run.conftest import REPO, harness_run, harness_run_argv

PLAN = "all-pass.yaml"


def _sync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "registry", "sync", *args],
        capture_output=True, text=True, env=dict(os.environ), timeout=300,
    )  # fmt: skip


def _submission(folder: Path) -> str | None:
    path = folder / "submission.json"
    return json.loads(path.read_text())["status"] if path.is_file() else None


def _new_folder(results: Path, known: set[Path]) -> Path:
    (folder,) = {p for p in results.iterdir() if (p / "run.json").is_file()} - known
    known.add(folder)
    return folder


def _killed_while_delivering(sim_board, results: Path, black_hole: str) -> None:
    """Run to the end, then SIGKILL the harness while it waits on a registry that never answers."""
    env = {**os.environ, "HARNESS_REGISTRY_URL": black_hole}
    before = set(outbox_dir().glob("*.source"))
    proc = subprocess.Popen(
        harness_run_argv(sim_board, PLAN, results, submit=True),
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300  # a bound for a hang, not an expected duration
        # the outbox entry's .source file is written after the bundle, right before delivery
        while not set(outbox_dir().glob("*.source")) - before:
            assert proc.poll() is None, "harness ended before it tried to deliver"
            assert time.monotonic() < deadline, "harness never reached delivery"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_sync_delivers_every_undelivered_real_run_once_and_records_it(
    sim_board, tmp_path: Path, start_server, monkeypatch
) -> None:
    db_url = f"sqlite:///{tmp_path / 'registry.db'}"
    store = Store(db_url)
    identity = load_or_create_identity()
    token = store.add_lab(identity.name, identity.public_key_text)
    server = start_server(db_url)
    monkeypatch.setenv("HARNESS_REGISTRY_TOKEN", token)
    results = tmp_path / "results"
    known: set[Path] = set()

    up = harness_run(
        sim_board, PLAN, results, env={"HARNESS_REGISTRY_URL": server.url}, submit=True
    )
    assert up.code == 0, up.stderr[-2000:]
    delivered_at_run = _new_folder(results, known)
    assert _submission(delivered_at_run) == "delivered"

    down = harness_run(
        sim_board, PLAN, results, env={"HARNESS_REGISTRY_URL": "http://127.0.0.1:9"}, submit=True
    )
    assert down.code == 0, down.stderr[-2000:]
    queued = _new_folder(results, known)
    assert _submission(queued) == "queued"

    with socket.socket() as hole:  # accepts connections into its backlog, never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        _killed_while_delivering(sim_board, results, f"http://127.0.0.1:{hole.getsockname()[1]}")
    killed = _new_folder(results, known)
    assert json.loads((killed / "run.json").read_text())["status"] == "finished"
    assert _submission(killed) is None, "the kill came after the delivery was recorded"

    not_submitted = harness_run(sim_board, PLAN, results)  # --no-submit
    assert not_submitted.code == 0, not_submitted.stderr[-2000:]
    skipped = _new_folder(results, known)
    assert _submission(skipped) is None

    monkeypatch.setenv("HARNESS_REGISTRY_URL", server.url)
    done = _sync("--results", str(results))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 delivered, 0 still queued" in done.stdout
    for folder in (queued, killed, skipped):
        assert f"delivered: {folder.name}" in done.stdout
    assert delivered_at_run.name not in done.stdout  # never resent
    assert {_submission(f) for f in known} == {"delivered"}
    assert pending() == []
    stored = sorted(r["run_id"] for r in store.list_runs())
    assert stored == sorted(f.name for f in known)

    again = _sync("--results", str(results))
    assert again.returncode == 0 and "0 delivered, 0 still queued" in again.stdout
    store.close()


def test_plain_sync_records_the_delivery_in_the_queued_run_folder(
    sim_board, tmp_path: Path, start_server, monkeypatch
) -> None:
    """Without --results, the outbox entry still knows its run folder and updates submission.json."""
    db_url = f"sqlite:///{tmp_path / 'registry.db'}"
    store = Store(db_url)
    identity = load_or_create_identity()
    monkeypatch.setenv(
        "HARNESS_REGISTRY_TOKEN", store.add_lab(identity.name, identity.public_key_text)
    )
    results = tmp_path / "results"
    run = harness_run(
        sim_board, PLAN, results, env={"HARNESS_REGISTRY_URL": "http://127.0.0.1:9"}, submit=True
    )
    assert run.code == 0, run.stderr[-2000:]
    assert _submission(run.folder) == "queued"
    monkeypatch.setenv("HARNESS_REGISTRY_URL", start_server(db_url).url)
    done = _sync()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"delivered: {run.folder.name}" in done.stdout
    assert _submission(run.folder) == "delivered"
    store.close()
