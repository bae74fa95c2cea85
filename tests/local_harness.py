"""`harness ...` as a user on a fresh machine runs it: a registry of the test's own.

The subprocess gets its own HARNESS_DATA_HOME under the test's tmp_path and no registry URL or
database from the environment, so it feeds the local SQLite registry as the README's main
command does, and never a registry another test (or the developer's machine) set up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def local_harness(
    tmp_path: Path, *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HARNESS_DATA_HOME=str(tmp_path / "data"))
    env.pop("HARNESS_REGISTRY_URL", None)
    env.pop("HARNESS_REGISTRY_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
    )
