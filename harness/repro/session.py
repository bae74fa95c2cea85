"""A reproduction run: iterations of one case on one board, into a run folder.

The folder follows certification's conventions (harness/README.md, "Run
folder"): run.json from the first moment (status "running"), one JSON line per
finished iteration in results.jsonl, fsync'd before anything else happens,
console.log, inventory.json, artifacts/; `--resume RUN_ID` continues the
numbering from results.jsonl alone. When the run ends, run.json gets the
summary (rate, Wilson interval, first reproduction, timing, signature match)
and, for `--verify`, the verdict of the sequential test.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import HarnessError, InfraError, LabLost, Location, UserError
from harness.lab.errors import BoardFault
from harness.model.board import BoardProfile
from harness.model.case import Case
from harness.model.case_records import (
    Baseline,
    CaseBoard,
    CasePlan,
    CaseRef,
    CaseRunRecord,
    CaseSession,
    CaseSettings,
    Fingerprint,
    Interval,
    IterationRecord,
    Summary,
    Verification,
)
from harness.model.records import LabInfo, SoftwareInfo
from harness.report.runfolder import INVENTORY, RUN_JSON, iso, new_run_id, parse_record, utc_now
from harness.repro import stats
from harness.repro.fingerprint import log_fingerprints
from harness.repro.folder import ReproFolder
from harness.repro.iteration import IterationRunner
from harness.run.boardlink import open_board, software_identity
from harness.run.facts import discover_facts
from harness.run.session import operator_name

MAX_CONSECUTIVE_ERRORS = 3
TECHNICAL = "technical.json"
# Board-side commands gathering the technical information a support case needs.
TECH_COMMANDS = {
    "cmdline": "cat /proc/cmdline",
    "modules": "cut -d' ' -f1 /proc/modules 2>/dev/null | sort",
    "kernel": "uname -a",
    "os_release": "cat /etc/os-release 2>/dev/null",
}


@dataclass
class Plan:
    """How many iterations and when to stop (from the options, the case and the mode)."""

    repeat: int
    until_first: bool
    max_time: float | None
    between: str
    verify_needed: int | None = None


def customer_fingerprints(case: Case) -> list[Fingerprint]:
    """The crashes in the case's attached logs (bounded reads: a UserError on a bad log)."""
    found: list[Fingerprint] = []
    for path in case.attachment_paths():
        found.extend(log_fingerprints(path))
    return found


def case_ref(case: Case, customer: list[Fingerprint]) -> CaseRef:
    spec = case.spec
    return CaseRef(
        id=spec.case.id,
        version=spec.version,
        sha256=case.sha256,
        file=str(case.file),
        customer_ref=spec.case.customer_ref,
        severity=spec.case.severity,
        subsystem=spec.case.subsystem,
        seen_on=spec.seen_on.model_dump(),
        customer_fingerprints=customer,
    )


def summarize(records: list[IterationRecord]) -> Summary:
    counted = [r for r in records if r.outcome != "error"]
    k = sum(r.outcome == "reproduced" for r in counted)
    n = len(counted)
    interval = stats.wilson(k, n)
    first = next((r.iteration for r in records if r.outcome == "reproduced"), None)
    matches = [r.signature_match for r in records if r.signature_match is not None]
    match = None
    for wanted in ("same failure", "different failure", "no crash"):
        if wanted in matches:
            match = wanted
            break
    return Summary(
        iterations=n,
        reproduced=k,
        not_reproduced=n - k,
        errors=len(records) - n,
        rate=round(k / n, 6) if n else None,
        interval=Interval(low=round(interval[0], 6), high=round(interval[1], 6))
        if interval
        else None,
        first_reproducing=first,
        mean_duration=round(sum(r.duration for r in records) / len(records), 3)
        if records
        else None,
        signature_match=match,  # type: ignore[arg-type]
    )


def load_baseline(source: Path, case: Case) -> Baseline:
    """The rate a fix is verified against: a repro run folder, or a bundle of one."""
    from harness.report.bundle_read import BundleUnreadable, read_member, verify_bundle

    where = Location(str(source), None, "--baseline")
    try:
        if source.is_dir():
            raw, label = (source / RUN_JSON).read_bytes(), source / RUN_JSON
        else:
            # Read in pieces, never whole: a bundle carries the whole console log.
            report = verify_bundle(source)
            if not report.ok:
                raise UserError(
                    "baseline bundle does not verify: " + "; ".join(report.problems), where
                )
            with source.open("rb") as bundle:
                raw, label = read_member(bundle, "run/run.json"), source
    except (OSError, KeyError, BundleUnreadable) as exc:
        raise UserError(f"not a repro run folder or bundle ({exc})", where) from None
    try:
        kind = json.loads(raw).get("kind")
    except (ValueError, AttributeError, RecursionError):
        kind = None
    if kind != "repro":
        raise UserError("not a repro run (run.json is not a repro run's record)", where)
    try:
        run = parse_record(CaseRunRecord, raw, label)
    except UserError as exc:
        field = f" (field {exc.location.field})" if exc.location.field else ""
        raise UserError(f"run.json of the baseline {exc.message}{field}", where) from None
    if run.summary is None or run.status != "finished":
        raise UserError("not a finished repro run (run.json has no repro summary)", where)
    if run.case.id != case.id:
        raise UserError(f"baseline is a run of case {run.case.id!r}, not {case.id!r}", where)
    k, n = run.summary.reproduced, run.summary.iterations
    if k == 0 or n == 0:
        raise UserError(
            f"the baseline never reproduced ({k} of {n}): there is no failure rate to verify a fix against",
            where,
        )
    return Baseline(run_id=run.run_id, reproduced=k, iterations=n, rate=round(k / n, 6))


def resumable(
    results_root: Path, run_id: str, case: Case, profile: BoardProfile, baseline: Baseline | None
) -> tuple[ReproFolder, CaseRunRecord]:
    """The folder and run.json of a run `--resume` may continue with this case, board and
    mode; anything else is bad input, found before a board is touched."""
    folder = ReproFolder.open_existing(results_root, run_id)
    run = folder.read_run()
    if run.case.sha256 != case.sha256:
        raise UserError(
            f"case {case.file} has changed since run {run_id} started; a resumed run "
            "must use the same case",
            Location(str(case.file), None, "--resume"),
        )
    if run.board.name != profile.name:
        raise UserError(
            f"run {run_id} was on board {run.board.name!r}, not {profile.name!r}",
            Location(field="--board"),
        )
    if run.mode == "verify" and baseline is None:
        raise UserError(
            f"run {run_id} verifies a fix: resume it with --verify --baseline "
            f"{run.settings.baseline or 'BASELINE'} (its baseline run)",
            Location(field="--resume"),
        )
    if run.mode == "repro" and baseline is not None:
        raise UserError(
            f"run {run_id} is a repro run, not a verify-resolution run: resume it without --verify",
            Location(field="--verify"),
        )
    if baseline is not None and run.settings.baseline not in (None, baseline.run_id):
        raise UserError(
            f"run {run_id} verifies against baseline run {run.settings.baseline}, "
            f"not {baseline.run_id}",
            Location(field="--baseline"),
        )
    return folder, run


def _operator(given: str | None) -> str:
    return given or operator_name()


class ReproSession:
    """Owns the run folder and the board for one `harness repro` process."""

    def __init__(
        self,
        case: Case,
        profile: BoardProfile,
        env_file: Path,
        results_root: Path,
        plan: Plan,
        *,
        run_id: str | None = None,
        resume: bool = False,
        baseline: Baseline | None = None,
        lab_kind: str = "env",
        lab_name: str = "",
        operator: str | None = None,
        progress: Callable[[IterationRecord, Summary], None] | None = None,
        guard: Any = None,
    ):
        self.case = case
        self.profile = profile
        self.env_file = env_file
        self.plan = plan
        self.baseline = baseline
        self.progress = progress
        # The lab guard (harness/run/session.py LabGuard) of a held place: when the lab
        # goes away under the run, the iteration under way is not counted, and the run stops.
        self.guard = guard
        self.customer = customer_fingerprints(case)
        if resume:
            assert run_id is not None
            self.folder, self.run = resumable(results_root, run_id, case, profile, baseline)
            self.run.settings = self._settings()  # what governs from this session on
        else:
            self.folder = ReproFolder.create(results_root, run_id or new_run_id(profile.name))
            self.run = self._initial(lab_kind, lab_name, operator)
        self.run.status = "running"
        self.run.sessions = [
            *self.run.sessions,
            CaseSession(started_at=iso(utc_now()), pid=os.getpid()),
        ]
        self.session_number = len(self.run.sessions)
        self._write()
        self.records = self.folder.read_results()
        self.board: Any = None
        self.stop_reason = ""
        self.between_problems: list[str] = []

    @property
    def run_id(self) -> str:
        return self.folder.run_id

    def _initial(self, lab_kind: str, lab_name: str, operator: str | None) -> CaseRunRecord:
        return CaseRunRecord(
            run_id=self.folder.run_id,
            harness_version=__version__,
            status="running",
            mode="verify" if self.baseline is not None else "repro",
            case=case_ref(self.case, self.customer),
            plan=CasePlan(id=f"case:{self.case.id}", version=self.case.spec.version),
            board=CaseBoard.of(self.profile),
            lab=LabInfo(
                kind=lab_kind,  # type: ignore[arg-type]
                name=lab_name,
                host=socket.gethostname(),
                operator=_operator(operator),
            ),
            software=SoftwareInfo(),
            settings=self._settings(),
            started_at=iso(utc_now()),
        )

    def _settings(self) -> CaseSettings:
        return CaseSettings(
            repeat=self.plan.repeat,
            until_first=self.plan.until_first,
            max_time=self.plan.max_time,
            between=self.plan.between,
            timeout=self.case.spec.settings.timeout,
            baseline=self.baseline.run_id if self.baseline is not None else None,
        )

    def _write(self) -> None:
        self.folder.write_run(self.run)

    # ---- the run -------------------------------------------------------------------------

    def open(self) -> None:
        stats.preload()  # the first iteration's rate needs scipy.stats; the login hides its import
        self.board = open_board(self.profile, self.env_file, self.folder.console_log)
        self._technical()

    def _technical(self) -> None:
        facts = discover_facts(self.board)
        self.facts = facts.model_dump(mode="json")
        self.folder.write_json(INVENTORY, {"facts": self.facts, "collected_at": iso(utc_now())})
        self.run.software = SoftwareInfo.model_validate(software_identity(self.board, facts))
        technical: dict[str, object] = {"inventory": self.facts}
        for name, command in TECH_COMMANDS.items():
            try:
                technical[name] = self.board.console.run(command, timeout=30).stdout.strip()
            except (InfraError, BoardFault) as exc:
                technical[name] = f"(not available: {exc})"
        technical["bootloader"] = self.run.software.bootloader
        self.folder.write_json(TECHNICAL, technical)
        self.run.technical = {key: value for key, value in technical.items() if key != "inventory"}
        self._write()

    def _should_stop(self, started: float) -> str | None:
        counted = [r for r in self.records if r.outcome != "error"]
        reproduced = any(r.outcome == "reproduced" for r in counted)
        if self.plan.verify_needed is not None:
            if reproduced:
                return "reproduced: the fix does not resolve it"
            if len(counted) >= self.plan.verify_needed:
                return f"{self.plan.verify_needed} clean iterations: the test has decided"
        if self.plan.until_first and reproduced:
            return "first reproduction (--until-first)"
        if len(counted) >= self.plan.repeat:
            return f"{self.plan.repeat} iterations done"
        if self.plan.max_time is not None and time.monotonic() - started >= self.plan.max_time:
            return f"--max-time {self.plan.max_time:g} s reached"
        tail = self.records[-MAX_CONSECUTIVE_ERRORS:]
        if (
            len(tail) == MAX_CONSECUTIVE_ERRORS
            and all(r.outcome == "error" for r in tail)
            and any(r.session == self.session_number for r in tail)
        ):
            return f"{MAX_CONSECUTIVE_ERRORS} infrastructure errors in a row"
        return None

    def iterate(self) -> None:
        runner = IterationRunner(
            self.board,
            self.profile,
            self.case,
            self.folder.console_log,
            self.folder.artifacts,
            self.customer,
            self.facts,
        )
        started = time.monotonic()
        number = max((r.iteration for r in self.records), default=0)
        while True:
            reason = self._should_stop(started)
            if reason is not None:
                self.stop_reason = reason
                return
            if runner.failed_recoveries >= MAX_CONSECUTIVE_ERRORS:
                self.stop_reason = "board lost: recovery failed repeatedly"
                return
            if number > 0 and (self.records and self.records[-1].session == self.session_number):
                problem = runner.between(self.plan.between)
                if problem:
                    self.between_problems.append(f"before iteration {number + 1}: {problem}")
            number += 1
            lost = self.guard.lab_lost() if self.guard is not None else None
            if lost:
                self.stop_reason = f"lab lost: {lost}"
                return
            try:
                with self.guard.interruptible() if self.guard else contextlib.nullcontext():
                    record = runner.run(number, self.session_number)
            except LabLost as gone:
                self.stop_reason = f"lab lost: {gone}"
                return
            lost = self.guard.lab_lost() if self.guard is not None else None
            if lost:
                self.stop_reason = f"lab lost: {lost}"
            if lost and record.outcome != "error":
                record = record.model_copy(
                    update={
                        "outcome": "error",
                        "reason": f"the lab was lost during this iteration ({lost}); its "
                        f"outcome ({record.outcome}) does not count",
                    }
                )
            self.folder.append_result(record)
            self.records.append(record)
            if self.progress is not None:
                # A broken progress view never costs a result.
                with contextlib.suppress(Exception):
                    self.progress(record, summarize(self.records))

    def finish(self) -> int:
        summary = summarize(self.records)
        self.run.summary = summary
        counted = summary.iterations
        if self.baseline is not None:
            needed = self.plan.verify_needed or 1
            verdict, why, p_value = stats.verify_verdict(
                summary.reproduced, counted, needed, stats.ALPHA, self.baseline.rate
            )
            self.run.verification = Verification(
                test=stats.TEST_NAME,
                alpha=stats.ALPHA,
                baseline=self.baseline,
                needed=needed,
                iterations=counted,
                reproduced=summary.reproduced,
                p_value=p_value,
                verdict=verdict,  # type: ignore[arg-type]
                why=why,
            )
            self.run.verdict = verdict  # type: ignore[assignment]
            code = {"resolved": 0, "not-resolved": 1}.get(verdict, 3)
        elif counted == 0:
            self.run.verdict = "incomplete"
            code = 3
        else:
            self.run.verdict = "reproduced" if summary.reproduced else "not-reproduced"
            code = 1 if summary.reproduced else 0
        now = iso(utc_now())
        self.run.status = "finished"
        self.run.finished_at = now
        last = self.run.sessions[-1]
        last.finished_at = now
        last.stop_reason = self.stop_reason
        last.between_problems = self.between_problems
        self.run.exit_code = code
        self._write()
        return code

    def close(self) -> None:
        if self.board is not None:
            with contextlib.suppress(Exception):
                self.board.close()
            self.board = None


def open_or_fail(session: ReproSession) -> None:
    """Open the board; an unreachable board leaves an incomplete (resumable) run behind."""
    try:
        session.open()
    except HarnessError as exc:
        session.stop_reason = f"board could not be opened: {exc}"
        session.finish()
        raise InfraError(
            f"board could not be opened: {exc}; continue with --resume {session.run_id}"
        ) from None
