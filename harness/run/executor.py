"""Running one test to an outcome: applicability, steps, crash handling, retries, waivers.

The rules (see docs/plan-format.md "Outcomes"):

- `requires` false -> `skip`, with the values that made it false.
- An expectation not met, a python step's AssertionError, a command that
  overran its timeout but left a working shell, a kernel crash or an
  unexpected reset seen on the console -> `fail` (the board failed). Crashes
  carry the console excerpt.
- A lab problem (`InfraError`: console lost or silent, SSH link dropped, power
  switch failed, the board did not come back) -> `error`; the board is
  recovered (shell re-established, power-cycled if need be) and the test is
  tried again up to `retries` times. Failures are never retried.
- If an InfraError turns out to have been caused by a crash the console saw
  (panic during an SSH command drops the link), it is a `fail` with the
  crash excerpt, not an `error`.
- A `fail` covered by an unexpired waiver -> `waived`.

Recovery happens before the next attempt or test, never skipped: one broken
test must not leave a broken board for the rest of the plan (labgrid's
pytest plugin, by contrast, skips every later test once a strategy raised).
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InfraError
from harness.lab.contract import BoardLink
from harness.lab.crashwatch import CrashEvent, most_severe
from harness.lab.errors import (
    BoardCrashed,
    BoardFault,
    CommandTimeout,
    HostKeyRejected,
    SSHError,
)
from harness.lab.states import BoardState
from harness.model.board import BoardProfile
from harness.model.plan import Plan, TestSpec
from harness.model.records import AppliedWaiver, ErrorClass, PreviousAttempt, ResultRecord
from harness.model.requires import resolve_path
from harness.report.runfolder import iso, utc_now
from harness.run.context import StepFailed, TestContext, Transcript
from harness.run.errorclass import classify, describe
from harness.run.outcomes import Outcome
from harness.run.steps import run_steps

EXCERPT_LINES = 40
CRASH_SEVERITIES = frozenset({"fatal", "error"})


@dataclass
class RecoveryRecord:
    """Recoveries that failed in a row: after `max_failed_recoveries` the board is lost.
    (Whether the board needs recovery at all is its own state: `board.state`.)"""

    failed_recoveries: int = 0
    last_problem: str = ""


@dataclass
class Attempt:
    outcome: Outcome
    reason: str
    excerpt: str = ""
    measurements: list[dict[str, Any]] = field(default_factory=list)
    transcript: str = ""
    crash: dict[str, Any] | None = None
    console_events: list[dict[str, Any]] = field(default_factory=list)
    error_class: ErrorClass | None = None


class TestExecutor:
    """Owns the board-recovery state across tests; `execute(test)` returns a results.jsonl record."""

    __test__ = False

    def __init__(
        self,
        board: BoardLink,
        profile: BoardProfile,
        plan: Plan,
        facts: Callable[[], dict[str, Any]],
        artifacts: Path,
        console_tail: Callable[[int], str],
        today: dt.date,
        retries: int = 1,
        max_failed_recoveries: int = 3,
    ):
        """`today` decides which waivers are active: the run session's one reading of the
        clock, so results.jsonl and run.json agree."""
        self.board = board
        self.profile = profile
        self.plan = plan
        self.facts = facts
        self.artifacts = artifacts
        self.console_tail = console_tail
        self.retries = retries
        self.max_failed_recoveries = max_failed_recoveries
        self.today = today
        self.state = RecoveryRecord()

    # ---- public -----------------------------------------------------------------------

    def execute(self, test: TestSpec) -> ResultRecord:
        started = utc_now()
        clock = time.monotonic()
        scope = self.scope()
        history: list[PreviousAttempt] = []
        expr = test.requires_expr
        if expr is not None and not expr.evaluate(scope):
            attempt = Attempt(Outcome.SKIP, self._why_not(test, scope))
            return self._record(test, attempt, 1, history, started, clock)
        number = 0
        while True:
            number += 1
            attempt = self._attempt(test)
            if attempt.outcome is not Outcome.ERROR or number > self.retries:
                break
            history.append(
                PreviousAttempt(
                    attempt=number,
                    outcome="error",
                    reason=attempt.reason,
                    error_class=attempt.error_class,
                )
            )
            if self.state.failed_recoveries >= self.max_failed_recoveries:
                break
        if attempt.outcome is Outcome.FAIL:
            attempt = self._apply_waiver(test, attempt)
        return self._record(test, attempt, number, history, started, clock)

    def scope(self) -> dict[str, Any]:
        return {
            "board": self.profile.model_dump(mode="json", by_alias=False),
            "facts": self.facts(),
        }

    @property
    def board_lost(self) -> bool:
        return self.state.failed_recoveries >= self.max_failed_recoveries

    # ---- one attempt ------------------------------------------------------------------

    def _attempt(self, test: TestSpec) -> Attempt:
        """One attempt, plus every console event (warnings too) the crash watch saw during it."""
        before = len(self._crash_events())
        attempt = self._attempt_steps(test)
        attempt.console_events = [
            {"kind": e.kind, "severity": e.severity, "line": e.line.strip()}
            for e in self._crash_events()[before:]
        ]
        return attempt

    def _attempt_steps(self, test: TestSpec) -> Attempt:
        if self.needs_recovery:
            problem = self.recover()
            if problem is not None:
                return Attempt(
                    Outcome.ERROR,
                    f"board could not be recovered before the test: {problem}",
                    excerpt=self.console_tail(EXCERPT_LINES),
                    error_class=ErrorClass.INFRASTRUCTURE,
                )
        crashes_before = len(self._crash_events())
        transcript = Transcript()
        ctx = TestContext(
            board=self.board,
            profile=self.profile,
            facts=self.facts(),
            test=test,
            artifacts=self.artifacts,
            transcript=transcript,
            transport=test.transport or "console",
        )
        deadline = time.monotonic() + float(test.timeout or 60)
        try:
            result = run_steps(ctx, test.steps, deadline, self.scope())
        except BoardCrashed as crash:
            return self._crash_attempt(crash.event, transcript, ctx)
        except (
            BoardFault
        ) as fault:  # e.g. CommandTimeout: the shell was recovered, the board was slow
            output = fault.output if isinstance(fault, CommandTimeout) else ""
            return Attempt(
                Outcome.FAIL,
                str(fault),
                _tail(output),
                _measured(ctx),
                transcript.text(),
                error_class=ErrorClass.BOARD_FAULT,
            )
        except StepFailed as failed:
            return Attempt(
                Outcome.FAIL,
                str(failed),
                _tail(transcript.text()),
                _measured(ctx),
                transcript.text(),
            )
        except AssertionError as failed:
            reason = str(failed) or "python step assertion failed"
            return Attempt(
                Outcome.FAIL, reason, _traceback_tail(failed), _measured(ctx), transcript.text()
            )
        except InfraError as infra:
            ssh_problem = isinstance(infra, SSHError) and not isinstance(infra, HostKeyRejected)
            recovery_problem = self.recover(check_ssh=ssh_problem)
            crash = self._new_crash(crashes_before)
            if crash is not None:
                transcript.note(f"{type(infra).__name__}: {infra} (caused by the crash below)")
                return self._crash_attempt(crash, transcript, ctx)
            reason = f"{type(infra).__name__}: {infra}"
            if recovery_problem:
                reason += f"; recovery failed: {recovery_problem}"
            return Attempt(
                Outcome.ERROR,
                reason,
                self.console_tail(EXCERPT_LINES),
                _measured(ctx),
                transcript.text(),
                error_class=ErrorClass.INFRASTRUCTURE,
            )
        except Exception as bug:  # the plan's python code or the harness broke: not the lab
            error_class = classify(bug)
            return Attempt(
                Outcome.ERROR,
                describe(bug, error_class),
                _traceback_tail(bug),
                _measured(ctx),
                transcript.text(),
                error_class=error_class,
            )
        measurements = [m.as_dict() for m in result.measurements]
        crash = self._new_crash(crashes_before)
        if crash is not None:
            # The steps got their answers, but the board crashed or reset on its own while
            # the test ran (say, while coming back from a reboot the test asked for, which
            # the board drives through): that is never a pass.
            transcript.note("the steps finished, but the board crashed or reset during the test")
            return self._crash_attempt(crash, transcript, ctx)
        if result.problems:
            return Attempt(
                Outcome.FAIL,
                result.problems[0],
                _tail(result.last_output),
                measurements,
                transcript.text(),
            )
        return Attempt(Outcome.PASS, "", "", measurements, transcript.text())

    def _crash_attempt(
        self, event: CrashEvent, transcript: Transcript, ctx: TestContext
    ) -> Attempt:
        crash = event.to_dict()
        reason = f"board crashed: {event.kind}: {event.line.strip()}"
        return Attempt(
            Outcome.FAIL,
            reason,
            event.excerpt,
            _measured(ctx),
            transcript.text(),
            crash,
            error_class=ErrorClass.BOARD_FAULT,
        )

    def _probe_ssh(self) -> None:
        """SSH answers a trivial command (raises the SSH error if not)."""
        self.board.ssh.run("true", timeout=30)

    def recover(self, check_ssh: bool = False) -> str | None:
        """Get back to a working shell; returns None on success, else what went wrong.

        With `check_ssh` (the error was SSH's), SSH must answer too: a console
        that works does not bring back a killed SSH server or a downed network
        link, a power cycle does.

        A crash reported while recovering (the console finally showing the
        panic) is already in `crash_events`; it only means a power cycle is due. The board
        state machine does the whole climb (resync, wait out a boot, log in, power-cycle a
        crashed or stuck board), so one call is the whole recovery.
        """
        try:
            self.board.ensure_shell()
            if check_ssh:
                self._probe_ssh()
        except (InfraError, BoardFault) as first:
            try:
                self.board.power_cycle()
                self.board.ensure_shell()
                if check_ssh:
                    self._probe_ssh()
            except (InfraError, BoardFault) as second:
                self.state.failed_recoveries += 1
                self.state.last_problem = (
                    f"{type(first).__name__}: {first}; then power cycle: {second}"
                )
                return self.state.last_problem
        self.state.failed_recoveries = 0
        return None

    @property
    def needs_recovery(self) -> bool:
        """The console shell is gone (crash, hang, reset, lost link): recover before a test."""
        return self.board.state is not BoardState.SHELL

    def _crash_events(self) -> list[CrashEvent]:
        return self.board.crash_events

    def _new_crash(self, before: int) -> CrashEvent | None:
        """The most severe crash/reset (not a mere warning) seen since the attempt began."""
        events = [e for e in self._crash_events()[before:] if e.severity in CRASH_SEVERITIES]
        return most_severe(events)

    # ---- bookkeeping ------------------------------------------------------------------

    def _apply_waiver(self, test: TestSpec, attempt: Attempt) -> Attempt:
        waiver = self.plan.waiver_for(test.id)
        if waiver is None:
            return attempt
        if not waiver.active_on(self.today):
            attempt.reason += f" (waiver expired on {waiver.expires.isoformat()}: {waiver.reason})"
            return attempt
        attempt.outcome = Outcome.WAIVED
        attempt.reason = f"waived until {waiver.expires.isoformat()} ({waiver.reason}); failure: {attempt.reason}"
        return attempt

    def _why_not(self, test: TestSpec, scope: dict[str, Any]) -> str:
        expr = test.requires_expr
        assert expr is not None
        values = ", ".join(f"{path} = {resolve_path(path.parts, scope)!r}" for path in expr.paths())
        return f"not applicable: requires {expr.text!r} is false ({values})"

    def _record(
        self,
        test: TestSpec,
        attempt: Attempt,
        number: int,
        history: list[PreviousAttempt],
        started: dt.datetime,
        clock: float,
    ) -> ResultRecord:
        waiver = self.plan.waiver_for(test.id)
        applied = None
        if waiver is not None and attempt.outcome is Outcome.WAIVED:
            applied = AppliedWaiver(
                reason=waiver.reason, expires=waiver.expires.isoformat(), ticket=waiver.ticket
            )
        return ResultRecord.model_validate(
            {
                "id": test.id,
                "title": test.title,
                "category": test.category,
                "blocker": bool(test.blocker),
                "outcome": attempt.outcome,
                "reason": attempt.reason,
                "error_class": attempt.error_class,
                "duration": round(time.monotonic() - clock, 3),
                "started_at": iso(started),
                "finished_at": iso(utc_now()),
                "attempt": number,
                "previous_attempts": history,
                "measurements": attempt.measurements,
                "excerpt": attempt.excerpt,
                "log": attempt.transcript,
                "crash": attempt.crash,
                "console_events": attempt.console_events,
                "waiver": applied,
            }
        )


def _measured(ctx: TestContext) -> list[dict[str, Any]]:
    return [m.as_dict() for m in ctx.measurements]


def _tail(text: str, lines: int = EXCERPT_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _traceback_tail(exc: BaseException) -> str:
    return _tail("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), 15)
