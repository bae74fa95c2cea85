"""`harness run` rejects bad options before touching a board: exit 2, one paragraph, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from tests.run.conftest import PLANS, REPO

BOARD = str(REPO / "boards" / "qemu-x86_64.yaml")
PLAN = str(PLANS / "all-pass.yaml")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--board", "no-such-board", "--plan", PLAN], "no board profile named 'no-such-board'"),
        (["--board", BOARD, "--plan", "missing-plan.yaml"], "missing-plan.yaml: file not found"),
        (
            ["--board", BOARD, "--plan", PLAN, "--env", "nowhere.yaml"],
            "labgrid environment file not found",
        ),
        (
            ["--board", BOARD, "--plan", PLAN, "--env", PLAN, "--place", "rpi4-07"],
            "give --env or --place/--reserve, not both",
        ),
        (
            ["--board", BOARD, "--plan", PLAN, "--place", "rpi4-07", "--reserve", "board=rpi4"],
            "give --place or --reserve, not both",
        ),
        (["--board", BOARD, "--plan", PLAN, "--wait"], "--wait needs --place or --reserve"),
        (["--board", BOARD, "--plan", PLAN, "--reserve", "board"], "'board' is not a tag filter"),
        (["--board", BOARD, "--plan", PLAN, "--place", "rpi4-07"], "$LG_COORDINATOR"),
        (["--board", BOARD, "--plan", PLAN, "--resume", "yesterday"], "is not a run id"),
        (
            ["--board", BOARD, "--plan", PLAN, "--env", PLAN],
            "no target 'main' in the labgrid environment",
        ),
        (["--board", BOARD, "--plan", PLAN, "--retries", "-1"], "--retries"),
    ],
    ids=[
        "unknown-board",
        "missing-plan",
        "missing-env",
        "env-and-place",
        "place-and-reserve",
        "wait-without-place",
        "malformed-reserve",
        "place-without-coordinator",
        "bad-run-id",
        "env-not-labgrid",
        "negative-retries",
    ],
)
def test_bad_run_options_exit_2_with_a_clear_message_and_no_run_folder(
    argv: list[str],
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["run", *argv, "--no-submit"])
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert words in err
    assert "Traceback" not in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("command", ["run", "repro"])
def test_a_results_option_that_names_a_file_exits_2_and_leaves_the_file_alone(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results.txt"
    results.write_text("notes\n")
    given = (
        ["run", "--board", BOARD, "--plan", PLAN]
        if command == "run"
        else ["repro", str(REPO / "testplans" / "cases" / "always.yaml"), "--board", BOARD]
    )
    with pytest.raises(SystemExit) as exited:
        main([*given, "--results", str(results), "--no-submit"])
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert f"{results}, field '--results': is not a folder" in err
    assert "Traceback" not in err
    assert results.read_text() == "notes\n"
