"""One harness process working on one run: folder, board, facts, results, verdict.

The pytest plugin drives it (one call per test), but everything that must
survive a killed harness happens here: run.json exists from the first
moment (status "running"), each finished test is appended to results.jsonl
and fsync'd before pytest hears about it, and `--resume` rebuilds the state
from results.jsonl alone. At the end, tests that were planned but never
finished get a `not-run` line, and run.json and junit.xml are rewritten from
the folded results, so the files always agree with each other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from harness import __version__
from harness.errors import HarnessError
from harness.model.board import BoardProfile
from harness.model.plan import Plan, TestSpec
from harness.report.junit import write_junit
from harness.report.runfolder import INVENTORY, RunFolder, iso, new_run_id, utc_now
from harness.run.boardlink import kernel_identity, open_board, software_identity
from harness.run.executor import TestExecutor
from harness.run.facts import discover_facts
from harness.run.outcomes import FINISHED, count_outcomes, decide_verdict, exit_code_for


class RunListener(Protocol):
    """Progress views implement these; all are optional to act on."""

    def run_started(self, session: RunSession) -> None: ...
    def test_started(self, test: TestSpec) -> None: ...
    def test_finished(self, record: dict[str, Any]) -> None: ...
    def run_finished(self, session: RunSession) -> None: ...


def fold_results(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Last line per test id wins, except that a finished outcome is never replaced by not-run."""
    folded: dict[str, dict[str, Any]] = {}
    for record in records:
        previous = folded.get(record["id"])
        if (
            previous is not None
            and previous["outcome"] in FINISHED
            and record["outcome"] not in FINISHED
        ):
            continue
        folded[record["id"]] = record
    return folded


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
        board_opener: Callable[[BoardProfile, Path | None, Path], Any] = open_board,
    ):
        self.plan = plan
        self.profile = profile
        self.env_file = env_file
        self.retries = retries
        self.listeners: list[Any] = []
        self._board_opener = board_opener
        self._board: Any = None
        self._board_problem: str | None = None
        self._facts: dict[str, Any] | None = None
        self._software: dict[str, Any] | None = None
        self._executor: TestExecutor | None = None
        self.stop_reason: str | None = None
        if resume:
            if run_id is None:
                raise ValueError("resume needs a run id")
            self.folder = RunFolder.open_existing(results_root, run_id)
            self.run_json = self.folder.read_run_json()
        else:
            self.folder = RunFolder.create(results_root, run_id or new_run_id(profile.name))
            self.run_json = self._initial_run_json(lab_kind, lab_name, operator)
        self.run_json["status"] = "running"
        self.run_json.setdefault("sessions", []).append(
            {
                "started_at": iso(utc_now()),
                "finished_at": None,
                "pid": os.getpid(),
                "selection": selection,
            }
        )
        self.session_number = len(self.run_json["sessions"])
        self.run_json["retries"] = retries
        self.folder.write_run_json(self.run_json)
        self.previous = fold_results(self.folder.read_results())

    # ---- state ------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.folder.run_id

    def finished_ids(self) -> set[str]:
        return {
            test_id for test_id, record in self.previous.items() if record["outcome"] in FINISHED
        }

    def results(self) -> dict[str, dict[str, Any]]:
        return fold_results(self.folder.read_results())

    def _initial_run_json(
        self, lab_kind: str, lab_name: str, operator: str | None
    ) -> dict[str, Any]:
        identity = self.profile.identity
        return {
            "schema": 1,
            "run_id": self.folder.run_id,
            "harness_version": __version__,
            "status": "running",
            "plan": {
                "id": self.plan.id,
                "version": self.plan.version,
                "sha256": self.plan.sha256,
                "title": self.plan.title,
                "file": str(self.plan.file),
                "tests": [test.id for test in self.plan.tests],
            },
            "board": {
                "name": self.profile.name,
                "vendor": identity.vendor,
                "model": identity.model,
                "revision": identity.revision,
                "soc": identity.soc,
                "arch": identity.arch,
                "compatible": identity.compatible,
                "profile_sha256": self.profile.sha256 or "",
            },
            "lab": {
                "kind": lab_kind,
                "name": lab_name,
                "host": socket.gethostname(),
                "operator": operator or _operator(),
            },
            "software": {
                "kernel_release": None,
                "kernel_version": None,
                "os_release": None,
                "bootloader": None,
                "kernel_build_id": None,
            },
            "started_at": iso(utc_now()),
            "finished_at": None,
            "verdict": "incomplete",
            "counts": count_outcomes([]),
            "waivers": self._waivers(applied=set()),
            "exit_code": None,
        }

    def _waivers(self, applied: set[str]) -> list[dict[str, Any]]:
        today = dt.date.today()
        return [
            {
                "test": waiver.test,
                "reason": waiver.reason,
                "expires": waiver.expires.isoformat(),
                "ticket": waiver.ticket,
                "active": waiver.active_on(today),
                "applied": waiver.test in applied,
            }
            for waiver in self.plan.waivers
        ]

    # ---- board ------------------------------------------------------------------------

    def _ensure_board(self) -> TestExecutor | None:
        """Open the board on first use; remember why if it cannot be opened."""
        if self._executor is not None or self._board_problem is not None:
            return self._executor
        try:
            self._board = self._board_opener(self.profile, self.env_file, self.folder.console_log)
            self._refresh_facts()
        except HarnessError as exc:  # InfraError, or a bad env file (UserError) found only now
            self._board_problem = f"{type(exc).__name__}: {exc}"
            return None
        self._executor = TestExecutor(
            board=self._board,
            profile=self.profile,
            plan=self.plan,
            facts=lambda: self._facts or {},
            artifacts=self.folder.artifacts,
            console_tail=self.console_tail,
            retries=self.retries,
        )
        return self._executor

    def _refresh_facts(self) -> None:
        facts = discover_facts(self._board)
        self._facts = facts.model_dump(mode="json")
        kernel = kernel_identity(self._board)
        self.folder.write_json(
            INVENTORY, {"facts": self._facts, "kernel": kernel, "collected_at": iso(utc_now())}
        )
        software = software_identity(self._board, facts)
        software["kernel_build_id"] = kernel["build_id"]
        software["kernel_identity"] = kernel
        self._software = software
        self.run_json["software"] = software
        self.folder.write_run_json(self.run_json)

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
        self._notify("test_started", test)
        executor = self._ensure_board()
        if executor is None:
            record = self._unrun_record(
                test, "error", f"board could not be opened: {self._board_problem}"
            )
            record["attempt"] = 1
            self.stop_reason = f"board could not be opened: {self._board_problem}"
        else:
            record = executor.execute(test)
            reboots = any(step.kind in ("reboot", "power-cycle") for step in test.steps)
            if reboots and not executor.state.needs_recovery:
                with contextlib.suppress(HarnessError):
                    self._refresh_facts()
            if executor.board_lost:
                self.stop_reason = f"board lost: {executor.state.last_problem}"
        record["session"] = self.session_number
        record["plan_id"] = self.plan.id
        self.folder.append_result(record)
        self._notify("test_finished", record)
        return record

    def _notify(self, event: str, arg: Any) -> None:
        """A broken progress view must never cost a result: listener errors are reported, not raised."""
        for listener in self.listeners:
            try:
                getattr(listener, event)(arg)
            except Exception as exc:
                print(f"harness: progress view failed in {event}: {exc!r}", file=sys.stderr)

    def _unrun_record(self, test: TestSpec, outcome: str, reason: str) -> dict[str, Any]:
        now = iso(utc_now())
        return {
            "id": test.id,
            "title": test.title,
            "category": test.category,
            "blocker": bool(test.blocker),
            "outcome": outcome,
            "reason": reason,
            "duration": 0.0,
            "started_at": now,
            "finished_at": now,
            "attempt": 0,
            "previous_attempts": [],
            "measurements": [],
            "excerpt": "",
            "log": "",
            "session": self.session_number,
            "plan_id": self.plan.id,
        }

    # ---- end of run -------------------------------------------------------------------

    def finish(
        self, not_run_reasons: dict[str, str] | None = None, default_reason: str | None = None
    ) -> int:
        """Write not-run lines, run.json and junit.xml; return the exit code."""
        not_run_reasons = not_run_reasons or {}
        done = self.results()
        for test in self.plan.tests:
            record = done.get(test.id)
            if record is not None and record["outcome"] in FINISHED:
                continue
            reason = (
                not_run_reasons.get(test.id)
                or self.stop_reason
                or default_reason
                or "run ended before this test started"
            )
            if record is not None and record["outcome"] == "not-run" and record["reason"] == reason:
                continue
            self.folder.append_result(self._unrun_record(test, "not-run", reason))
        folded = self.results()
        ordered = [folded[test.id] for test in self.plan.tests if test.id in folded]
        counts = count_outcomes(ordered)
        verdict = decide_verdict(ordered)
        code = exit_code_for(verdict, counts)
        applied = {record["id"] for record in ordered if record["outcome"] == "waived"}
        self.run_json.update(
            status="finished",
            finished_at=iso(utc_now()),
            verdict=verdict.value,
            counts=counts,
            waivers=self._waivers(applied),
            exit_code=code,
        )
        self.run_json["sessions"][-1]["finished_at"] = self.run_json["finished_at"]
        self.folder.write_run_json(self.run_json)
        write_junit(self.folder.junit_file, self.run_json, ordered)
        self.close_board()
        self._notify("run_finished", self)
        return code

    def close_board(self) -> None:
        if self._board is not None:
            with contextlib.suppress(Exception):
                self._board.close()
            self._board = None
            self._executor = None


def _operator() -> str:
    for name in ("HARNESS_OPERATOR", "USER", "LOGNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
