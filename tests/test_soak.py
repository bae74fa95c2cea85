"""Soak: certification and repro cycles with faults, then the registry reconciled against the run folders exactly.

Short mode (default, in CI): a fixed handful of cycles on the simulated board.
Long mode: `python3 -m pytest tests/test_soak.py --long [--soak-hours 4] [--soak-seed N]`
draws a random cycle kind for hours. Each certification cycle is a real `harness run` of
plans/fault-matrix.yaml that submits to a real registry (`harness registry
serve` on 127.0.0.1), with its fault injected on evidence (the victim's READY
line), exactly as in the fault matrix. At the end, `harness registry sync`
drains the outbox and the registry must hold exactly one run per finished run
folder, with the verdict that folder's run.json states, and nothing else.

Repro cycles run `harness repro` of a case that holds the board mid-iteration
(tests/repro/conftest.py, `holding_case`): SIGKILL there and `--resume`, or a
board fault there; their run folders are reconciled like certification's.
Cycles are entries of `CYCLES` (name -> function); every entry is drawn in
`--long` mode, and `SHORT_PLAN` is the CI set.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.labkey import load_or_create_identity
from harness.registry.store import Store
from harness.vlab.handle import RunningBoard
from tests.registry.conftest import Server
from tests.repro.conftest import holding_case, release_hold, repro_argv, wait_for_hold
from tests.run.conftest import REPO, RunOutput
from tests.run.matrix_helpers import MatrixRun, before_is_intact, resume_matrix


@dataclass
class SoakLab:
    board: RunningBoard
    server: Server
    db_url: str
    results: Path
    env: dict[str, str]
    log: list[str] = field(default_factory=list)

    def next_root(self) -> Path:
        """A results root per cycle, so each cycle's run folder is found unambiguously."""
        root = self.results / f"cycle-{len(self.log):04d}"
        return root

    def registry_env(self) -> dict[str, str]:
        return {**self.env, "HARNESS_REGISTRY_URL": self.server.url}


def _submitted_run(lab: SoakLab, row: str, inject: Callable[[MatrixRun], None] | None) -> RunOutput:
    run = MatrixRun(lab.board, lab.next_root(), row, submit=True, **lab.registry_env())
    if inject is not None:
        run.wait_ready()
        inject(run)
        run.release()  # the fault is in: a victim that waits for it may go on
    output = run.finish()
    assert output.code in (0, 1, 3), output.stderr
    assert "Traceback" not in output.stderr
    return output


def clean_cycle(lab: SoakLab, rng: random.Random) -> None:
    err = _submitted_run(lab, "", None).stderr
    assert "registry: delivered" in err, err


def board_fault_cycle(lab: SoakLab, rng: random.Random) -> None:
    kind = rng.choice(["hang", "panic", "reset", "power-off", "noise"])
    lab.log.append(f"board fault {kind}")
    options = {"bytes": 2048} if kind == "noise" else {}
    output = _submitted_run(lab, kind, lambda run: lab.board.fault(kind, **options))
    assert output.outcomes()["victim"] != "pass", (output.result("victim"), output.stderr)


def sigkill_resume_cycle(lab: SoakLab, rng: random.Random) -> None:
    # The victim blocks on the board until released, so the kill lands inside it on any host.
    run = MatrixRun(lab.board, lab.next_root(), "sigkill", submit=True, **lab.registry_env())
    run.wait_ready()
    run.proc.send_signal(signal.SIGKILL)
    killed = run.finish()
    run.release()
    assert killed.code == -signal.SIGKILL, killed.stderr
    before_is_intact(killed)
    assert killed.outcomes().get("victim") != "pass"
    again = resume_matrix(lab.board, killed, submit=True, **lab.registry_env())
    assert again.code == 0, again.stderr
    assert "registry: delivered" in again.stderr


def registry_down_cycle(lab: SoakLab, rng: random.Random) -> None:
    """The registry is stopped for a whole run; the run is queued and delivered by sync later."""
    lab.server.stop()
    try:
        err = _submitted_run(lab, "", None).stderr
        assert "registry: queued" in err, err
    finally:
        lab.server.start()


def _repro(lab: SoakLab, case: Path, root: Path, *extra: str) -> subprocess.Popen[str]:
    """`harness repro` of a holding case (tests/repro/conftest.py) delivering to the registry."""
    return subprocess.Popen(
        repro_argv(lab.board, case, root, "--repeat", "4", *extra),
        cwd=REPO, env=lab.registry_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _repro_finished(proc: subprocess.Popen[str]) -> str:
    try:
        _, err = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"harness repro still running after 900 s\n{err}")
    assert proc.returncode in (0, 1), err
    assert "Traceback" not in err and "registry: delivered" in err, err
    return err


def _case_folder(root: Path) -> Path:
    folder = root.parent / f"{root.name}-case"
    folder.mkdir(parents=True)
    return folder


def repro_sigkill_resume_cycle(lab: SoakLab, rng: random.Random) -> None:
    """`harness repro` killed in the middle of an iteration, resumed, then delivered once."""
    root = lab.next_root()
    root.mkdir(parents=True)
    case = holding_case(_case_folder(root))
    mark = lab.board.console_mark()
    proc = _repro(lab, case.path, root)
    wait_for_hold(lab.board, proc, mark)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    (folder,) = list(root.iterdir())
    assert len((folder / "results.jsonl").read_text().splitlines()) == 2
    release_hold(lab.board, case, mark)
    _repro_finished(_repro(lab, case.path, root, "--resume", folder.name))


def repro_board_fault_cycle(lab: SoakLab, rng: random.Random) -> None:
    """A board fault strikes `harness repro` mid-iteration; the run ends and is delivered."""
    kind = rng.choice(["hang", "panic", "reset", "power-off", "noise"])
    lab.log.append(f"repro board fault {kind}")
    root = lab.next_root()
    root.mkdir(parents=True)
    case = holding_case(_case_folder(root), timeout=45)
    mark = lab.board.console_mark()
    proc = _repro(lab, case.path, root)
    wait_for_hold(lab.board, proc, mark)
    lab.board.fault(kind, **({"bytes": 2048} if kind == "noise" else {}))
    _repro_finished(proc)


CYCLES: dict[str, Callable[[SoakLab, random.Random], None]] = {
    "clean": clean_cycle,
    "board-fault": board_fault_cycle,
    "sigkill-resume": sigkill_resume_cycle,
    "registry-down": registry_down_cycle,
    "repro-sigkill-resume": repro_sigkill_resume_cycle,
    "repro-board-fault": repro_board_fault_cycle,
}
SHORT_PLAN = ["clean", "board-fault", "sigkill-resume", "registry-down", "repro-sigkill-resume"]
LONG_KINDS = list(CYCLES)


def reconcile(lab: SoakLab) -> int:
    """Drain the outbox, then registry runs == finished run folders, verdicts equal, once each."""
    synced = subprocess.run(
        [sys.executable, "-m", "harness", "registry", "sync"],
        capture_output=True, text=True, cwd=REPO, env=lab.registry_env(), timeout=600,
    )  # fmt: skip
    assert synced.returncode == 0, synced.stdout + synced.stderr
    folders = {}
    for folder in sorted(lab.results.glob("cycle-*/*")):
        if not (folder / "run.json").is_file():
            continue
        run = json.loads((folder / "run.json").read_text())
        assert run["status"] == "finished", f"{folder.name} was never completed"
        folders[folder.name] = run["verdict"]
    store = Store(lab.db_url)
    try:
        held = store.list_runs()
    finally:
        store.close()
    ids = [row["run_id"] for row in held]
    assert len(ids) == len(set(ids)), "a run is held twice"
    assert {row["run_id"]: row["verdict"] for row in held} == folders
    return len(folders)


@pytest.fixture
def soak_lab(tmp_path: Path, vlab_dir: Path, sim_board: RunningBoard) -> Iterator[SoakLab]:
    data_home = tmp_path / "lab-home"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HARNESS_DATA_HOME": str(data_home),
        "HARNESS_LAB_NAME": "lab-soak",
    }
    old = {name: os.environ.get(name) for name in ("HARNESS_DATA_HOME", "HARNESS_LAB_NAME")}
    os.environ.update(HARNESS_DATA_HOME=str(data_home), HARNESS_LAB_NAME="lab-soak")
    try:
        identity = load_or_create_identity()
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    db_url = f"sqlite:///{tmp_path / 'registry.db'}"
    store = Store(db_url)
    token = store.add_lab(identity.name, identity.public_key_text)
    store.close()
    env["HARNESS_REGISTRY_TOKEN"] = token
    server_env = {**os.environ, "HARNESS_DATA_HOME": str(tmp_path / "server-home")}
    server = Server(db_url, server_env, tmp_path / "server.log").start()
    try:
        yield SoakLab(sim_board, server, db_url, tmp_path / "results", env)
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.timeout(
    2400
)  # a bound for a hang: the five short cycles took 4.5 min on a loaded host
def test_soak_cycles_with_faults_reconcile_exactly_with_the_registry(
    soak_lab: SoakLab, request: pytest.FixtureRequest
) -> None:
    long = request.config.getoption("--long")
    seed = request.config.getoption("--soak-seed")
    rng = random.Random(seed)
    if long:
        hours = request.config.getoption("--soak-hours")
        deadline = time.monotonic() + hours * 3600
        plan: Iterator[str] = iter(lambda: rng.choice(LONG_KINDS), None)  # type: ignore[arg-type]
    else:
        deadline = float("inf")
        plan = iter(SHORT_PLAN)
    done: list[str] = []
    for kind in plan:
        if time.monotonic() > deadline:
            break
        soak_lab.log.append(kind)
        CYCLES[kind](soak_lab, rng)
        done.append(kind)
    count = reconcile(soak_lab)
    print(f"\nsoak: {len(done)} cycles (seed {seed}): {soak_lab.log}; {count} runs reconciled")
    assert count >= len(done)
