"""Operator steps (`manual:`) on the simulated board, answered the way a person answers them.

`harness run` reads the answers from its stdin, so these tests feed it lines as someone at
the bench would type them: a yes with a photo, a no, and a reply that is neither. Without
anyone to ask (--unattended, or a stdin that is not a terminal and no --answers) the
operator tests are not-run and the verdict is incomplete.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pexpect

from tests.run.conftest import PLANS, REPO, RunOutput, harness_run_argv

PLAN = PLANS / "operator.yaml"


def _run_with_input(board, results_root: Path, stdin: str | None, *extra: str) -> RunOutput:
    argv = harness_run_argv(board, PLAN, results_root, "--operator", "alice", *extra)
    done = subprocess.run(
        argv,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=dict(os.environ),
    )
    return RunOutput(done.returncode, done.stdout, done.stderr, results_root)


def test_answers_on_stdin_pass_fail_and_are_kept_with_the_attached_photo(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    photo = tmp_path / "pwr-led.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 a photo of a green LED \xff\xd9")
    # "maybe" is neither: asked again. Then yes + the photo; then no + no file.
    answers = f"maybe\nyes\n{photo}\nno\n\n"
    run = _run_with_input(sim_board, results_root, answers, "--answers", "-")

    assert run.code == 1, run.stderr
    assert run.run_json()["verdict"] == "not-certified"
    assert "Look at the LED marked PWR next to the power jack." in run.stderr
    assert "Is the PWR LED steady green? [yes/no]" in run.stderr
    assert "please answer yes or no (got 'maybe')" in run.stderr

    passed = run.result("power-led")
    assert passed["outcome"] == "pass", passed["reason"]
    [answer] = passed["operator_answers"]
    assert (answer["answer"], answer["operator"]) == ("yes", "alice")
    assert answer["question"] == "Is the PWR LED steady green?"
    attached = answer["attachment"]
    copy = run.folder / attached["file"]
    assert copy.read_bytes() == photo.read_bytes(), "the photo is copied into the run folder"
    assert attached["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert attached["original"] == str(photo)
    assert "checked" in passed["log"], "the step after the answer ran"

    failed = run.result("hdmi-picture")
    assert failed["outcome"] == "fail"
    assert failed["reason"] == (
        "step 1 (manual): operator alice answered no to 'Does the monitor show a login prompt?'"
    )
    assert [(a["answer"], a["attachment"]) for a in failed["operator_answers"]] == [("no", None)]
    assert run.result("console-echo")["outcome"] == "pass"
    junit = ElementTree.parse(run.folder / "junit.xml")
    led = {
        prop.get("name"): prop.get("value")
        for prop in junit.findall(".//testcase[@name='power-led']/properties/property")
    }
    assert led["operator.1"] == "yes by alice: Is the PWR LED steady green?"
    assert led["operator.1.attachment"] == f"{attached['file']} sha256:{attached['sha256']}"

    page = (run.folder / "report.html").read_text()
    operator_table = page.split('<table id="operator">', 1)[1].split("</table>", 1)[0]
    assert "Is the PWR LED steady green?" in operator_table
    assert "Does the monitor show a login prompt?" in operator_table
    assert operator_table.count(">alice<") == 2, "each answer names who gave it"
    inline = "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode()
    assert inline in operator_table, "the photo answered with is shown on the page"

    copy.write_bytes(b"\xff\xd8\xff\xe0 some other photo \xff\xd9")  # altered after the run
    rebuilt = subprocess.run(
        [sys.executable, "-m", "harness", "report", str(run.folder), "--out", str(tmp_path / "r.html")],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=dict(os.environ),
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stderr
    page = (tmp_path / "r.html").read_text()
    assert "data:image" not in page, "a photo whose bytes no longer match its sha256 is not shown"
    assert attached["sha256"][:16] in page, "but the answer still names the file and its sha256"


def test_on_a_terminal_the_run_asks_there_with_its_live_panel_held_still(
    sim_board, results_root: Path
) -> None:
    """No --answers, no --plain: the question appears on the run's terminal (a pty here),
    between the live panel's redraws, and what is typed there is the answer."""
    argv = [a for a in harness_run_argv(sim_board, PLAN, results_root) if a != "--plain"]
    child = pexpect.spawn(
        argv[0], argv[1:], cwd=str(REPO), env=dict(os.environ), encoding="utf-8",
        timeout=120, dimensions=(40, 160),
    )  # fmt: skip
    try:
        child.expect(r"Look at the LED marked PWR next to the power jack\.")
        child.expect(r"Is the PWR LED steady green\? \[yes/no\]: ")
        child.sendline("yes")
        child.expect("file to attach as evidence")
        child.sendline("")
        child.expect(r"Does the monitor show a login prompt\? \[yes/no\]: ")
        child.sendline("no")
        child.expect("file to attach as evidence")
        child.sendline("")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1
    run = RunOutput(child.exitstatus, "", "", results_root)
    assert run.outcomes() == {"console-echo": "pass", "power-led": "pass", "hdmi-picture": "fail"}
    assert run.result("hdmi-picture")["operator_answers"][0]["answer"] == "no"


def _assert_operator_tests_not_run(run: RunOutput, why: str) -> None:
    assert run.code == 3, run.stderr
    assert run.run_json()["verdict"] == "incomplete"
    assert run.run_json()["counts"]["not-run"] == 2
    assert run.outcomes() == {
        "console-echo": "pass",
        "power-led": "not-run",
        "hdmi-picture": "not-run",
    }
    for test_id in ("power-led", "hdmi-picture"):
        record = run.result(test_id)
        assert record["reason"] == f"operator step not asked: {why}"
        assert record["operator_answers"] == []
    assert "[yes/no]" not in run.stderr, "nobody was asked"
    page = (run.folder / "report.html").read_text()
    not_asked = page.split('id="operator-not-run"', 1)[1].split("</p>", 1)[0]
    assert "<b>power-led</b>" in not_asked and "<b>hdmi-picture</b>" in not_asked
    assert "console-echo" not in not_asked


def test_unattended_run_leaves_operator_tests_not_run_until_a_person_resumes_it(
    sim_board, results_root: Path
) -> None:
    run = _run_with_input(sim_board, results_root, None, "--unattended")
    _assert_operator_tests_not_run(run, "the run is --unattended")

    run_id = run.folder.name
    resumed = _run_with_input(
        sim_board, results_root, "yes\n\nyes\n\n", "--resume", run_id, "--answers", "-"
    )
    assert resumed.code == 0, resumed.stderr
    assert resumed.run_json()["verdict"] == "certified"
    assert "Is the PWR LED steady green?" in resumed.stderr
    assert [a["answer"] for a in resumed.result("power-led")["operator_answers"]] == ["yes"]
    assert resumed.result("console-echo")["session"] == 1, "the finished test did not run again"


def test_without_a_terminal_or_an_answer_source_operator_tests_are_not_run(
    sim_board, results_root: Path
) -> None:
    run = _run_with_input(sim_board, results_root, None)
    _assert_operator_tests_not_run(run, "stdin is not a terminal and no --answers source was given")


def test_answers_from_a_file_that_ends_early_leave_the_unanswered_test_not_run(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    answers = tmp_path / "answers.txt"
    answers.write_text("yes\n")  # the LED: yes, no file; then the file ends
    run = _run_with_input(sim_board, results_root, None, "--answers", str(answers))

    assert run.code == 3, run.stderr
    assert run.outcomes() == {
        "console-echo": "pass",
        "power-led": "pass",
        "hdmi-picture": "not-run",
    }
    assert run.result("power-led")["operator_answers"][0]["attachment"] is None
    assert run.result("hdmi-picture")["reason"] == (
        "operator step not answered: the answers ended before "
        "'Does the monitor show a login prompt?'"
    )


def test_an_answers_file_that_does_not_exist_is_bad_input(
    tmp_path: Path, results_root: Path
) -> None:
    missing = tmp_path / "answers.txt"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--board", "sim", "--plan", str(PLAN),
         "--answers", str(missing), "--results", str(results_root), "--no-submit"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert str(missing) in done.stderr and "--answers" in done.stderr
    assert "no such file of operator answers" in done.stderr
    assert "Traceback" not in done.stderr
    assert not results_root.exists()
