"""The README's fast subset (`-m 'not qemu'`) needs no QEMU and no built lab.

The image-building and QEMU-booting tests carry the `qemu` marker (tests/conftest.py refuses a
suite where a test using the QEMU fixtures does not); this runs the README's command, as a
collection, on an empty lab cache.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Files whose every test boots QEMU or reads the built images.
QEMU_FILES = {
    "tests/farm/test_farm_qemu.py",
    "tests/lab/test_qemu_uboot.py",
    "tests/lab/test_qemu_x86.py",
    "tests/run/test_run_qemu.py",
    "tests/vlab/test_bench_qemu.py",
    "tests/vlab/test_boot_command.py",
    "tests/vlab/test_boot_qemu.py",
    "tests/vlab/test_faults_qemu.py",
}


def _readme_fast_command() -> list[str]:
    lines = [
        line.strip() for line in (REPO / "README.md").read_text().splitlines() if "not qemu" in line
    ]
    assert lines, "the README shows how to run the fast subset"
    return shlex.split(lines[0])


def test_readme_fast_subset_collects_no_qemu_test_and_builds_nothing(tmp_path: Path) -> None:
    command = _readme_fast_command()
    assert command == ["python3", "-m", "pytest", "-m", "not qemu"]
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    done = subprocess.run(
        [sys.executable, *command[1:], "--collect-only", "-q"],
        cwd=REPO,
        env={**os.environ, "HARNESS_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    files = {line.split("::")[0] for line in done.stdout.splitlines() if "::" in line}
    assert "tests/lab/test_board_sim.py" in files  # the fast suite is not empty
    assert files & QEMU_FILES == set()
    # Of the build tests, only those that fail before building (bad input, missing package).
    build_tests = {
        line.split("::")[1]
        for line in done.stdout.splitlines()
        if line.startswith("tests/vlab/test_build.py::")
    }
    assert build_tests == {
        "test_missing_package_is_reported_with_its_name_and_apts_message",
        "test_missing_package_from_the_command_line_exits_3_with_one_paragraph",
        "test_malformed_package_option_and_unknown_role_are_user_errors",
    }
    assert list(cache.iterdir()) == []  # nothing downloaded or built
