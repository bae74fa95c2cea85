"""Helpers for `harness board discover` tests: the command as a user types it, and the
checks and runs a drafted profile must pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "testplans" / "smoke.yaml"
PRECERT = REPO / "testplans" / "precert.yaml"


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str


def harness(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> Done:
    """`harness ARGS` in a subprocess (niced: the suite shares a small machine)."""
    done = subprocess.run(
        ["nice", "-n", "10", sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    return Done(done.returncode, done.stdout, done.stderr)


def draft_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def run_verdict(profile: Path, plan: Path, results: Path, *extra: str) -> tuple[Done, dict]:
    """`harness run --board PROFILE --plan PLAN` with no --env: the profile's own lab."""
    done = harness(
        "run", "--board", str(profile), "--plan", str(plan), "--results", str(results),
        "--no-submit", "--plain", *extra, cwd=profile.parent,
    )  # fmt: skip
    folders = [p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")]
    newest = max(folders, key=lambda p: p.stat().st_mtime)
    meta = json.loads((newest / "run.json").read_text())
    meta["_folder"] = str(newest)
    return done, meta


def results_of(meta: dict) -> list[dict]:
    """The run's results (last line per test id), from the folder run_verdict read."""
    lines = (Path(meta["_folder"]) / "results.jsonl").read_text().splitlines()
    return list({r["id"]: r for r in map(json.loads, lines)}.values())
