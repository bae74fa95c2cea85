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
from tests.run.resume_helpers import on_board

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
RELEASED = "hold-released"  # printed by the board (printf) once the hold ends
HOLD_WAIT = 180.0  # bounds a hang only

# The third trigger's hold, by kind:
# - "block": waits until the test creates the release file (or the harness presses Ctrl-C),
#   so a kill or fault aimed at it lands inside it however slow the host is;
# - "freeze": the board stops every one of its processes itself, right after HOLD-42 and
#   before the trigger can end, as a hang caused by the customer's bug would: only shell
#   builtins run between reading the line and the freeze, so no Ctrl-C can pre-empt it, and
#   whenever the case timeout fires the board is already silent. `kill -1` reaches only the
#   board's own processes (the kernel confines it to the caller's PID namespace) and never
#   its PID 1; the lab's power cycle ends them all.
_HOLDS = {
    "block": "until [ -e {release} ]; do sleep 0.1 || break; done; printf '%s-%s\\n' hold released",
    "freeze": "kill -s STOP -1; kill -s STOP $$",
}


@dataclass
class HoldingCase:
    path: Path  # the case file
    release: str  # the board-side file that ends a blocking hold


def holding_case(
    folder: Path, setup_check: str = "true", timeout: float = 120, hold: str = "block"
) -> HoldingCase:
    """A case whose board-side counter makes every even trigger reproduce; the third trigger
    prints HOLD-42 and then holds (see `_HOLDS`), so a test can kill the harness or fault the
    board in the middle of it without betting on how long that takes."""
    token = secrets.token_hex(6)
    counter = f"/tmp/repro-count-{token}"
    release = f"/tmp/repro-release-{token}"
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
      read -r n < {counter}; echo "trigger $n"
      if [ "$n" = 3 ]; then echo "HOLD-$((40 + 2))"; {_HOLDS[hold].format(release=release)}; fi
      if [ $((n % 2)) = 0 ]; then echo "status: ERROR state"; fi
signature: {{output: ['ERROR state']}}
settings: {{iterations: 5, timeout: {timeout:g}}}
""")
    return HoldingCase(path, release)


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


def release_hold(board: Any, case: HoldingCase, since: int) -> None:
    """End a blocking hold (over SSH: the console is busy with it) and wait until the board
    printed that it ended (after console byte `since`): the trigger has finished and the
    console shell reads input again."""
    on_board(board, f"touch {case.release}")
    wait_for_console(board, RELEASED, HOLD_WAIT, since=since)


@pytest.fixture
def results_root(tmp_path: Path) -> Path:
    return tmp_path / "results"


def report_json(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text())
