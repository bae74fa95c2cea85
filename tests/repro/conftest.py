"""Helpers for repro tests: run the real `harness repro` against a running virtual board and read
the run folder it leaves; write variants of the example cases."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.model.case_records import CaseRunRecord, IterationRecord
from harness.vlab.fixtures import wait_for_console

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "testplans" / "cases"


@dataclass
class ReproOutput:
    code: int
    stderr: str
    folder: Path | None

    def run_json(self) -> CaseRunRecord:
        assert self.folder is not None, self.stderr
        return CaseRunRecord.model_validate_json((self.folder / "run.json").read_text())

    def iterations(self) -> list[IterationRecord]:
        assert self.folder is not None, self.stderr
        lines = (self.folder / "results.jsonl").read_text().splitlines()
        return [IterationRecord.model_validate_json(line) for line in lines]


def repro_argv(board: Any, case: Path, results_root: Path, *extra: str) -> list[str]:
    """The command line of `harness repro` on a running virtual board."""
    return [
        sys.executable, "-m", "harness", "repro", str(case),
        "--board", str(board.profile.source), "--env", str(board.env_file),
        "--results", str(results_root), *extra,
    ]  # fmt: skip


def harness_repro(
    board: Any,
    case: Path,
    results_root: Path,
    *extra: str,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> ReproOutput:
    """`harness repro CASE --board B --env ENV` as a user types it."""
    before = set(results_root.iterdir()) if results_root.exists() else set()
    done = subprocess.run(
        repro_argv(board, case, results_root, *extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    after = set(results_root.iterdir()) if results_root.exists() else set()
    new = sorted(p for p in after - before if (p / "run.json").is_file())
    folder = new[-1] if new else None
    if folder is None and "--resume" in extra:
        folder = results_root / extra[extra.index("--resume") + 1]
    return ReproOutput(done.returncode, done.stderr, folder)


def seeded_intermittent(folder: Path, seed: int, case_id: str = "demo-intermittent") -> Path:
    """The intermittent case with a seeded board-side generator instead of /dev/urandom.

    The rate is still 30% (a 31-bit LCG's bits 16.. taken modulo 10), but a fixed seed makes
    the sequence of outcomes fixed, so a statistics test gives the same answer every time
    instead of failing in the few percent of cases its own confidence level allows.
    """
    state = f"/tmp/lcg-{case_id}-{seed}"
    text = f"""
kind: case
case: {{id: {case_id}, customer_ref: ACME-1003, severity: 2, subsystem: storage}}
description: {{summary: write test fails now and then with EIO}}
seen_on: {{vendor: Harness Virtual Lab, model: "SIM (simulated, not hardware)", revision: "1"}}
setup:
  - run: '[ -f {state} ] || echo {seed} > {state}'
trigger:
  - run: |
      s=$(cat {state}); s=$(( (s * 1103515245 + 12345) % 2147483648 )); echo $s > {state}
      if [ $(( (s / 65536) % 10 )) -lt 3 ]; then echo "write: Input/output error"; exit 5; fi
      echo "write ok"
    expect: {{exit_status: null}}
signature: {{exit_status: 5, output: ['Input/output error'], match: all}}
settings: {{iterations: 40}}
"""
    path = folder / f"intermittent-{seed}.yaml"
    path.write_text(text)
    return path


def fixed_variant(folder: Path, case_id: str = "demo-intermittent") -> Path:
    """The same case after the fix: the trigger never fails."""
    text = f"""
kind: case
case: {{id: {case_id}, customer_ref: ACME-1003, severity: 2, subsystem: storage}}
description: {{summary: write test fails now and then with EIO (fixed build)}}
seen_on: {{vendor: Harness Virtual Lab, model: "SIM (simulated, not hardware)", revision: "1"}}
trigger:
  - run: echo "write ok"
signature: {{exit_status: 5, output: ['Input/output error'], match: all}}
"""
    path = folder / "fixed.yaml"
    path.write_text(text)
    return path


HOLD = "HOLD-42"  # printed by the board as HOLD-$((40+2)): the typed command never matches it
HOLD_WAIT = 180.0  # bounds a hang only


def holding_case(folder: Path, setup_check: str = "true", timeout: float = 120) -> Path:
    """A case whose board-side counter makes every even trigger reproduce; the third trigger
    prints HOLD-42 and then blocks for longer than any wait for the kill, so a test can kill
    the harness in the middle of it."""
    counter = f"/tmp/repro-count-{secrets.token_hex(6)}"
    path = folder / "counting.yaml"
    path.write_text(f"""
kind: case
case: {{id: demo-counting, customer_ref: ACME-2001, severity: 3, subsystem: userspace}}
description: {{summary: every second run of the tool reports an error state}}
seen_on: {{vendor: Harness Virtual Lab, model: "SIM (simulated, not hardware)", revision: "1"}}
setup:
  - run: 'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n + 1)) > {counter}'
  - run: '{setup_check.replace("COUNTER", counter)}'
trigger:
  - run: |
      n=$(cat {counter}); echo "trigger $n"
      if [ "$n" = 3 ]; then echo "HOLD-$((40 + 2))"; sleep 30; fi
      if [ $((n % 2)) = 0 ]; then echo "status: ERROR state"; fi
signature: {{output: ['ERROR state']}}
settings: {{iterations: 5, timeout: {timeout:g}}}
""")
    return path


def wait_for_hold(board: Any, proc: subprocess.Popen[str], since: int) -> None:
    """Wait until the board printed HOLD-42 after console byte `since` (a holding case's third
    trigger is running); fails if `harness repro` ended first."""
    deadline = time.monotonic() + HOLD_WAIT
    while True:
        try:
            wait_for_console(board, HOLD, 2.0, since=since)
            return
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate()
                pytest.fail(f"no {HOLD} on the console (harness repro exit {proc.poll()}): {err}")


@pytest.fixture
def results_root(tmp_path: Path) -> Path:
    return tmp_path / "results"


def report_json(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text())
