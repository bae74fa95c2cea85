"""`python3 -m bench --quick` runs every benchmark on tiny inputs and proves each still works.

Speed is never asserted here (a shared CI host makes it noise): what the quick run checks is
correctness, inside each row (commands answered with the right output, captured and copied
bytes equal to the board's sha256, every submission stored exactly once, every place run
passed), and this test checks that every row of the table ran and reported those checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import ROWS

REPO = Path(__file__).resolve().parents[2]
GUARD = 900  # a bound for a hang only; the quick run takes about two minutes on 2 cores


def _bench(out: Path, home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=GUARD,
        env={**os.environ, "HARNESS_DATA_HOME": str(home)},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out.read_text()


@pytest.mark.postgres
@pytest.mark.slow
def test_quick_benchmark_runs_every_row_and_every_correctness_check_holds(tmp_path: Path) -> None:
    out, home = tmp_path / "RESULTS.md", tmp_path / "home"
    table = _bench(out, home)
    assert "**failed**" not in table and "**Failed:**" not in table, table
    titles = [__import__(f"bench.{name}", fromlist=["TITLE"]).TITLE for name in ROWS]
    for title in titles:
        section = table.split(f"## {title}\n", 1)
        assert len(section) == 2, f"row {title!r} missing from the table"
        body = section[1].split("\n## ", 1)[0]
        assert "Correctness: " in body, f"row {title!r} reported no correctness check"
    assert "0 bytes lost" in table
    assert "0 lost, 0 duplicated" in table
    assert "| run | date | git revision | load average (1/5/15 min) |" in table
    assert "| rows not run | none |" in table

    # --merge re-measures the rows named and keeps every other row with the run that measured it.
    before = json.loads(out.with_suffix(".json").read_text())
    table = _bench(out, home, "--only", "vlab", "--merge")
    after = json.loads(out.with_suffix(".json").read_text())
    assert [row["key"] for row in after["rows"]] == ROWS
    assert after["rows"][:-1] == before["rows"][:-1]
    assert after["rows"][-1]["run"] == 1 and after["runs"][1]["rows"] == ["vlab"]
    assert "(rows of several runs, kept with `--merge`)" in table
    assert "| rows not run | none |" in table
    assert "Measured by run 2." in table.split(f"## {titles[-1]}")[1]
    # A full run never merges into a --quick table: a clear error, exit 2, nothing measured.
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "vlab", "--merge", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=GUARD,
    )
    assert done.returncode == 2 and "--quick and full never mix" in done.stderr
