"""Helpers for run-engine tests: call the real `harness run` command and read the run folder it left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PLANS = Path(__file__).parent / "plans"
SCHEMAS = REPO / "harness" / "report" / "schemas"


@dataclass
class RunOutput:
    code: int
    stdout: str
    stderr: str
    results_root: Path

    @property
    def folder(self) -> Path:
        folders = [
            p for p in self.results_root.iterdir() if p.is_dir() and not p.name.startswith(".")
        ]
        assert len(folders) == 1, f"expected one run folder, found {folders}\n{self.stderr}"
        return folders[0]

    def run_json(self) -> dict[str, Any]:
        return json.loads((self.folder / "run.json").read_text())

    def lines(self) -> list[dict[str, Any]]:
        return [
            json.loads(line) for line in (self.folder / "results.jsonl").read_text().splitlines()
        ]

    def outcomes(self) -> dict[str, str]:
        """Last line per test id, as the run folder contract says."""
        return {record["id"]: record["outcome"] for record in self.lines()}

    def result(self, test_id: str) -> dict[str, Any]:
        return [record for record in self.lines() if record["id"] == test_id][-1]


def harness_run_argv(
    board: Any, plan: str | Path, results_root: Path, *extra: str, submit: bool = False
) -> list[str]:
    """The command line of `harness run` on a running virtual board (its env file)."""
    plan_path = plan if isinstance(plan, Path) else PLANS / plan
    argv = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--board",
        str(board.profile.source),
        "--plan",
        str(plan_path),
        "--env",
        str(board.env_file),
        "--results",
        str(results_root),
        "--plain",
        *extra,
    ]
    return argv if submit else [*argv, "--no-submit"]


def harness_run(
    board: Any,
    plan: str | Path,
    results_root: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    submit: bool = False,
) -> RunOutput:
    """`harness run` as a user types it, against a running virtual board (its env file)."""
    argv = harness_run_argv(board, plan, results_root, *extra, submit=submit)
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    return RunOutput(done.returncode, done.stdout, done.stderr, results_root)


def fault_env(board: Any, **more: str) -> dict[str, str]:
    """What the fault-injecting python steps need to find the board in the virtual lab."""
    return {
        "HARNESS_LAB_DIR": str(Path(board.state().state_dir).parent),
        "HARNESS_TEST_BOARD": board.name,
        **more,
    }


@pytest.fixture
def results_root(tmp_path: Path) -> Path:
    return tmp_path / "results"


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())
