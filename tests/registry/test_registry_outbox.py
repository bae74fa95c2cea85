"""The client's outbox: a registry killed mid-way loses nothing, and `sync` delivers exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.registry.client import pending, submit_run
from harness.registry.config import outbox_dir
from harness.registry.store import Store
from tests.registry.runfolder import make_run_folder

RUNS = 16
# A bound for a hang only: a loaded host submits slowly, but not this slowly.
GUARD = 300.0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )


def test_registry_killed_mid_way_then_sync_delivers_everything_once(
    db_url,
    store: Store,
    lab_identity,
    start_server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.add_lab(lab_identity.name, lab_identity.public_key_text)
    token = store.create_token("lab", "ci", lab=lab_identity.name)
    folders = [
        make_run_folder(tmp_path / "results", f"kill-run-{i:02d}", verdict="certified")
        for i in range(RUNS)
    ]
    server = start_server(db_url)
    monkeypatch.setenv("HARNESS_REGISTRY_URL", server.url)
    monkeypatch.setenv("HARNESS_REGISTRY_TOKEN", token)

    # The lab submits a third of its runs, then the registry is SIGKILLed, then the lab goes on
    # submitting: the order is fixed by events, not by how threads happen to be scheduled.
    outcomes: list[str] = []
    errors: list[BaseException] = []
    some_delivered = threading.Event()
    registry_killed = threading.Event()

    def lab_engine() -> None:
        try:
            for index, folder in enumerate(folders):
                if index == RUNS // 3:
                    some_delivered.set()
                    if not registry_killed.wait(GUARD):
                        raise TimeoutError("the registry was never killed")
                outcomes.append(submit_run(folder))
        except BaseException as exc:
            errors.append(exc)
        finally:
            some_delivered.set()

    worker = threading.Thread(target=lab_engine, daemon=True)
    worker.start()
    assert some_delivered.wait(GUARD), "the lab never submitted its first runs"
    assert not errors, errors
    server.kill()  # SIGKILL while the lab is still submitting
    registry_killed.set()
    worker.join(GUARD)
    assert not worker.is_alive(), "the lab's submissions never finished"
    assert not errors, errors

    first = RUNS // 3
    assert outcomes == ["delivered"] * first + ["queued"] * (RUNS - first)
    # nothing is lost: every run is either stored or waiting in the outbox
    queued = sorted(run_id for run_id, _ in pending())
    assert queued == [f"kill-run-{i:02d}" for i in range(first, RUNS)]
    assert sorted(r["run_id"] for r in store.list_runs()) == [
        f"kill-run-{i:02d}" for i in range(first)
    ]

    down = _cli("registry", "sync")
    assert down.returncode == 3
    assert "still queued" in down.stderr and "unreachable" in down.stderr
    assert sorted(run_id for run_id, _ in pending()) == queued

    restarted = start_server(db_url)  # on a new port: the lab's configuration points there now
    monkeypatch.setenv("HARNESS_REGISTRY_URL", restarted.url)
    up = _cli("registry", "sync")
    assert up.returncode == 0, up.stderr
    assert f"{len(queued)} delivered, 0 still queued" in up.stdout
    assert pending() == []
    runs = [r["run_id"] for r in store.list_runs()]
    assert sorted(runs) == [f"kill-run-{i:02d}" for i in range(RUNS)]
    assert len(store.list_certificates()) == RUNS

    again = _cli("registry", "sync")
    assert again.returncode == 0 and "0 delivered, 0 still queued" in again.stdout


def test_local_registry_is_the_default_and_needs_no_setup(tmp_path: Path, data_home: Path) -> None:
    folder = make_run_folder(tmp_path / "results", "local-1")
    assert submit_run(folder) == "delivered"
    assert submit_run(folder) == "delivered"  # resubmitting a finished run is harmless
    local = Store(f"sqlite:///{data_home / 'registry.db'}")
    try:
        assert [r["run_id"] for r in local.list_runs()] == ["local-1"]
        assert [lab["name"] for lab in local.list_labs()] == ["lab-one"]
        assert local.list_certificates()[0]["lab"] == "lab-one"
    finally:
        local.close()
    assert (data_home / "lab" / "lab_ed25519").stat().st_mode & 0o777 == 0o600
    assert pending() == []


def test_unreachable_registry_queues_and_run_id_cannot_escape_the_outbox(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(
        "HARNESS_REGISTRY_URL", "http://127.0.0.1:9"
    )  # discard port: nothing listens
    monkeypatch.setenv("HARNESS_REGISTRY_TOKEN", "x")
    folder = make_run_folder(tmp_path / "results", "../../escape/../run")
    assert submit_run(folder) == "queued"
    entries = list(outbox_dir().iterdir())
    assert all(p.parent == outbox_dir() for p in entries)
    assert [run_id for run_id, _ in pending()] == ["../../escape/../run"]
    assert "unreachable" in next(p for p in entries if p.suffix == ".error").read_text()
