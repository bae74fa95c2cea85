"""report.html of a certification run: written when a run ends and by `harness report` for
a run folder or a signed bundle; checked in headless Chromium, where board output that is
markup shows as text and runs nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.model.board import load_board
from harness.vlab.boardhost import SIM_PROFILE
from harness.vlab.handle import RunningBoard
from tests.browser import headless_chromium

PLAN = Path(__file__).parent / "plans" / "hostile-output.yaml"
SCRIPT_LINE = "<script>window.__pwned=1</script>"
IMG_LINE = '<img src=x onerror="window.__pwned=2">'


def harness(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["nice", "-n", "10", sys.executable, "-m", "harness", *args],
        capture_output=True, text=True, timeout=600, cwd=cwd, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def hostile_run(vlab_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One run of the hostile-output plan on a simulated board: its run folder."""
    work = tmp_path_factory.mktemp("report")
    board = RunningBoard.start(load_board(SIM_PROFILE), "report-sim", lab_dir=vlab_dir)
    try:
        done = harness(
            "run", "--board", str(board.profile.source), "--env", str(board.env_file),
            "--plan", str(PLAN), "--results", str(work / "results"), "--no-submit", "--plain",
            cwd=work,
        )  # fmt: skip
    finally:
        board.stop()
    assert done.returncode == 1, done.stderr
    assert "report: " in done.stderr and "report.html" in done.stderr, "the run says where"
    (folder,) = [p for p in (work / "results").iterdir() if p.is_dir() and p.name[0] != "."]
    yield folder


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with headless_chromium(tmp_path / "chromium-profile", implicit_wait=0) as driver:
        yield driver


@pytest.mark.browser
def test_report_written_at_run_end_shows_verdict_failures_first_and_runs_no_board_markup(
    hostile_run: Path, browser
) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    page = hostile_run / "report.html"
    assert page.is_file(), "every finished run leaves its report in the run folder"
    browser.get(page.as_uri())
    assert browser.find_element(By.ID, "verdict").text == "not-certified"
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert headings[0] == "Failures", headings
    failure = browser.find_element(By.CSS_SELECTOR, "#failures section.failure")
    assert "prints-markup" in failure.text
    excerpt = failure.text
    assert SCRIPT_LINE in excerpt and IMG_LINE in excerpt, "board output shows as text"
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert browser.execute_script("return window.__pwned === undefined")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - raises when no alert is open
    # The rate of two tests is one series: one chart, one bar per test.
    bars = browser.find_elements(By.CSS_SELECTOR, "figure.chart svg rect.bar")
    assert len(bars) == 2
    assert "rate (MB/s): 2 values, 47 to 91" in browser.find_element(By.TAG_NAME, "figcaption").text
    waivers = browser.find_element(By.ID, "waivers").text
    assert "erratum <b>12</b>" in waivers and "applied" in waivers
    inventory = browser.find_element(By.ID, "inventory").text
    assert "CPUs" in inventory and "memory (MiB)" in inventory


def test_harness_report_rebuilds_the_page_for_a_folder_and_a_bundle_and_refuses_an_altered_bundle(
    hostile_run: Path, tmp_path: Path
) -> None:
    env = {"HARNESS_DATA_HOME": str(tmp_path / "data")}
    out = tmp_path / "again.html"
    rebuilt = harness("report", str(hostile_run), "--out", str(out), cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert out.read_text() == (hostile_run / "report.html").read_text()

    bundle = tmp_path / "run.bundle.tar"
    made = harness("bundle", "make", str(hostile_run), "-o", str(bundle), cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    from_bundle = harness("report", str(bundle), cwd=tmp_path)
    assert from_bundle.returncode == 0, from_bundle.stderr
    html = (tmp_path / "run.report.html").read_text()
    assert 'id="verdict" class="verdict v-not-certified">not-certified<' in html
    assert "its signature and every byte verified" in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html and SCRIPT_LINE not in html

    altered = bytearray(bundle.read_bytes())
    at = altered.index(b"prints-markup")
    altered[at] = ord("P")
    bad = tmp_path / "altered.bundle.tar"
    bad.write_bytes(bytes(altered))
    refused = harness("report", str(bad), cwd=tmp_path)
    assert refused.returncode == 1
    assert "TAMPERED" in refused.stderr and not (tmp_path / "altered.report.html").exists()


def test_report_of_no_such_run_or_of_a_repro_run_is_bad_input(tmp_path: Path) -> None:
    missing = harness("report", "20261130T000000Z-sim-0000", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no such run folder, run id or bundle" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = harness("report", str(tmp_path / "empty"), cwd=tmp_path)
    assert empty.returncode == 2 and "not a run folder (no run.json)" in empty.stderr
    (tmp_path / "empty" / "run.json").write_text('{"kind": "repro"}')
    repro = harness("report", str(tmp_path / "empty"), cwd=tmp_path)
    assert repro.returncode == 2 and "its report.html is written by `harness repro`" in repro.stderr
