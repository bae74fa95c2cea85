"""`harness registry cases show` and `cases verify` as a support engineer types them (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.registry.runfolder import repro_fields

REPO = Path(__file__).resolve().parents[2]


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "registry", "--db", db_url, *args],
        capture_output=True, text=True, env=dict(os.environ), cwd=REPO, timeout=120,
    )  # fmt: skip


def test_cases_show_and_verify_from_the_cli(db_url, store, lab, make_bundle_bytes) -> None:
    # `resolved` rests on a verify-resolution run of the case that found it resolved
    fix = make_bundle_bytes("fix-run", **repro_fields("CASE-7", "verify", reproduced=0))
    store.submit_bundle(fix, lab)
    opened = cli(db_url, "cases", "open", "--id", "CASE-7", "--customer-ref", "CUST-7", "--severity", "high",
                 "--subsystem", "usb", "--vendor", "Acme Boards", "--model", "AB-100", "--revision", "A1",
                 "--opened-at", "2026-11-27T17:30:00+0000")  # fmt: skip
    assert opened.returncode == 0, opened.stderr

    shown = cli(db_url, "cases", "show", "CASE-7", "--json")
    assert shown.returncode == 0, shown.stderr
    case = json.loads(shown.stdout)
    assert (case["case_id"], case["severity"], case["response_target_at"]) == ("CASE-7", "high", "2026-12-01T09:30:00+00:00")  # fmt: skip
    assert case["verification"] == {"verdict": None, "run_id": None, "verified_at": None}
    table = cli(db_url, "cases", "show", "CASE-7")
    assert (
        "CASE-7" in table.stdout and "CUST-7" in table.stdout and "2026-12-01T09:30" in table.stdout
    )

    verified = cli(db_url, "cases", "verify", "CASE-7", "--verdict", "resolved", "--run", "fix-run", "--json")  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    after = json.loads(verified.stdout)
    assert (
        after["verification"]["verdict"] == "resolved"
        and after["verification"]["run_id"] == "fix-run"
    )
    assert [r["run_id"] for r in after["reproduction_runs"]] == ["fix-run"]
    assert json.loads(cli(db_url, "cases", "show", "CASE-7", "--json").stdout)["verification"]["verdict"] == "resolved"  # fmt: skip


def test_cases_show_and_verify_name_what_is_missing_with_exit_2(db_url, store) -> None:
    missing = cli(db_url, "cases", "show", "NO-SUCH")
    assert missing.returncode == 2 and "case 'NO-SUCH' does not exist" in missing.stderr
    cli(db_url, "cases", "open", "--id", "C-1", "--customer-ref", "c", "--severity", "low", "--subsystem", "x",
        "--vendor", "Acme Boards", "--model", "AB-100", "--revision", "A1")  # fmt: skip
    no_run = cli(db_url, "cases", "verify", "C-1", "--verdict", "resolved", "--run", "never-stored")
    assert no_run.returncode == 2 and "run 'never-stored' is not stored" in no_run.stderr
    bad = cli(db_url, "cases", "verify", "C-1", "--verdict", "fixed", "--run", "r")
    assert bad.returncode == 2 and "'fixed' is not one of 'resolved', 'not-resolved'" in bad.stderr
    assert "Traceback" not in missing.stderr + no_run.stderr + bad.stderr
