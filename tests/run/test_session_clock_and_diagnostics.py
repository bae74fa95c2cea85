"""The run session reads the waiver clock once, and logs what it swallows with the cause.

A waiver's state decides an outcome (results.jsonl) and is reported again in run.json
(`waivers[].active`): both come from the one date the session was given, so they cannot
disagree. What the session swallows so a run can go on (a broken progress view, a board
that will not close) reaches the harness's own log (harness/diagnostics.py) with its cause.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from harness.diagnostics import configure
from harness.errors import InfraError
from harness.model.board import load_board
from harness.model.plan import load_plan
from harness.run.session import RunSession
from harness.vlab.boardhost import SIM_PROFILE

PLAN = """\
kind: plan
id: waiver-clock
version: "1"
title: A failing test under a waiver that ends on 2030-06-01
tests:
  - id: hot
    title: too hot
    category: thermal
    steps:
      - run: echo 'temperature 93 C'
        expect:
          compare:
            - {name: temperature, regex: 'temperature (\\d+) C', op: "<", value: 85, unit: C}
waivers:
  - {test: hot, reason: engineering samples, expires: 2030-06-01, ticket: LAB-9}
"""


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "waiver-clock.yaml"
    path.write_text(PLAN)
    return path


@pytest.mark.parametrize(
    ("today", "outcome", "active"),
    [(dt.date(2030, 6, 1), "waived", True), (dt.date(2030, 6, 2), "fail", False)],
)
def test_the_injected_date_decides_the_waiver_in_results_and_run_json_alike(
    sim_board: Any, plan_file: Path, tmp_path: Path, today: dt.date, outcome: str, active: bool
) -> None:
    session = RunSession(
        load_plan(plan_file),
        sim_board.profile,
        env_file=sim_board.env_file,
        lab_kind="virtual",
        lab_name="sim",
        results_root=tmp_path / "results",
        today=lambda: today,
    )
    line = session.execute(session.plan.test("hot"))
    session.finish()
    assert line["outcome"] == outcome, line["reason"]
    if outcome == "fail":
        assert "waiver expired on 2030-06-01" in line["reason"]
    (waiver,) = session.folder.read_run().waivers
    assert (waiver.active, waiver.applied) == (active, outcome == "waived")


def test_a_broken_progress_view_is_logged_with_its_cause_and_costs_no_result(
    plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class BrokenView:
        def test_started(self, test: Any) -> None:
            raise RuntimeError("view lost its terminal")

        def __getattr__(self, name: str) -> Any:
            return lambda *args: None

    def no_board(*args: Any) -> Any:
        raise InfraError("console port 4001 refused the connection")

    log_file = tmp_path / "harness.log"
    configure(0, log_file)  # as `harness --log-file harness.log run ...` does
    try:
        session = RunSession(
            load_plan(plan_file),
            load_board(SIM_PROFILE),
            env_file=None,
            lab_kind="env",
            lab_name="bench-3",
            results_root=tmp_path / "results",
            board_opener=no_board,
        )
        session.listeners.append(BrokenView())  # type: ignore[arg-type]
        line = session.execute(session.plan.test("hot"))
    finally:
        for handler in logging.getLogger("harness").handlers[:]:
            logging.getLogger("harness").removeHandler(handler)
            handler.close()
    assert line["outcome"] == "error" and "refused the connection" in line["reason"]
    assert [r.id for r in session.folder.read_results()] == ["hot"]
    stderr = capsys.readouterr().err
    assert (
        "harness: progress view failed in test_started (RuntimeError: view lost its terminal)"
        in stderr
    )
    logged = log_file.read_text()
    assert "WARNING harness.run.session: progress view failed in test_started" in logged
    assert "Traceback" in logged and "RuntimeError: view lost its terminal" in logged
