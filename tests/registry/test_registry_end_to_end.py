"""`harness run` to eligibility answer: a real run folder, bundled, signed and delivered by the run engine.

The sim board is the fast path; the same pipeline is shown on a QEMU board.
A small plan of blocker tests that a healthy board passes is used so that the
run is certified and a certificate must appear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.labkey import load_or_create_identity
from harness.registry.eligibility import Device
from harness.registry.store import Store
from harness.report.bundle_read import iter_run_files, verify_bundle

REPO = Path(__file__).resolve().parents[2]

MINI_PLAN = """\
schema: 1
kind: plan
id: registry-e2e
version: "0.1"
title: Identity checks for the registry end-to-end test
defaults: {blocker: true, timeout: 60, transport: console}
tests:
  - id: console-login
    title: Root shell on the serial console
    category: console
    steps:
      - run: id -u
        expect: {stdout: ['^0$']}
  - id: software-identity
    title: Kernel and OS identify themselves
    category: identity
    steps:
      - run: uname -r; cat /etc/os-release
        expect: {stdout: ['^\\d+\\.\\d+', '^(PRETTY_)?NAME=']}
"""


def run_and_check_registry(board: str, tmp_path: Path, data_home: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(MINI_PLAN)
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--board", board, "--plan", str(plan), "--results", str(results), "--plain"],
        capture_output=True, text=True, env=dict(os.environ), cwd=REPO, timeout=900,
    )  # fmt: skip
    assert "registry: delivered" in done.stderr, done.stderr[-3000:]
    (folder,) = [p for p in results.iterdir() if (p / "run.json").is_file()]
    run = json.loads((folder / "run.json").read_text())
    assert run["verdict"] == "certified", done.stderr[-3000:]

    store = Store(f"sqlite:///{data_home / 'registry.db'}")
    try:
        bundle = store.get_bundle(run["run_id"])
        report = verify_bundle(bundle, trusted_key=load_or_create_identity().public_key_text)
        assert report.ok, report.problems
        packed = {name: stream.read() for name, stream in iter_run_files(bundle)}
        on_disk = {
            path.relative_to(folder).as_posix(): path.read_bytes()
            for path in folder.rglob("*")
            if path.is_file()
        }
        # the registry holds exactly the folder as it was when the run finished: every file,
        # byte for byte; only the delivery status is written beside it afterwards
        assert json.loads(on_disk.pop("submission.json"))["status"] == "delivered"
        assert sorted(packed) == sorted(on_disk)
        assert {"run.json", "results.jsonl", "console.log", "junit.xml", "inventory.json"} <= set(
            packed
        )
        for name, content in on_disk.items():
            assert packed[name] == content, f"{name} differs from the bundle the registry holds"
        software, identity = run["software"], run["board"]
        (cert,) = store.list_certificates()
        assert (cert["run_id"], cert["kernel_release"], cert["os_release"]) == (
            run["run_id"], software["kernel_release"], software["os_release"],
        )  # fmt: skip
        device = Device(
            identity["vendor"],
            identity["model"],
            identity["revision"],
            software["os_release"],
            software["kernel_release"],
        )
        answer = store.eligibility(device)
        assert answer.status.value == "eligible-certified"
        assert [e["run_id"] for e in answer.evidence] == [run["run_id"]]
    finally:
        store.close()


def test_sim_board_run_is_certified_in_the_local_registry(tmp_path: Path, data_home: Path) -> None:
    run_and_check_registry("sim", tmp_path, data_home)


@pytest.mark.qemu
def test_qemu_board_run_is_certified_in_the_local_registry(tmp_path: Path, data_home: Path) -> None:
    run_and_check_registry("qemu-x86_64", tmp_path, data_home)
