"""A/B and bisection over Debian kernel builds on QEMU boards: the kernel-build case fails from
ABI 6.1.0-53 on. A/B of 6.1.0-50 against 6.1.0-53 must report both rates and Fisher's p-value
(and show the table in each run's report, in headless Chromium); `harness repro --bisect` over
four builds must name 6.1.0-53 as the first bad one. Each build is a fresh QEMU boot, so these
are the slowest repro tests; the case's 5 iterations per build cost seconds next to a boot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.repro import stats
from tests.registry.test_registry_web_page import browser  # noqa: F401 - fixture
from tests.repro.conftest import CASES, REPO

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
BUILDS = [f"linux-image-6.1.0-{abi}-cloud-amd64" for abi in (47, 50, 53, 56)]


def _repro_over_builds(
    tmp_path: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    results = tmp_path / "results"
    argv = [sys.executable, "-m", "harness", "repro", str(CASES / "kernel-build.yaml"),
            "--board", "qemu-x86_64", "--results", str(results), "--no-submit", *options]  # fmt: skip
    env = {**os.environ, "HARNESS_LAB_DIR": str(tmp_path / "lab")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, cwd=REPO, env=env)
    return done, results


@pytest.mark.browser
def test_ab_over_two_debian_kernels_reports_both_rates_and_fishers_p_value(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    good, bad = BUILDS[1], BUILDS[2]
    done, results = _repro_over_builds(tmp_path, "--build", good, "--build", bad)
    assert done.returncode == 0, done.stderr
    p_value = stats.compare(0, 5, 5, 5).p_value  # 0/5 against 5/5: 2 / C(10, 5)
    assert p_value == pytest.approx(2 / 252)
    assert "A/B comparison" in done.stderr
    assert f"Fisher's exact test (two-sided): p = {p_value:.4g}" in done.stderr
    runs = {}
    for folder in results.iterdir():
        report = json.loads((folder / "report.json").read_text())
        run = report["run"]
        runs[run["software"]["kernel_release"]] = (run["verdict"], run["summary"]["reproduced"],
                                                  run["summary"]["iterations"], folder)  # fmt: skip
        table = report["comparison"]
        assert table["title"] == "A/B comparison"
        assert table["p_value"] == pytest.approx(p_value)
        assert [(row[0], row[2]) for row in table["rows"]] == [(good, "0/5"), (bad, "5/5")]
    assert {release: value[:3] for release, value in runs.items()} == {
        "6.1.0-50-cloud-amd64": ("not-reproduced", 0, 5),
        "6.1.0-53-cloud-amd64": ("reproduced", 5, 5),
    }, "each build booted its own kernel and ran the case"

    from selenium.webdriver.common.by import By

    driver = request.getfixturevalue("browser")  # Chromium only now that the boards are down
    driver.get((runs["6.1.0-53-cloud-amd64"][3] / "report.html").as_uri())
    assert driver.find_element(By.ID, "verdict").text == "Verdict: reproduced"
    cells = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in driver.find_element(By.ID, "comparison").find_elements(By.TAG_NAME, "tr")[1:]
    ]
    assert [(row[0], row[2], row[3]) for row in cells] == [
        (good, "0/5", "0%"),
        (bad, "5/5", "100%"),
    ]
    assert f"p = {p_value:.4g}" in driver.find_element(By.TAG_NAME, "body").text


def test_bisection_over_four_debian_kernels_finds_the_first_bad_build(tmp_path: Path) -> None:
    options = ["--bisect"]
    for build in BUILDS:
        options += ["--build", build]
    done, results = _repro_over_builds(tmp_path, *options)
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
