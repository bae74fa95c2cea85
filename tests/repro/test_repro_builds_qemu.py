"""Bisection over four Debian kernel builds on QEMU boards: the kernel-build case fails from ABI
6.1.0-53 on, and `harness repro --bisect` must name that build as the first bad one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repro.conftest import CASES, REPO

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
BUILDS = [f"linux-image-6.1.0-{abi}-cloud-amd64" for abi in (47, 50, 53, 56)]


def test_bisection_over_four_debian_kernels_finds_the_first_bad_build(tmp_path: Path) -> None:
    results = tmp_path / "results"
    argv = [sys.executable, "-m", "harness", "repro", str(CASES / "kernel-build.yaml"),
            "--board", "qemu-x86_64", "--bisect", "--results", str(results), "--no-submit"]  # fmt: skip
    for build in BUILDS:
        argv += ["--build", build]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert f"first bad build: {BUILDS[2]}" in done.stderr
    reports = [json.loads((p / "report.json").read_text()) for p in results.iterdir()]
    calls = {}
    for report in reports:
        run = report["run"]
        release = run["software"]["kernel_release"]
        assert any(release.startswith(b.removeprefix("linux-image-")) for b in BUILDS), release
        calls[release] = run["verdict"]
        table = report["comparison"]
        assert table["title"] == "Bisection"
    assert calls == {
        "6.1.0-56-cloud-amd64": "reproduced",
        "6.1.0-50-cloud-amd64": "not-reproduced",
        "6.1.0-53-cloud-amd64": "reproduced",
    }, "newest first, then the binary search; 6.1.0-47 is never needed"
    rows = {row[1]: row[3] for row in table["rows"]}
    assert rows == {BUILDS[0]: "not run", BUILDS[1]: "good", BUILDS[2]: "bad", BUILDS[3]: "bad"}
