"""Bundle fixtures: a scratch lab identity and run folders shaped like the run engine's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.registry.runfolder import make_run_folder


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "harness-home"
    monkeypatch.setenv("HARNESS_DATA_HOME", str(home))
    monkeypatch.setenv("HARNESS_LAB_NAME", "bundle-lab")
    return home


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    return make_run_folder(tmp_path / "results", "2026-11-28T07-00-00Z-qemu-x86_64")


@pytest.fixture
def harness_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the real `harness` command in a child process with this test's environment."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness", *args],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=60,
        )

    return run
