"""Resume after the harness was SIGKILLed: nothing finished is lost, nothing runs twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.model.records import ResultRecord
from harness.report.runfolder import RunFolder
from tests.run.conftest import harness_run
from tests.run.resume_helpers import SLOW_COMMAND, kill_during_slow_test, resume, sent_count


def test_sigkill_mid_test_then_resume_loses_nothing_and_runs_nothing_twice(
    sim_board, results_root: Path
) -> None:
    run_dir = kill_during_slow_test(sim_board, results_root)
    killed = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in killed] == ["first", "second", "third"], (
        "finished tests were on disk at the kill"
    )
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    # The kill could also have landed while a line was being written: a torn line must not matter.
    with open(run_dir / "results.jsonl", "a") as results:
        results.write('{"id": "slow", "outcome": "pa')

    run = resume(sim_board, results_root, run_dir.name)

    assert run.code == 0, run.stderr
    lines = run.lines()
    assert sorted(r["id"] for r in lines) == sorted(
        ["first", "second", "third", "slow", "fifth", "sixth"]
    )
    assert {r["id"]: r["session"] for r in lines} == {
        "first": 1,
        "second": 1,
        "third": 1,
        "slow": 2,
        "fifth": 2,
        "sixth": 2,
    }
    assert all(r["outcome"] == "pass" for r in lines)
    meta = run.run_json()
    assert meta["verdict"] == "certified" and meta["counts"]["pass"] == 6
    assert len(meta["sessions"]) == 2
    log = run_dir / "console.log"
    assert sent_count(log, "echo one") == 1, "a finished test was run again"
    assert sent_count(log, SLOW_COMMAND) == 2, "the interrupted test runs again"
    assert "resumed: 3 already finished" in run.stderr


def test_resume_with_a_changed_plan_is_refused_with_exit_2(
    sim_board, results_root: Path, tmp_path: Path
) -> None:
    first = harness_run(sim_board, "blocker-fails.yaml", results_root)
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        (Path(__file__).parent / "plans" / "blocker-fails.yaml")
        .read_text()
        .replace("passes", "passes!")
    )
    again = harness_run(sim_board, changed, results_root, "--resume", first.folder.name)
    assert again.code == 2
    assert "has changed since run" in again.stderr


def test_resume_of_unknown_run_id_is_bad_input(sim_board, results_root: Path) -> None:
    results_root.mkdir()
    run = harness_run(sim_board, "slow.yaml", results_root, "--resume", "20260101T000000Z-sim-abcd")
    assert run.code == 2
    assert "no run '20260101T000000Z-sim-abcd' to resume" in run.stderr


def _line(test_id: str) -> ResultRecord:
    return ResultRecord(
        id=test_id, title=test_id, category="demo", blocker=True, outcome="pass", reason="",
        duration=0.5, attempt=1, excerpt="", session=1, plan_id="demo",
    )  # fmt: skip


def _text(test_id: str) -> str:
    return json.dumps(_line(test_id).line(), separators=(",", ":"))


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (f"{_text('a')}\n{_text('b')}\n", ["a", "b"]),
        (f"{_text('a')}\n{_text('b')[:25]}", ["a"]),
        (f"{_text('a')}\n{_text('b')}", ["a"]),
        ("", []),
    ],
    ids=["complete", "torn-json", "unterminated-line", "empty"],
)
def test_torn_last_line_is_ignored_and_cut_before_the_next_append(
    tmp_path: Path, content: str, kept: list[str]
) -> None:
    folder = RunFolder(tmp_path)
    (tmp_path / "results.jsonl").write_text(content)
    assert [r.id for r in folder.read_results()] == kept
    folder.repair_results()
    folder.append_result(_line("c"))
    assert [r.id for r in folder.read_results()] == [*kept, "c"]
