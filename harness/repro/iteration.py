"""One iteration of a case on a board: setup, trigger, cleanup, then reproduced or not.

The outcome rules (docs/repro.md):

- `error` (the lab's fault, never counted): a setup step did not work, the
  console or SSH link was lost without a crash to explain it, a put/get or a
  reboot step failed. The board is recovered before the next iteration.
- otherwise the signature decides `reproduced` / `not-reproduced`: exit status
  of a trigger `run` step, regexes on the trigger output, a kernel crash kind
  seen on the console, a timeout (the command overran, or the shell stopped
  answering: a hang), and/or a crash with the same fingerprint as one in the
  customer's log.

Steps run on the board only: `run` over the board's console or SSH, the other
kinds through the plan step runner (harness/run/steps.py), which talks to the
board's power switch and SFTP. Nothing of the case executes on the lab host.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InfraError
from harness.lab.crashwatch import most_severe
from harness.lab.errors import BoardCrashed, BoardFault, CommandTimeout, ShellUnresponsive
from harness.model.board import BoardProfile
from harness.model.case import Case, CaseStep
from harness.model.case_records import CommandOutput, Evidence, Fingerprint, IterationRecord
from harness.report.runfolder import iso, utc_now
from harness.repro import fingerprint as fp
from harness.run.context import TestContext, Transcript
from harness.run.steps import run_steps

CONSOLE_SLICE_BYTES = 64 * 1024
OUTPUT_LINES = 200
CRASH_SEVERITIES = frozenset({"fatal", "error"})


class SetupFailed(Exception):
    """A setup step did not work: the iteration could not test anything."""


@dataclass
class _Trace:
    outputs: list[CommandOutput] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    timed_out: bool = False
    hung: bool = False  # the shell stopped answering (not just a command that overran)
    crash_kind: str | None = None
    crash_line: str = ""
    infra: str | None = None
    needs_recovery: bool = False


def _trim(text: str) -> str:
    lines = text.rstrip("\n").splitlines()
    return "\n".join(lines[-OUTPUT_LINES:])


class IterationRunner:
    """Runs iterations of one case on one open board; keeps the board usable between them."""

    def __init__(
        self,
        board: Any,
        profile: BoardProfile,
        case: Case,
        console_log: Path,
        artifacts: Path,
        customer: list[Fingerprint],
        facts: dict[str, Any],
    ):
        self.board = board
        self.profile = profile
        self.case = case
        self.console_log = console_log
        self.artifacts = artifacts
        self.customer = customer
        self.facts = facts
        self.failed_recoveries = 0

    # ---- recovery ------------------------------------------------------------------------

    def recover(self) -> str | None:
        """A working shell again (re-login, else power cycle); None on success, else why not."""
        try:
            self.board.ensure_shell()
            self.failed_recoveries = 0
            return None
        except (InfraError, BoardFault) as first:
            try:
                self.board.power_cycle()
                self.board.ensure_shell()
                self.failed_recoveries = 0
                return None
            except (InfraError, BoardFault) as second:
                self.failed_recoveries += 1
                return f"{type(first).__name__}: {first}; then power cycle: {second}"

    def between(self, how: str) -> str | None:
        """Reboot or power-cycle between iterations; a failure is recovered, and reported."""
        if how == "none":
            return None
        try:
            self.board.reboot() if how == "reboot" else self.board.power_cycle()
            return None
        except (InfraError, BoardFault) as exc:
            problem = self.recover()
            return f"{how} between iterations failed ({exc})" + (
                f"; recovery failed: {problem}" if problem else ""
            )

    # ---- one iteration -------------------------------------------------------------------

    def run(self, number: int, session: int) -> IterationRecord:
        started = utc_now()
        clock = time.monotonic()
        mark = self.console_log.stat().st_size if self.console_log.exists() else 0
        crashes_before = len(list(getattr(self.board, "crash_events", []) or []))
        trace = _Trace()
        boot_id = None
        try:
            boot_id = self.board.boot_id()
            self._phase("setup", trace, clock)
        except SetupFailed as failed:
            return self._error(number, session, started, clock, f"setup failed: {failed}", trace)
        except BoardCrashed as crash:
            trace.needs_recovery = True
            recovery = self._recover_note()
            return self._error(
                number,
                session,
                started,
                clock,
                f"board crashed during setup: {crash}",
                trace,
                recovery,
            )
        except (InfraError, BoardFault) as exc:
            recovery = self._recover_note()
            return self._error(
                number,
                session,
                started,
                clock,
                f"{type(exc).__name__} during setup: {exc}",
                trace,
                recovery,
            )
        self._trigger(trace, clock, crashes_before)
        recovery = self._recover_note() if trace.needs_recovery else None
        if trace.infra is not None and trace.crash_kind is None:
            return self._error(number, session, started, clock, trace.infra, trace, recovery)
        console = self._console_since(mark)
        crash = self._board_crash(console, trace)
        try:
            self._phase("cleanup", trace, clock, strict=False)
        except (InfraError, BoardFault, SetupFailed) as exc:
            problem = self.recover()
            recovery = (
                (recovery or "")
                + f"cleanup failed ({exc}); "
                + (f"recovery failed: {problem}" if problem else "recovered")
            )
        matched, wanted = self._match(trace, crash)
        signature = self.case.spec.signature
        reproduced = bool(matched) and (signature.match == "any" or len(matched) == wanted)
        match = fp.compare(crash, self.customer) if self.customer else None
        reason = self._reason(reproduced, matched, trace, crash, match)
        evidence = None
        if reproduced or crash is not None or trace.timed_out:  # what an engineer looks at
            evidence = Evidence(
                console=console[-CONSOLE_SLICE_BYTES:],
                dmesg=self._dmesg(),
                outputs=trace.outputs,
            )
        return IterationRecord(
            iteration=number,
            session=session,
            outcome="reproduced" if reproduced else "not-reproduced",
            reason=reason,
            matched=matched,
            signature_match=match,
            crash=crash,
            timed_out=trace.timed_out,
            started_at=iso(started),
            finished_at=iso(utc_now()),
            duration=round(time.monotonic() - clock, 3),
            boot_id=boot_id,
            evidence=evidence,
            recovery=recovery,
        )

    # ---- phases --------------------------------------------------------------------------

    def _context(self, phase: str) -> TestContext:
        spec = self.case.phase(phase)
        return TestContext(
            board=self.board,
            profile=self.profile,
            facts=self.facts,
            test=spec,
            artifacts=self.artifacts,
            transcript=Transcript(),
            transport=self.case.spec.settings.transport,
        )

    def _remaining(self, clock: float) -> float:
        return max(self.case.spec.settings.timeout - (time.monotonic() - clock), 1.0)

    def _run_command(
        self, phase: str, step: CaseStep, timeout: float, trace: _Trace
    ) -> tuple[int, str]:
        via = step.transport or self.case.spec.settings.transport
        session = self.board.ssh if via == "ssh" else self.board.console
        result = session.run(step.run or "", timeout=timeout)
        output = result.stdout + (("\n[stderr]\n" + result.stderr) if result.stderr else "")
        trace.outputs.append(
            CommandOutput(
                phase=phase,  # type: ignore[arg-type]
                command=step.run or "",
                exit_status=result.exit_status,
                output=_trim(output),
                duration=round(result.duration, 3),
            )
        )
        return result.exit_status, output

    def _phase(self, phase: str, trace: _Trace, clock: float, strict: bool = True) -> None:
        """Setup (strict: any problem is SetupFailed) or cleanup (problems only noted)."""
        steps: list[CaseStep] = list(getattr(self.case.spec, phase))
        for index, step in enumerate(steps, start=1):
            if step.kind == "run":
                status, output = self._run_command(phase, step, self._remaining(clock), trace)
                problems = []
                if step.expect is not None:
                    from harness.run.expect import check_expectations

                    problems, _ = check_expectations(step.expect, status, output, "", {})
                elif status != 0:
                    problems = [f"exit status {status}, expected 0"]
            else:
                result = run_steps(
                    self._context(phase), [step], time.monotonic() + self._remaining(clock), {}
                )
                problems = result.problems
            if problems and strict:
                raise SetupFailed(f"step {index} ({step.kind}): {problems[0]}")

    def _trigger(self, trace: _Trace, clock: float, crashes_before: int) -> None:
        deadline = clock + self.case.spec.settings.timeout
        current = self.case.spec.trigger[0]
        try:
            for index, step in enumerate(self.case.spec.trigger, start=1):
                current = step
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    trace.timed_out = True
                    return
                if step.kind == "run":
                    status, _ = self._run_command("trigger", step, max(remaining, 1.0), trace)
                    trace.statuses.append(status)
                    continue
                result = run_steps(self._context("trigger"), [step], deadline, {})
                if result.problems:
                    trace.infra = f"trigger step {index} ({step.kind}): {result.problems[0]}"
                    return
        except CommandTimeout as overran:
            trace.timed_out = True
            trace.outputs.append(
                CommandOutput(
                    phase="trigger",
                    command=overran.command,
                    exit_status=None,
                    output=_trim(overran.output or ""),
                    duration=round(overran.timeout, 3),
                )
            )
        except ShellUnresponsive as hung:
            trace.timed_out = True
            trace.needs_recovery = True
            trace.hung = True
            # Only what the board printed: the harness's own message quotes the command, and
            # a signature regex must never match the case's own command text.
            trace.outputs.append(
                CommandOutput(
                    phase="trigger",
                    command=str(current.run or ""),
                    exit_status=None,
                    output=_trim(hung.output),
                    duration=round(time.monotonic() - clock, 3),
                )
            )
        except BoardCrashed as crash:
            trace.needs_recovery = True
            trace.crash_kind = crash.kind
            trace.crash_line = crash.event.line
        except InfraError as infra:
            trace.needs_recovery = True
            events = [
                e
                for e in list(getattr(self.board, "crash_events", []) or [])[crashes_before:]
                if e.severity in CRASH_SEVERITIES
            ]
            event = most_severe(events) if events else None
            if event is not None:  # e.g. the panic dropped the SSH link
                trace.crash_kind, trace.crash_line = event.kind, event.line
            else:
                trace.infra = f"{type(infra).__name__}: {infra}"

    # ---- evidence and matching -----------------------------------------------------------

    def _recover_note(self) -> str:
        problem = self.recover()
        return f"recovery failed: {problem}" if problem else "recovered (working shell)"

    def _console_since(self, mark: int) -> str:
        try:
            with open(self.console_log, "rb") as log:
                log.seek(mark)
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _board_crash(self, console: str, trace: _Trace) -> Fingerprint | None:
        found = fp.fingerprints(console)
        if found:
            return found[0]
        if trace.crash_kind is not None:  # seen live, but the log slice had no trace of it
            return fp.bare(trace.crash_kind, trace.crash_line)
        return None

    def _dmesg(self) -> str | None:
        try:
            result = self.board.console.run("dmesg 2>/dev/null | tail -n 100", timeout=20)
        except (InfraError, BoardFault):
            return None
        return _trim(result.stdout)

    def _match(self, trace: _Trace, crash: Fingerprint | None) -> tuple[list[str], int]:
        """(signature parts that held, number of parts the signature gives)."""
        signature = self.case.spec.signature
        matched: list[str] = []
        wanted = 0
        if signature.exit_status:
            wanted += 1
            hit = [s for s in trace.statuses if s in signature.exit_status]
            if hit:
                matched.append(f"exit_status {hit[0]}")
        if signature.output:
            wanted += 1
            text = "\n".join(o.output for o in trace.outputs if o.phase == "trigger")
            for regex in signature.output:
                if re.search(regex, text, re.MULTILINE):
                    matched.append(f"output /{regex}/")
                    break
        if signature.crash:
            wanted += 1
            if crash is not None and crash.kind in signature.crash:
                matched.append(f"crash {crash.kind}")
        if signature.timeout:
            wanted += 1
            if trace.timed_out:
                matched.append("timeout")
        if signature.customer_log:
            wanted += 1
            if crash is not None and fp.compare(crash, self.customer) == "same failure":
                matched.append("customer_log same failure")
        return matched, wanted

    def _reason(
        self,
        reproduced: bool,
        matched: list[str],
        trace: _Trace,
        crash: Fingerprint | None,
        match: str | None,
    ) -> str:
        parts = []
        if crash is not None:
            parts.append(f"crash {crash.kind} in {crash.function or '?'}")
        if trace.timed_out:
            parts.append(
                f"timed out after {self.case.spec.settings.timeout:g} s"
                + (" and the shell stopped answering" if trace.hung else "")
            )
        if match is not None:
            parts.append(f"{match} vs the customer log")
        seen = "; ".join(parts)
        if reproduced:
            return "reproduced: " + ", ".join(matched) + (f" ({seen})" if seen else "")
        if matched:
            return (
                "signature only partly matched ("
                + ", ".join(matched)
                + ")"
                + (f"; {seen}" if seen else "")
            )
        return "signature not seen" + (f"; {seen}" if seen else "")

    def _error(
        self,
        number: int,
        session: int,
        started: Any,
        clock: float,
        reason: str,
        trace: _Trace,
        recovery: str | None = None,
    ) -> IterationRecord:
        return IterationRecord(
            iteration=number,
            session=session,
            outcome="error",
            reason=reason,
            started_at=iso(started),
            finished_at=iso(utc_now()),
            duration=round(time.monotonic() - clock, 3),
            evidence=Evidence(console="", outputs=trace.outputs),
            recovery=recovery,
        )
