"""Customer cases end to end on the simulated board: case file -> registry case with eligibility and
response target -> repro and verify runs delivered and attached -> verdict -> web page and each
run's HTML report in headless Chromium, where board output that looks like HTML stays text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.registry.test_registry_web_page import _no_script_ran, browser  # noqa: F401 - fixture

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "testplans" / "cases"
PAYLOAD = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"


def _harness(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True, text=True, timeout=600, cwd=REPO, env=env,
    )  # fmt: skip


def test_case_with_repro_and_verify_runs_on_the_registry_web_page(
    browser,  # noqa: F811 - the fixture imported above
    sim_board,
    db_url,
    start_server,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    if not db_url.startswith("sqlite"):
        pytest.skip("the harness delivers to a local SQLite registry here")
    env = {**os.environ, "HARNESS_REGISTRY_DB": db_url}
    case = tmp_path / "case.yaml"
    case.write_text(
        (CASES / "always.yaml").read_text()
        .replace("""'echo "status: ERROR state"'""", f"""'echo "{PAYLOAD} status: ERROR state"'""")
        .replace("  os_release: harness-vlab\n", "  os_release: harness-vlab 1\n  kernel: 6.1.0-99-sim\n")
        + "attachments:\n  - file: customer.log\n"  # the board never crashes: "no crash"
    )  # fmt: skip
    (tmp_path / "customer.log").write_bytes((CASES / "kernel-panic.customer.log").read_bytes())
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(case.read_text().replace("status: ERROR state", "status: OK"))
    board = ["--board", str(sim_board.profile.source), "--env", str(sim_board.env_file)]
    results = str(tmp_path / "results")

    opened = _harness("registry", "--db", db_url, "cases", "open", str(case), "--json", env=env)
    assert opened.returncode == 0, opened.stderr
    record = json.loads(opened.stdout)
    assert record["eligibility"]["status"] == "not-eligible", "nothing certifies a SIM at intake"
    assert record["response"]["target_business_hours"] == 12

    repro = _harness("repro", str(case), *board, "--repeat", "3", "--results", results, env=env)
    assert repro.returncode == 1, repro.stderr
    assert "registry: delivered" in repro.stderr
    repro_id = next(p.name for p in Path(results).iterdir())
    verify = _harness("repro", str(fixed), *board, "--results", results, "--verify",
                      "--baseline", str(Path(results) / repro_id), env=env)  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    verify_id = next(p.name for p in Path(results).iterdir() if p.name != repro_id)

    db = ("registry", "--db", db_url)
    assert _harness(*db, "cases", "attach", "demo-always", repro_id, env=env).returncode == 0
    wrong = _harness(
        *db, "cases", "verify", "demo-always", "--verdict", "resolved", "--run", repro_id, env=env
    )
    assert wrong.returncode == 2 and "not a verify-resolution run" in wrong.stderr
    verified = _harness(*db, "cases", "verify", "demo-always", "--verdict", "resolved",
                        "--run", verify_id, "--json", env=env)  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    runs = json.loads(verified.stdout)["reproduction_runs"]
    assert [(r["run_id"], r["reproduced"], r["iterations"], r["rate"]) for r in runs] == [
        (repro_id, 3, 3, 1.0),
        (verify_id, 0, runs[1]["iterations"], 0.0),
    ]
    assert runs[0]["signature_match"] == "no crash" and runs[0]["interval"][1] == 1.0
    assert (runs[1]["mode"], runs[1]["verify_verdict"]) == ("verify", "resolved")

    server = start_server(db_url)
    browser.get(server.url + "/ui/cases")
    section = browser.find_element(By.CLASS_NAME, "case")
    assert "demo-always" in section.find_element(By.CLASS_NAME, "case-id").text
    assert section.find_element(By.CLASS_NAME, "eligibility").text.startswith("not-eligible")
    response = section.find_element(By.CLASS_NAME, "response").text
    assert "12 business hours" in response
    assert "business hours left" in response or "overdue" in response
    assert section.find_element(By.CLASS_NAME, "verification").text.startswith("resolved")
    rows = section.find_elements(By.CLASS_NAME, "run-row")
    assert [r.find_element(By.CLASS_NAME, "rate").text.split()[0] for r in rows] == ["100%", "0%"]
    assert rows[1].find_element(By.CLASS_NAME, "verdict").text == "resolved"
    rows[0].find_element(By.CLASS_NAME, "report").click()

    assert browser.find_element(By.ID, "verdict").text == "Verdict: reproduced"
    assert browser.find_element(By.ID, "interval").text == "43.9% to 100.0%"  # Wilson, 3/3
    strip = browser.find_element(By.ID, "strip")
    assert len(strip.find_elements(By.CSS_SELECTOR, "rect.reproduced")) == 3
    assert browser.find_element(By.ID, "signature-match").text == "no crash"
    customer = browser.find_element(By.ID, "fingerprints").text
    assert "customer log" in customer and "sysrq_handle_crash" in customer
    evidence = browser.find_element(By.CLASS_NAME, "evidence").text
    assert PAYLOAD in evidence, "board output is shown as text"
    _no_script_ran(browser)
