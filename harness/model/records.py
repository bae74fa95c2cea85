"""The two records a run folder holds: one `ResultRecord` per results.jsonl line, one `RunRecord` (run.json).

These models are the contract between the stages (harness/README.md "Run folder"): the
run engine builds every line and run.json through them, the report, bundle and registry
read run folders through them, and the JSON Schemas in harness/report/schemas/ are
generated from them (`python3 -m harness.model.schemas --write`; a test fails when the
committed schemas differ), so the format has one definition instead of a dict literal per
writer and a hand-kept schema beside them.

They live in `harness.model` (the bottom layer) so that run, report, registry and repro can
all import them without importing each other.

Reading is tolerant of what earlier versions wrote: fields added since (such as
`error_class`) have defaults, so a folder written by the previous version still resumes.
Unknown fields are refused: a typo in a writer, or a folder from a newer harness, is
reported instead of silently dropped when the record is written back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
)

from harness.model.board import BoardProfile
from harness.model.plan import ID_PATTERN

SCHEMA_VERSION = 1


class Outcome(StrEnum):
    """The six outcomes of a test (docs/plan-format.md "Outcomes")."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    WAIVED = "waived"
    NOT_RUN = "not-run"


class Verdict(StrEnum):
    CERTIFIED = "certified"
    NOT_CERTIFIED = "not-certified"
    INCOMPLETE = "incomplete"


class ErrorClass(StrEnum):
    """Whose problem an error (or a board fault) was, so each reaches the right person.

    user: the plan, its python step code or the lab's env file is wrong (fix the input);
    infrastructure: the lab failed (console, SSH, power, a board that did not come back; retry);
    board-fault: the board crashed, reset or overran a command (a test failure, not the lab's);
    harness-bug: the harness's own code raised (report it; nothing in the run can be trusted).
    """

    USER = "user"
    INFRASTRUCTURE = "infrastructure"
    BOARD_FAULT = "board-fault"
    HARNESS_BUG = "harness-bug"


# The run-level class when results carry several: the one a reader must act on first.
ERROR_CLASS_PRECEDENCE: tuple[ErrorClass, ...] = (
    ErrorClass.HARNESS_BUG,
    ErrorClass.INFRASTRUCTURE,
    ErrorClass.USER,
    ErrorClass.BOARD_FAULT,
)


def _aware_timestamp(value: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise ValueError("must carry a time zone (ISO 8601 with Z or offset)")
    return value


def _iso_date(value: str) -> str:
    dt.date.fromisoformat(value)
    return value


# Kept as the text the engine wrote (milliseconds, "Z") rather than re-serialised datetimes,
# so reading and writing a record back never changes its bytes.
Timestamp = Annotated[
    str,
    AfterValidator(_aware_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
IsoDate = Annotated[
    str, AfterValidator(_iso_date), WithJsonSchema({"type": "string", "format": "date"})
]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)


class _Open(BaseModel):
    """Evidence blocks whose extra keys are kept as they are (crash details, console events)."""

    model_config = ConfigDict(extra="allow")


# ---- results.jsonl ------------------------------------------------------------------------


class PreviousAttempt(_Record):
    attempt: int = Field(ge=1)
    outcome: Literal["error"]
    reason: str
    error_class: ErrorClass | None = None


class MeasurementRecord(_Record):
    name: str
    value: float
    unit: str


class CrashRecord(_Open):
    """A crash or reset the console showed (harness/lab/crashwatch.py `CrashEvent.to_dict`)."""

    kind: str


class ConsoleEventRecord(_Open):
    kind: str
    severity: str
    line: str


class AppliedWaiver(_Record):
    reason: str
    expires: IsoDate
    ticket: str | None = None


class ResultRecord(_Record):
    """One line of results.jsonl: the outcome of one test in a run.

    Appended and fsync'd when a test finishes. When a test id appears more than once (a
    not-run line written when a run stopped, then the real result after --resume), the last
    line wins, except that a finished outcome is never replaced by not-run.
    """

    model_config = ConfigDict(
        title="One line of results.jsonl: the outcome of one test in a run",
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"outcome": {"const": "waived"}}},
                    "then": {"required": ["waiver"], "properties": {"waiver": {"type": "object"}}},
                },
                {
                    "if": {
                        "properties": {
                            "outcome": {"enum": ["fail", "error", "skip", "waived", "not-run"]}
                        }
                    },
                    "then": {"properties": {"reason": {"minLength": 1}}},
                },
            ]
        },
    )

    id: str = Field(pattern=ID_PATTERN)
    title: str
    category: str
    blocker: bool
    outcome: Outcome
    reason: str = Field(description="why it did not pass; empty for a pass")
    error_class: ErrorClass | None = Field(
        default=None,
        description="whose problem an error or board fault was; null for a pass, a skip, an "
        "expectation not met, or a test that never started because the run was cut short",
    )
    duration: float = Field(ge=0, description="seconds, all attempts included")
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    attempt: int = Field(
        ge=0, description="which attempt this outcome came from (0: never started)"
    )
    previous_attempts: list[PreviousAttempt] = []
    measurements: list[MeasurementRecord] = []
    excerpt: str = Field(description="console or output lines that show the problem")
    log: str = Field(default="", description="commands run and their (trimmed) output")
    crash: CrashRecord | None = None
    console_events: list[ConsoleEventRecord] = Field(
        default=[],
        description="crash/reset/warning patterns the console showed during the test's last "
        "attempt (warnings do not fail a test, but are evidence)",
    )
    waiver: AppliedWaiver | None = None
    session: int | None = Field(
        default=None,
        ge=1,
        description="1 for the first session of the run, 2 after the first --resume, ...",
    )
    plan_id: str | None = None

    def line(self) -> dict[str, Any]:
        """The JSON object written to results.jsonl (and handed to progress views)."""
        return self.model_dump(mode="json")


# ---- run.json -----------------------------------------------------------------------------


class PlanInfo(_Record):
    id: str
    version: str
    sha256: Sha256
    title: str
    file: str | None = None
    tests: list[str] = []


class BoardInfo(_Record):
    """Which board a run was on: its profile's name and identity."""

    name: str
    vendor: str
    model: str
    revision: str
    soc: str
    arch: str
    compatible: str
    profile_sha256: Sha256 | Literal[""]

    @classmethod
    def of(cls, profile: BoardProfile) -> Self:
        identity = profile.identity
        return cls(
            name=profile.name,
            vendor=identity.vendor,
            model=identity.model,
            revision=identity.revision,
            soc=identity.soc,
            arch=identity.arch,
            compatible=identity.compatible,
            profile_sha256=profile.sha256 or "",
        )


class LabInfo(_Record):
    kind: Literal["virtual", "env", "place"]
    name: str
    host: str
    operator: str


class SoftwareInfo(_Record):
    """What the unit ran; null until the board was reached (an incomplete run may never get there)."""

    kernel_release: str | None = None
    kernel_version: str | None = None
    os_release: str | None = None
    bootloader: str | None = None
    kernel_build_id: str | None = Field(
        default=None, description="GNU build id of the running kernel (/sys/kernel/notes)"
    )
    kernel_identity: dict[str, Any] | None = Field(
        default=None, description="what harness/lab/kernel_identity.py read on the board"
    )

    @model_serializer(mode="wrap")
    def _omit_unread_kernel(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Runs that never read the kernel's identity (older harnesses, a board never reached)
        keep the exact run.json they had: the two fields appear only once read."""
        data = handler(self)
        for key in ("kernel_build_id", "kernel_identity"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class Counts(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    pass_: int = Field(ge=0, alias="pass")
    fail: int = Field(ge=0)
    error: int = Field(ge=0)
    skip: int = Field(ge=0)
    waived: int = Field(ge=0)
    not_run: int = Field(ge=0, alias="not-run")

    def as_dict(self) -> dict[str, int]:
        return self.model_dump(by_alias=True)


class WaiverInfo(_Record):
    test: str
    reason: str
    expires: IsoDate
    ticket: str | None = None
    active: bool
    applied: bool = False


class SessionInfo(_Record):
    """One harness process that worked on the run (the first, then each --resume)."""

    started_at: Timestamp
    finished_at: Timestamp | None = None
    pid: int | None = None
    selection: str | None = None


class RunRecord(_Record):
    """run.json: what was run, on what, by whom, and the verdict.

    Written when the run starts (status "running") and rewritten atomically as it goes;
    never changed after the run was submitted to the registry (submission.json records that).
    """

    model_config = ConfigDict(
        title="run.json: what was run, on what, by whom, and the verdict",
        extra="forbid",
        validate_assignment=True,
        populate_by_name=True,
    )

    schema_: Literal[1] = Field(SCHEMA_VERSION, alias="schema")
    run_id: str = Field(
        min_length=1,
        description="made by the engine as <UTC start>-<board>-<4 hex> (harness.report.runfolder."
        "RUN_ID); readers such as the registry treat it as opaque text",
    )
    harness_version: str
    status: Literal["running", "finished"] = Field(
        description="running: the harness has not finished (or was killed; resume it)"
    )
    plan: PlanInfo
    board: BoardInfo
    lab: LabInfo
    software: SoftwareInfo
    started_at: Timestamp
    finished_at: Timestamp | None = None
    verdict: Verdict
    error_class: ErrorClass | None = Field(
        default=None,
        description="for a run without a verdict either way: whose problem kept it incomplete "
        "(harness-bug, then infrastructure, then user when results carry several); else null",
    )
    counts: Counts
    waivers: list[WaiverInfo] = []
    sessions: list[SessionInfo] = Field(
        default=[], description="one entry per harness process that worked on this run"
    )
    retries: int | None = Field(default=None, ge=0)
    exit_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def run_error_class(results: Iterable[ResultRecord]) -> ErrorClass | None:
    """The run's error class: the most pressing class among results that errored or never ran."""
    found = {
        r.error_class
        for r in results
        if r.error_class is not None and r.outcome in (Outcome.ERROR, Outcome.NOT_RUN)
    }
    return next((c for c in ERROR_CLASS_PRECEDENCE if c in found), None)
