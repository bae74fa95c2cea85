"""The run folder's record models: the committed JSON Schemas are theirs, and old folders still read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from harness.errors import UserError
from harness.model.case_records import CaseRunRecord
from harness.model.records import ResultRecord, RunRecord
from harness.model.schemas import SCHEMA_DIR, schema_texts
from harness.report.runfolder import RunFolder
from harness.repro.folder import ReproFolder

REPO = Path(__file__).resolve().parents[2]

# A run.json and a results line exactly as the version before the record models wrote them
# (no error_class): a folder left by that version must still resume and report.
OLD_RUN_JSON = {
    "schema": 1,
    "run_id": "20261128T071500Z-sim-3f2a",
    "harness_version": "0.1.0",
    "status": "running",
    "plan": {
        "id": "precert",
        "version": "1.0",
        "sha256": "a" * 64,
        "title": "Pre-certification",
        "file": "testplans/precert.yaml",
        "tests": ["console-login", "disk"],
    },
    "board": {
        "name": "sim",
        "vendor": "Harness Virtual Lab",
        "model": "SIM",
        "revision": "A1",
        "soc": "host",
        "arch": "x86_64",
        "compatible": "harness,sim",
        "profile_sha256": "b" * 64,
    },
    "lab": {"kind": "virtual", "name": "sim", "host": "bench", "operator": "ada"},
    "software": {
        "kernel_release": "6.1.0-27-amd64",
        "kernel_version": "#1 SMP",
        "os_release": "Debian GNU/Linux 12",
        "bootloader": None,
    },
    "started_at": "2026-11-28T07:15:00.000Z",
    "finished_at": None,
    "verdict": "incomplete",
    "counts": {"pass": 0, "fail": 0, "error": 0, "skip": 0, "waived": 0, "not-run": 0},
    "waivers": [],
    "exit_code": None,
    "sessions": [
        {
            "started_at": "2026-11-28T07:15:00.000Z",
            "finished_at": None,
            "pid": 4242,
            "selection": None,
        }
    ],
    "retries": 1,
}
OLD_LINE = {
    "id": "console-login",
    "title": "Root shell on the serial console",
    "category": "console",
    "blocker": True,
    "outcome": "pass",
    "reason": "",
    "duration": 1.25,
    "started_at": "2026-11-28T07:15:01.000Z",
    "finished_at": "2026-11-28T07:15:02.250Z",
    "attempt": 1,
    "previous_attempts": [],
    "measurements": [{"name": "boot", "value": 3.5, "unit": "s"}],
    "excerpt": "",
    "log": "$ id -u\n0",
    "session": 1,
    "plan_id": "precert",
}


# run.json and one results.jsonl line of a `harness repro` run as the version before the case
# record models wrote them (board without `compatible`, sessions as free dicts).
OLD_CASE_RUN_JSON = {
    "schema": 1,
    "kind": "repro",
    "run_id": "20261128T081500Z-sim-9c1d",
    "harness_version": "0.1.0",
    "status": "finished",
    "mode": "repro",
    "case": {
        "id": "CASE-1",
        "version": "1",
        "sha256": "c" * 64,
        "file": "testplans/cases/example.yaml",
        "customer_ref": "ACME-1",
        "severity": 2,
        "subsystem": "storage",
        "seen_on": {"vendor": "Acme", "model": "AB-100", "revision": "A1", "kernel": None},
        "customer_fingerprints": [],
    },
    "plan": {"id": "case:CASE-1", "version": "1"},
    "board": {
        "name": "sim",
        "vendor": "Harness Virtual Lab",
        "model": "SIM",
        "revision": "A1",
        "soc": "host",
        "arch": "x86_64",
        "profile_sha256": "b" * 64,
    },
    "lab": {"kind": "virtual", "name": "sim", "host": "bench", "operator": "ada"},
    "software": {
        "kernel_release": "6.1.0-27-amd64",
        "kernel_version": "#1 SMP",
        "os_release": "Debian GNU/Linux 12",
        "bootloader": None,
    },
    "technical": {"cmdline": "console=ttyS0"},
    "settings": {
        "repeat": 2, "until_first": False, "max_time": None, "between": "none", "timeout": 60.0
    },
    "started_at": "2026-11-28T08:15:00.000Z",
    "finished_at": "2026-11-28T08:16:00.000Z",
    "sessions": [
        {
            "started_at": "2026-11-28T08:15:00.000Z",
            "finished_at": "2026-11-28T08:16:00.000Z",
            "pid": 4343,
            "stop_reason": "2 iterations done",
            "between_problems": [],
        }
    ],
    "summary": {
        "iterations": 2, "reproduced": 1, "not_reproduced": 1, "errors": 0, "rate": 0.5,
        "interval": {"low": 0.094531, "high": 0.905469, "confidence": 0.95, "method": "wilson"},
        "first_reproducing": 1, "mean_duration": 2.5, "signature_match": None,
    },
    "verification": None,
    "verdict": "reproduced",
    "exit_code": 1,
}  # fmt: skip
OLD_ITERATION = {
    "schema": 1, "iteration": 1, "session": 1, "outcome": "reproduced",
    "reason": "signature seen", "matched": ["console"], "signature_match": None, "crash": None,
    "timed_out": False, "started_at": "2026-11-28T08:15:01.000Z",
    "finished_at": "2026-11-28T08:15:03.500Z", "duration": 2.5, "boot_id": None,
    "evidence": None, "recovery": None,
}  # fmt: skip


def test_committed_schemas_are_the_ones_generated_from_the_models() -> None:
    for name, text in schema_texts().items():
        committed = (SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert committed == text, (
            f"harness/report/schemas/{name} differs from the models: "
            "run python3 -m harness.model.schemas --write"
        )


def test_schema_check_command_reports_stale_schemas_and_write_fixes_them(tmp_path: Path) -> None:
    """The documented commands: the check exits 1 on a stale schema, --write makes it pass."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    check = [sys.executable, "-m", "harness.model.schemas"]
    ok = subprocess.run(check, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert ok.returncode == 0, ok.stderr
    # the same commands on a copy of the package whose schema is stale
    copy = tmp_path / "repo"
    shutil.copytree(
        REPO / "harness", copy / "harness", ignore=shutil.ignore_patterns("__pycache__")
    )
    stale = copy / "harness" / "report" / "schemas" / "result.schema.json"
    stale.write_text("{}\n")
    env = {**os.environ, "PYTHONPATH": str(copy)}
    found = subprocess.run(check, capture_output=True, text=True, env=env, cwd=copy, timeout=120)
    assert found.returncode == 1
    assert "result.schema.json" in found.stderr and "--write" in found.stderr
    fixed = subprocess.run(
        [*check, "--write"], capture_output=True, text=True, env=env, cwd=copy, timeout=120
    )
    assert fixed.returncode == 0, fixed.stderr
    assert stale.read_text() == schema_texts()["result.schema.json"]


OLD_DOCUMENTS = {
    "run.schema.json": OLD_RUN_JSON,
    "result.schema.json": OLD_LINE,
    "case-run.schema.json": OLD_CASE_RUN_JSON,
    "case-iteration.schema.json": OLD_ITERATION,
}


@pytest.mark.parametrize("name", sorted(OLD_DOCUMENTS))
def test_old_format_still_validates_against_the_published_schema(name: str) -> None:
    assert set(OLD_DOCUMENTS) == set(schema_texts()), "every published schema has an old sample"
    jsonschema.validate(OLD_DOCUMENTS[name], json.loads((SCHEMA_DIR / name).read_text()))


def test_a_repro_folder_written_before_the_case_records_reads_and_writes_back_unchanged(
    tmp_path: Path,
) -> None:
    folder = tmp_path / OLD_CASE_RUN_JSON["run_id"]
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(OLD_CASE_RUN_JSON))
    (folder / "results.jsonl").write_text(json.dumps(OLD_ITERATION) + "\n")
    reopened = ReproFolder.open_existing(tmp_path, folder.name)
    run = reopened.read_run()
    (line,) = reopened.read_results()
    assert isinstance(run, CaseRunRecord) and run.sessions[0].stop_reason == "2 iterations done"
    assert line.outcome == "reproduced"
    reopened.write_run(run)
    again = json.loads((folder / "run.json").read_text())
    # the only changes: the shared board and session blocks and the settings name the fields
    # they added, empty
    assert again == {
        **OLD_CASE_RUN_JSON,
        "board": {**OLD_CASE_RUN_JSON["board"], "compatible": ""},
        "settings": {**OLD_CASE_RUN_JSON["settings"], "baseline": None},
        "sessions": [{**OLD_CASE_RUN_JSON["sessions"][0], "selection": None}],
    }


def test_folder_written_by_the_previous_version_reads_and_defaults_the_error_class(
    tmp_path: Path,
) -> None:
    folder = tmp_path / OLD_RUN_JSON["run_id"]
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(OLD_RUN_JSON, indent=2))
    (folder / "results.jsonl").write_text(json.dumps(OLD_LINE) + "\n")
    reopened = RunFolder.open_existing(tmp_path, folder.name)
    run = reopened.read_run()
    (line,) = reopened.read_results()
    assert run.error_class is None and line.error_class is None
    assert run.sessions[0].pid == 4242 and line.measurements[0].value == 3.5
    # written back, the old fields are unchanged and the new one appears as null
    reopened.write_run(run)
    again = json.loads((folder / "run.json").read_text())
    assert {k: v for k, v in again.items() if k != "error_class"} == OLD_RUN_JSON
    assert again["error_class"] is None


def test_a_results_line_that_does_not_fit_is_named_by_line_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    foreign = {**OLD_LINE, "outcome": "passed"}
    (folder / "results.jsonl").write_text(json.dumps(OLD_LINE) + "\n" + json.dumps(foreign) + "\n")
    with pytest.raises(UserError) as caught:
        RunFolder(folder).read_results()
    assert caught.value.location.line == 2
    assert caught.value.location.field == "outcome"
    assert "results.jsonl" in str(caught.value)


def test_a_torn_last_line_is_ignored_not_reported(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    line = json.dumps(OLD_LINE)
    (folder / "results.jsonl").write_text(line + "\n" + line[:40])
    assert [r.id for r in RunFolder(folder).read_results()] == ["console-login"]


def test_run_json_with_an_unknown_field_is_refused_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({**OLD_RUN_JSON, "verdikt": "certified"}))
    with pytest.raises(UserError) as caught:
        RunFolder(folder).read_run()
    assert caught.value.location.field == "verdikt"


def test_models_round_trip_without_changing_a_byte_of_what_was_written() -> None:
    assert ResultRecord.model_validate(OLD_LINE).line() == {**OLD_LINE, **_new_result_defaults()}
    assert RunRecord.model_validate(OLD_RUN_JSON).to_json() == {**OLD_RUN_JSON, "error_class": None}


def _new_result_defaults() -> dict[str, object]:
    """Fields an old line did not carry, as the models fill them in."""
    return {"error_class": None, "crash": None, "console_events": [], "waiver": None}
