"""One harness process working on one run: folder, board, facts, results, verdict.

The pytest plugin drives it (one call per test), but everything that must
survive a killed harness happens here: run.json exists from the first
moment (status "running"), each finished test is appended to results.jsonl
and fsync'd before pytest hears about it, and `--resume` rebuilds the state
from results.jsonl alone. At the end, tests that were planned but never
finished get a `not-run` line, and run.json and junit.xml are rewritten from
the folded results, so the files always agree with each other. Every line
and run.json is built as a record model (harness/model/records.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable

from harness import __version__
from harness.errors import HarnessError, InfraError, LabLost, UserError
from harness.lab.contract import BoardLink
from harness.model.board import BoardProfile
from harness.model.facts import InventoryRecord
from harness.model.plan import Plan, TestSpec
from harness.model.records import (
    BoardInfo,
    ErrorClass,
    ImageInfo,
    LabInfo,
    Outcome,
    PlanInfo,
    ResultRecord,
    RunRecord,
    SessionInfo,
    SoftwareInfo,
    WaiverInfo,
    run_error_class,
)
from harness.report.html import write_report_after_run
from harness.report.junit import write_junit
from harness.report.runfolder import INVENTORY, RunFolder, iso, new_run_id, utc_now
from harness.run import sysinfo, tools
from harness.run.boardlink import kernel_identity, open_board, software_identity
from harness.run.executor import TestExecutor
from harness.run.facts import discover_facts
from harness.run.operator import OperatorDesk
from harness.run.outcomes import FINISHED, count_outcomes, decide_verdict, exit_code_for

log = logging.getLogger(__name__)


@runtime_checkable
class RunListener(Protocol):
    """Progress views implement these four; a pytest plugin that does is told of the run."""

    def run_started(self, session: RunSession) -> None: ...
    def test_started(self, test: TestSpec) -> None: ...
    def test_finished(self, record: dict[str, Any]) -> None: ...
    def run_finished(self, session: RunSession) -> None: ...


@runtime_checkable
class LabGuard(Protocol):
    """A pytest plugin that knows whether the lab was lost under the run (a held place, say).

    Inside `interruptible()` the guard raises `LabLost` in the main thread the moment
    the lab is lost, so the test under way stops at once; a test that ends after the
    lab was lost is an infrastructure error, whatever it reached (someone else may have
    had the board meanwhile). The run stops there.
    """

    def lab_lost(self) -> str | None: ...
    def interruptible(self) -> contextlib.AbstractContextManager[None]: ...


def fold_results(records: Iterable[ResultRecord]) -> dict[str, ResultRecord]:
    """Last line per test id wins, except that a finished outcome is never replaced by not-run."""
    folded: dict[str, ResultRecord] = {}
    for record in records:
        previous = folded.get(record.id)
        if previous is not None and previous.outcome in FINISHED and record.outcome not in FINISHED:
            continue
        folded[record.id] = record
    return folded


class ResultsUnwritable(InfraError):
    """A finished test's result could not be written (e.g. the results disk is full).

    The run stops at once and writes nothing more: every line already in
    results.jsonl stays as it is, and `--resume` continues once there is room.
    """


class RunSession:
    """Create or resume a run; execute tests one by one; finish with verdict and reports."""

    def __init__(
        self,
        plan: Plan,
        profile: BoardProfile,
        *,
        env_file: Path | None,
        lab_kind: str,
        lab_name: str,
        results_root: Path,
        run_id: str | None = None,
        resume: bool = False,
        retries: int = 1,
        operator: str | None = None,
        selection: str | None = None,
        operator_input: TextIO | None = None,
        operator_absent: str = "nobody was set up to answer operator steps",
        board_opener: Callable[[BoardProfile, Path | None, Path], BoardLink] = open_board,
        today: Callable[[], dt.date] = dt.date.today,
        image: ImageInfo | None = None,
    ):
        self.plan = plan
        self.profile = profile
        # The one reading of the clock that decides waivers for this session: the executor
        # waives with it and run.json's `waivers[].active` says the same, even past midnight.
        self.waiver_date = today()
        self.env_file = env_file
        self.retries = retries
        self.listeners: list[RunListener] = []
        self.guards: list[LabGuard] = []
        self._board_opener = board_opener
        self._operator_input, self._operator_absent = operator_input, operator_absent
        self._board: BoardLink | None = None
        self._board_problem: str | None = None
        self._board_problem_class: ErrorClass | None = None
        self._facts: dict[str, Any] | None = None
        self._executor: TestExecutor | None = None
        self.stop_reason: str | None = None
        self.stop_class: ErrorClass | None = None
        if resume:
            if run_id is None:
                raise ValueError("resume needs a run id")
            self.folder = RunFolder.open_existing(results_root, run_id)
            self.run = self.folder.read_run()
        else:
            self.folder = RunFolder.create(results_root, run_id or new_run_id(profile.name))
            self.run = self._initial_run(lab_kind, lab_name, operator)
            self.run.image = image
        self.run.status = "running"
        self.run.sessions.append(
            SessionInfo(started_at=iso(utc_now()), pid=os.getpid(), selection=selection)
        )
        self.session_number = len(self.run.sessions)
        self.run.retries = retries
        self.folder.write_run(self.run)
        self.previous = fold_results(self.folder.read_results())

    # ---- state ------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.folder.run_id

    def finished_ids(self) -> set[str]:
        return {test_id for test_id, record in self.previous.items() if record.outcome in FINISHED}

    def results(self) -> dict[str, ResultRecord]:
        return fold_results(self.folder.read_results())

    def _initial_run(self, lab_kind: str, lab_name: str, operator: str | None) -> RunRecord:
        return RunRecord(
            run_id=self.folder.run_id,
            harness_version=__version__,
            status="running",
            plan=PlanInfo(
                id=self.plan.id,
                version=self.plan.version,
                sha256=self.plan.sha256,
                title=self.plan.title,
                file=str(self.plan.file),
                tests=[test.id for test in self.plan.tests],
                parameters=dict(self.plan.parameters),
            ),
            board=BoardInfo.of(self.profile),
            lab=LabInfo(
                kind=lab_kind,
                name=lab_name,
                host=socket.gethostname(),
                operator=operator or operator_name(),
            ),
            software=SoftwareInfo(),
            started_at=iso(utc_now()),
            verdict="incomplete",
            counts=count_outcomes([]),
            waivers=self._waivers(applied=set()),
        )

    def _waivers(self, applied: set[str]) -> list[WaiverInfo]:
        return [
            WaiverInfo(
                test=waiver.test,
                reason=waiver.reason,
                expires=waiver.expires.isoformat(),
                ticket=waiver.ticket,
                active=waiver.active_on(self.waiver_date),
                applied=waiver.test in applied,
            )
            for waiver in self.plan.waivers
        ]

    # ---- board ------------------------------------------------------------------------

    def _ensure_board(self) -> TestExecutor | None:
        """Open the board on first use; remember why if it cannot be opened."""
        if self._executor is not None or self._board_problem is not None:
            return self._executor
        try:
            board = self._board_opener(self.profile, self.env_file, self.folder.console_log)
            # Commands the plan or the diagnostics use that the unit lacks: helpers supplied.
            wanted = [*self.plan.tools, *sysinfo.TOOLS]
            self._board, self.run.tools = tools.supply(board, wanted)
            self._refresh_facts()
        except HarnessError as exc:  # InfraError, or a bad env file (UserError) found only now
            self._board_problem = f"{type(exc).__name__}: {exc}"
            self._board_problem_class = (
                ErrorClass.USER if isinstance(exc, UserError) else ErrorClass.INFRASTRUCTURE
            )
            return None
        self._executor = TestExecutor(
            board=self._board,
            profile=self.profile,
            plan=self.plan,
            facts=lambda: self._facts or {},
            artifacts=self.folder.artifacts,
            console_tail=self.console_tail,
            retries=self.retries,
            today=self.waiver_date,
            desk=OperatorDesk(
                self.run.lab.operator,
                self.folder.artifacts,
                self._operator_input,
                self._operator_absent,
                paused=self._listeners_paused,
            ),
        )
        return self._executor

    @contextlib.contextmanager
    def _listeners_paused(self) -> Iterator[None]:
        """While a person is asked: progress views that redraw (a live panel) hold still."""
        with contextlib.ExitStack() as stack:
            for listener in self.listeners:
                paused = getattr(listener, "paused", None)
                if paused is not None:
                    stack.enter_context(paused())
            yield

    def _refresh_facts(self) -> None:
        board = self._board
        assert board is not None
        facts = discover_facts(board)
        self._facts = facts.model_dump(mode="json")
        settle = board.last_settle
        kernel = kernel_identity(board)
        inventory = InventoryRecord(
            facts=facts,
            profile=self.profile.inventory,
            kernel=kernel,
            collected_at=iso(utc_now()),
            settle=settle.as_dict() if settle is not None else None,
        )
        self.folder.write_json(INVENTORY, inventory.model_dump(mode="json"))
        software = software_identity(board, facts)
        software["kernel_build_id"] = kernel["build_id"]
        software["kernel_identity"] = kernel
        self.run.software = SoftwareInfo.model_validate(software)
        self.folder.write_run(self.run)

    def console_tail(self, lines: int) -> str:
        try:
            with open(self.folder.console_log, "rb") as log:
                log.seek(0, os.SEEK_END)
                size = log.tell()
                log.seek(max(0, size - 16384))
                text = log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ---- per test ---------------------------------------------------------------------

    def execute(self, test: TestSpec) -> dict[str, Any]:
        """Run one test; returns its results.jsonl line (appended and fsync'd already)."""
        self._tell("test_started", lambda listener: listener.test_started(test))
        lost = self._lab_lost()
        if lost:
            self.stop_reason = f"lab lost: {lost}"
            self.stop_class = ErrorClass.INFRASTRUCTURE
            record = self._unrun_record(test, Outcome.ERROR, self.stop_reason, self.stop_class)
            record.attempt = 1
        else:
            record = self._execute_guarded(test)
        record.session = self.session_number
        record.plan_id = self.plan.id
        try:
            self.folder.append_result(record)
        except OSError as exc:
            raise ResultsUnwritable(
                f"cannot write the result of test {test.id!r} to {self.folder.results_file}: "
                f"{exc.strerror or exc}; nothing finished is lost: make room, then continue "
                f"with --resume {self.run_id}"
            ) from None
        line = record.line()
        self._tell("test_finished", lambda listener: listener.test_finished(line))
        return line

    def _execute_guarded(self, test: TestSpec) -> ResultRecord:
        """The executor's record, unless the lab was lost: then the test is an infrastructure
        error (stopped at once, or whatever it reached does not count) and the run stops.
        Nothing touches the board once it is lost (no refresh of facts, no recovery)."""
        try:
            with contextlib.ExitStack() as stack:
                for guard in self.guards:
                    stack.enter_context(guard.interruptible())
                executor = self._ensure_board()
                if executor is None:
                    self.stop_reason = f"board could not be opened: {self._board_problem}"
                    self.stop_class = self._board_problem_class
                    record = self._unrun_record(
                        test, Outcome.ERROR, self.stop_reason, self.stop_class
                    )
                    record.attempt = 1
                    return record
                record = executor.execute(test)
        except LabLost as gone:
            reason = f"the lab was lost during this test: {gone}"
            self.stop_reason, self.stop_class = f"lab lost: {gone}", ErrorClass.INFRASTRUCTURE
            record = self._unrun_record(test, Outcome.ERROR, reason, ErrorClass.INFRASTRUCTURE)
            record.attempt = 1
            return record
        lost = self._lab_lost()
        if lost:
            if record.outcome is not Outcome.ERROR:
                record.reason = (
                    f"the lab was lost during this test ({lost}); its outcome "
                    f"({record.outcome.value}) does not count"
                )
                record.outcome = Outcome.ERROR
                record.error_class = ErrorClass.INFRASTRUCTURE
            self.stop_reason, self.stop_class = f"lab lost: {lost}", ErrorClass.INFRASTRUCTURE
            return record
        reboots = any(step.kind in ("reboot", "power-cycle") for step in test.steps)
        if reboots and not executor.needs_recovery:
            try:
                self._refresh_facts()
            except HarnessError:  # the next test's recovery deals with the board
                log.info("facts not refreshed after %s rebooted the board", test.id, exc_info=True)
        if executor.board_lost:
            self.stop_reason = f"board lost: {executor.state.last_problem}"
            self.stop_class = ErrorClass.INFRASTRUCTURE
        return record

    def _lab_lost(self) -> str | None:
        for guard in self.guards:
            lost = guard.lab_lost()
            if lost:
                return lost
        return None

    def run_started(self) -> None:
        self._tell("run_started", lambda listener: listener.run_started(self))

    def _tell(self, event: str, call: Callable[[RunListener], None]) -> None:
        """A broken progress view must never cost a result: listener errors are reported, not raised."""
        for listener in self.listeners:
            try:
                call(listener)
            except Exception:
                log.warning("progress view failed in %s", event, exc_info=True)

    def _unrun_record(
        self, test: TestSpec, outcome: Outcome, reason: str, error_class: ErrorClass | None
    ) -> ResultRecord:
        now = iso(utc_now())
        return ResultRecord(
            id=test.id,
            title=test.title,
            category=test.category,
            blocker=bool(test.blocker),
            outcome=outcome,
            reason=reason,
            error_class=error_class,
            duration=0.0,
            started_at=now,
            finished_at=now,
            attempt=0,
            excerpt="",
            session=self.session_number,
            plan_id=self.plan.id,
        )

    # ---- end of run -------------------------------------------------------------------

    def finish(
        self, not_run_reasons: dict[str, str] | None = None, default_reason: str | None = None
    ) -> int:
        """Write not-run lines, run.json and junit.xml; return the exit code."""
        not_run_reasons = not_run_reasons or {}
        done = self.results()
        for test in self.plan.tests:
            record = done.get(test.id)
            if record is not None and record.outcome in FINISHED:
                continue
            reason = not_run_reasons.get(test.id)
            error_class = None
            if reason is None and self.stop_reason is not None:
                reason, error_class = self.stop_reason, self.stop_class
            reason = reason or default_reason or "run ended before this test started"
            if record is not None and record.outcome == "not-run" and record.reason == reason:
                continue
            if (  # not-run by its own doing in this session (an operator step nobody answered)
                record is not None
                and record.session == self.session_number
                and test.id not in not_run_reasons
            ):
                continue
            self.folder.append_result(
                self._unrun_record(test, Outcome.NOT_RUN, reason, error_class)
            )
        folded = self.results()
        ordered = [folded[test.id] for test in self.plan.tests if test.id in folded]
        counts = count_outcomes(ordered)
        verdict = decide_verdict(ordered)
        code = exit_code_for(verdict, counts)
        applied = {record.id for record in ordered if record.outcome == "waived"}
        self._collect_diagnostics()
        run = self.run
        run.status = "finished"
        run.finished_at = run.sessions[-1].finished_at = iso(utc_now())
        run.verdict = verdict
        run.error_class = run_error_class(ordered) if verdict == "incomplete" else None
        run.counts = counts
        run.waivers = self._waivers(applied)
        run.exit_code = code
        self.folder.write_run(run)
        write_junit(self.folder.junit_file, self.run, ordered)
        write_report_after_run(self.folder.path)
        self.close_board()
        self._tell("run_finished", lambda listener: listener.run_finished(self))
        return code

    def _collect_diagnostics(self) -> None:
        """The unit's diagnostics into the run folder (sysinfo.py), then the helper tools off
        the board; neither touches a lost lab or changes an outcome."""
        lost = self._lab_lost()
        if self._executor is not None or self.run.diagnostics is None:
            self.run.diagnostics = sysinfo.after_run(
                self._board, self._executor, lost, self._board_problem, self.folder.path,
                self.run.software.bootloader,
            )  # fmt: skip
        if isinstance(self._board, tools.ToolsBoard) and not lost:
            self._board.tools.remove()
            self.run.tools = self._board.tools.info(self.run.tools.probed if self.run.tools else [])

    def halt(self) -> None:
        """Stop without writing anything (interrupted, or the results disk is full).

        run.json keeps `status: running`, exactly as after a SIGKILL, so the run
        is not submitted and `--resume` continues it from its first unfinished test.
        """
        self.close_board()

    def close_board(self) -> None:
        if self._board is not None:
            try:
                self._board.close()
            except Exception:  # results are written; a board that will not log out costs nothing
                log.info("closing the board did not complete", exc_info=True)
            self._board = None
            self._executor = None


def operator_name() -> str:
    """Who runs this: $HARNESS_OPERATOR, else the login name (run.json's `lab.operator`)."""
    for name in ("HARNESS_OPERATOR", "USER", "LOGNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
