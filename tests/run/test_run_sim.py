"""`harness run` end to end on the simulated board: outcomes, verdicts, exit codes, run folder, JUnit.

The simulated board is a real shell behind a real console and a real SSH server (see
harness/vlab/simboard.py), so these runs go through the same Board, console session,
pytest plugin and run folder as a QEMU or hardware run, only faster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import jsonschema

from tests.run.conftest import PLANS, RunOutput, fault_env, harness_run, schema


def _validate_folder(run: RunOutput) -> None:
    jsonschema.validate(run.run_json(), schema("run.schema.json"))
    line_schema = schema("result.schema.json")
    for record in run.lines():
        jsonschema.validate(record, line_schema)


def test_healthy_board_passes_console_and_ssh_plan_exit_0_certified_with_complete_run_folder(
    sim_board, results_root: Path
) -> None:
    run = harness_run(sim_board, "all-pass.yaml", results_root)
    assert run.code == 0, run.stderr
    assert run.outcomes() == dict.fromkeys(
        ["console-echo", "console-state", "ssh-streams", "sftp", "cpus-vs-profile"], "pass"
    )
    meta = run.run_json()
    assert meta["verdict"] == "certified"
    assert meta["counts"] == {
        "pass": 5,
        "fail": 0,
        "error": 0,
        "skip": 0,
        "waived": 0,
        "not-run": 0,
    }
    assert meta["board"]["name"] == "sim"
    assert meta["software"]["kernel_release"]
    cpus = run.result("cpus-vs-profile")["measurements"]
    assert {m["name"] for m in cpus} == {"cpus", "cpus_seen"}
    assert (run.folder / "artifacts" / "roundtrip.bin").stat().st_size == 65536
    _validate_folder(run)
    names = {p.name for p in run.folder.iterdir()}
    assert {"run.json", "results.jsonl", "console.log", "junit.xml", "inventory.json"} <= names
    console = (run.folder / "console.log").read_text()
    assert 'echo "$(pwd) $H4_MARK"' in console, "commands the harness sent are in the console log"
    assert "/tmp kept" in console, "and so is what the board answered"
    assert '"kernel_release"' in (run.folder / "inventory.json").read_text()


def test_six_outcomes_stay_distinct_in_results_junit_and_run_json(
    sim_board, results_root: Path
) -> None:
    run = harness_run(sim_board, "six-outcomes.yaml", results_root, "-k", "not deselected")
    assert run.outcomes() == {
        "passes": "pass",
        "fails": "fail",
        "errors": "error",
        "skipped": "skip",
        "waived": "waived",
        "expired-waiver": "fail",
        "too-slow": "fail",
        "deselected": "not-run",
    }
    assert run.code == 3, "an error makes the run incomplete"
    meta = run.run_json()
    assert meta["verdict"] == "incomplete"
    assert "did not finish within 2 s" in run.result("too-slow")["reason"]
    assert meta["counts"] == {
        "pass": 1,
        "fail": 3,
        "error": 1,
        "skip": 1,
        "waived": 1,
        "not-run": 1,
    }
    assert run.result("errors")["reason"].startswith("python step raised KeyError")
    # whose problem each was, as a field: the plan's python code, the board's, or nobody's
    classes = {test_id: run.result(test_id)["error_class"] for test_id in run.outcomes()}
    assert classes == {
        "passes": None,
        "fails": None,
        "errors": "user",
        "skipped": None,
        "waived": None,
        "expired-waiver": None,
        "too-slow": "board-fault",  # the board overran the command: its failure, not the lab's
        "deselected": None,
    }
    assert meta["error_class"] == "user"
    assert "facts.watchdog" in run.result("skipped")["reason"]
    assert "waiver expired on 2001-01-01" in run.result("expired-waiver")["reason"]
    assert run.result("waived")["waiver"]["ticket"] == "LAB-7"
    assert "temperature = 93 C, expected < 85" in run.result("waived")["reason"]
    assert run.result("deselected")["reason"] == "deselected (-k not deselected)"
    applied = {w["test"]: (w["active"], w["applied"]) for w in meta["waivers"]}
    assert applied == {"waived": (True, True), "expired-waiver": (False, False)}
    _validate_folder(run)

    cases = {case.get("name"): case for case in ET.parse(run.folder / "junit.xml").iter("testcase")}
    kinds = {
        name: [child.tag for child in case if child.tag not in ("properties", "system-out")]
        for name, case in cases.items()
    }
    assert kinds == {
        "passes": [],
        "fails": ["failure"],
        "errors": ["error"],
        "skipped": ["skipped"],
        "waived": ["skipped"],
        "expired-waiver": ["failure"],
        "too-slow": ["failure"],
        "deselected": ["skipped"],
    }
    assert {name: case.get("status") for name, case in cases.items()}["waived"] == "waived"
    assert cases["waived"].find("skipped").get("message").startswith("waived: ")
    assert cases["deselected"].find("skipped").get("message").startswith("not run: ")
    props = {p.get("name"): p.get("value") for p in cases["waived"].iter("property")}
    assert props["outcome"] == "waived" and props["waiver.expires"] == "2099-12-31"
    suite = ET.parse(run.folder / "junit.xml").find("testsuite")
    suite_props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert suite_props["board.name"] == "sim" and suite_props["software.kernel_release"]


def test_failed_blocker_gives_not_certified_exit_1_and_later_tests_still_run(
    sim_board, results_root: Path
) -> None:
    run = harness_run(sim_board, "blocker-fails.yaml", results_root)
    assert run.code == 1
    assert run.outcomes() == {"fine": "pass", "too-many-cpus": "fail", "after": "pass"}
    assert run.run_json()["verdict"] == "not-certified"
    assert "expected >= 4096" in run.result("too-many-cpus")["reason"]
    assert "fail     too-many-cpus" in run.stderr


def test_k_selects_by_test_id_and_pytest_junitxml_lists_only_selected(
    sim_board, results_root: Path, tmp_path: Path
) -> None:
    junit = tmp_path / "pytest-junit.xml"
    run = harness_run(
        sim_board, "all-pass.yaml", results_root, "-k", "console", "--junitxml", str(junit)
    )
    outcomes = run.outcomes()
    assert outcomes == {
        "console-echo": "pass",
        "console-state": "pass",
        "ssh-streams": "not-run",
        "sftp": "not-run",
        "cpus-vs-profile": "not-run",
    }
    assert run.code == 3, "a partial run cannot certify"
    names = sorted(case.get("name") for case in ET.parse(junit).iter("testcase"))
    assert names == ["console-echo", "console-state"]


def test_x_stops_at_first_failure_and_the_rest_is_not_run(sim_board, results_root: Path) -> None:
    run = harness_run(sim_board, "blocker-fails.yaml", results_root, "-x")
    assert run.outcomes() == {"fine": "pass", "too-many-cpus": "fail", "after": "not-run"}
    assert run.result("after")["reason"].startswith("run stopped early")
    assert run.code == 1


def test_infrastructure_error_is_retried_after_recovery_and_the_retry_passes(
    sim_board, results_root: Path, tmp_path: Path
) -> None:
    env = fault_env(sim_board, HARNESS_TEST_MARKER=str(tmp_path / "hung-once"))
    run = harness_run(sim_board, "retry.yaml", results_root, "--retries", "1", env=env)
    assert run.outcomes() == {"hang-once": "pass", "afterwards": "pass"}, run.stderr
    record = run.result("hang-once")
    assert record["attempt"] == 2
    assert [a["outcome"] for a in record["previous_attempts"]] == ["error"]
    assert "ShellUnresponsive" in record["previous_attempts"][0]["reason"]
    assert run.code == 0


def test_reset_during_a_test_fails_it_even_when_every_command_answered(
    sim_board, results_root: Path
) -> None:
    run = harness_run(sim_board, "reset-absorbed.yaml", results_root, env=fault_env(sim_board))
    assert run.outcomes() == {"reset-then-recover": "fail", "afterwards": "pass"}, run.stderr
    record = run.result("reset-then-recover")
    assert record["reason"].startswith("board crashed: unexpected-reset"), record
    assert record["error_class"] == "board-fault"
    assert run.code == 1


def test_lf_reruns_only_the_tests_that_failed_last_time(sim_board, results_root: Path) -> None:
    first = harness_run(sim_board, "blocker-fails.yaml", results_root)
    assert first.code == 1
    # pytest's last-failed cache lives next to the run folders (results/.cache)
    again = harness_run(sim_board, "blocker-fails.yaml", results_root, "--lf")
    latest = sorted(p for p in results_root.iterdir() if p.is_dir() and not p.name.startswith("."))[
        -1
    ]
    outcomes = {
        json.loads(line)["id"]: json.loads(line)["outcome"]
        for line in (latest / "results.jsonl").read_text().splitlines()
    }
    assert outcomes == {"fine": "not-run", "too-many-cpus": "fail", "after": "not-run"}
    assert again.code == 1


def test_virtual_board_without_env_is_started_and_stopped_by_harness_run(
    results_root: Path, tmp_path: Path
) -> None:
    lab = tmp_path / "lab"
    env = {**os.environ, "HARNESS_LAB_DIR": str(lab)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--board",
            "sim",
            "--plan",
            str(PLANS / "all-pass.yaml"),
            "--results",
            str(results_root),
            "--no-submit",
            "--plain",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "starting virtual board sim" in done.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "harness", "lab", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,  # a bound for a hang only
    )
    assert "sim" not in listed.stdout.split("\n", 1)[-1], "the board harness run started is gone"
    run_json = json.loads(next(results_root.glob("*/run.json")).read_text())
    assert run_json["lab"]["kind"] == "virtual" and run_json["verdict"] == "certified"


def test_plan_runs_under_plain_pytest_with_the_plugin_and_m_selects_a_category(
    sim_board, tmp_path: Path
) -> None:
    plan = tmp_path / "all-pass.yaml"  # a lab's own folder, outside this repository's pytest setup
    plan.write_text((PLANS / "all-pass.yaml").read_text())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "harness.run.plugin",
            "-p",
            "no:cacheprovider",
            "-v",
            "--board",
            str(sim_board.profile.source),
            "--plan",
            str(plan),
            "--lg-env",
            str(sim_board.env_file),
            "--run-dir",
            str(tmp_path / "results"),
            "-m",
            "ssh",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert "all-pass.yaml::ssh-streams PASSED" in done.stdout, done.stdout + done.stderr
    assert "all-pass.yaml::sftp PASSED" in done.stdout
    assert done.returncode == 3, "deselected tests make the run incomplete"
    lines = [
        json.loads(line)
        for line in next((tmp_path / "results").glob("*/results.jsonl")).read_text().splitlines()
    ]
    assert {r["id"]: r["outcome"] for r in lines}["console-echo"] == "not-run"


def test_board_refusing_login_is_an_error_and_the_rest_not_run_exit_3(
    sim_board, results_root: Path, tmp_path: Path
) -> None:
    profile = tmp_path / "sim-wrong-password.yaml"
    text = Path(sim_board.profile.source).read_text()
    assert "password: root" in text
    profile.write_text(text.replace("password: root", "password: not-the-password"))

    wrong = SimpleNamespace(env_file=sim_board.env_file, profile=SimpleNamespace(source=profile))
    run = harness_run(wrong, "all-pass.yaml", results_root)
    assert run.code == 3
    outcomes = run.outcomes()
    assert outcomes["console-echo"] == "error"
    assert set(list(outcomes.values())[1:]) == {"not-run"}
    assert "LoginFailed" in run.result("console-echo")["reason"]
    assert run.result("sftp")["reason"].startswith("board could not be opened: LoginFailed")
    assert run.run_json()["verdict"] == "incomplete"
