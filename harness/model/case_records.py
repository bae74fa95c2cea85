"""The two records a reproduction run folder holds: one `IterationRecord` per results.jsonl
line, one `CaseRunRecord` (run.json with `kind: repro`).

The `harness repro` counterpart of harness/model/records.py, and the same contract: the
repro session builds every line and run.json through these models, `ReproFolder`, the
report, the bundle and the registry read repro run folders through them, and the JSON
Schemas in harness/report/schemas/ are generated from them (`python3 -m
harness.model.schemas --write`). The blocks a repro run shares with a certification run
(board, lab, software, a session) are the certification models themselves, so the two
kinds of run.json cannot drift apart where they say the same thing.

Kept apart from certification's records on purpose: a repro iteration has no pass/fail,
only reproduced / not-reproduced / error, and errors (the lab's fault) never count towards
a rate. See docs/repro.md for what each field means.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.model.records import (
    BoardInfo,
    LabInfo,
    SessionInfo,
    Sha256,
    SoftwareInfo,
    Timestamp,
)

IterationOutcome = Literal["reproduced", "not-reproduced", "error"]
SignatureMatch = Literal["same failure", "different failure", "no crash"]
VerifyVerdict = Literal["resolved", "not-resolved", "inconclusive"]
CaseVerdict = Literal[
    "incomplete", "reproduced", "not-reproduced", "resolved", "not-resolved", "inconclusive"
]
RUN_KIND = "repro"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


# ---- results.jsonl ------------------------------------------------------------------------


class CommandOutput(_Record):
    phase: Literal["setup", "trigger", "cleanup"]
    command: str
    exit_status: int | None
    output: str = Field(description="stdout (+ stderr for SSH), trimmed to its last 200 lines")
    duration: float


class Fingerprint(_Record):
    """A crash reduced to what identifies it across boots, builds and boards."""

    id: str = Field(description="sha256 of kind|function|frames, first 16 hex digits")
    kind: str
    function: str | None
    frames: list[str]
    message: str | None = None
    line: str = Field(description="the console line that started the crash")


class Evidence(_Record):
    console: str = Field(description="console slice of the iteration (last 64 KiB)")
    dmesg: str | None = None
    outputs: list[CommandOutput] = []


class IterationRecord(_Record):
    """One line of a repro run's results.jsonl: one iteration of the case's trigger."""

    model_config = ConfigDict(title="One line of a repro run's results.jsonl: one iteration")

    schema_version: Literal[1] = Field(default=1, alias="schema")
    iteration: int = Field(ge=1)
    session: int = Field(ge=1)
    outcome: IterationOutcome
    reason: str
    matched: list[str] = Field(default=[], description="signature parts that held")
    signature_match: SignatureMatch | None = Field(
        default=None, description="against the customer log; None when no log is attached"
    )
    crash: Fingerprint | None = None
    timed_out: bool = False
    started_at: Timestamp
    finished_at: Timestamp
    duration: float
    boot_id: str | None = None
    evidence: Evidence | None = None
    recovery: str | None = Field(default=None, description="how the board was recovered")

    def line(self) -> dict[str, Any]:
        """The JSON object written to results.jsonl."""
        return self.model_dump(mode="json", by_alias=True)


# ---- run.json -----------------------------------------------------------------------------


class Interval(_Record):
    low: float
    high: float
    confidence: float = 0.95
    method: str = "wilson"


class Summary(_Record):
    iterations: int = Field(description="counted iterations (reproduced + not-reproduced)")
    reproduced: int
    not_reproduced: int
    errors: int
    rate: float | None
    interval: Interval | None
    first_reproducing: int | None
    mean_duration: float | None
    signature_match: SignatureMatch | None


class Baseline(_Record):
    run_id: str
    reproduced: int
    iterations: int
    rate: float


class Verification(_Record):
    test: str
    alpha: float
    baseline: Baseline
    needed: int = Field(description="clean iterations that prove the rate is below the baseline")
    iterations: int
    reproduced: int
    p_value: float | None
    verdict: VerifyVerdict
    why: str


class CaseRef(_Record):
    id: str
    version: str
    sha256: Sha256
    file: str
    customer_ref: str
    severity: int
    subsystem: str
    seen_on: dict[str, str | None]
    customer_fingerprints: list[Fingerprint] = []


class CasePlan(_Record):
    """What the registry files a repro run under: plan `case:<case id>` at the case's version."""

    id: str = Field(pattern=r"^case:")
    version: str


class CaseBoard(BoardInfo):
    """The board block of certification's run.json; `compatible` was not recorded before it
    was shared, so a repro run folder from then still resumes."""

    compatible: str = ""


class CaseSettings(_Record):
    repeat: int = Field(ge=1)
    until_first: bool
    max_time: float | None
    between: str
    timeout: float
    baseline: str | None = Field(
        default=None, description="run id of the repro run a verify run compares with"
    )


class CaseSession(SessionInfo):
    """A certification session, plus why this process stopped iterating."""

    stop_reason: str | None = None
    between_problems: list[str] = []


class CaseRunRecord(_Record):
    """run.json of a repro run (`kind: repro`); also carries the fields the registry reads."""

    model_config = ConfigDict(title="run.json of a repro run (kind: repro)")

    schema_version: Literal[1] = Field(default=1, alias="schema")
    kind: Literal["repro"] = RUN_KIND
    run_id: str = Field(min_length=1)
    harness_version: str
    status: Literal["running", "finished"]
    mode: Literal["repro", "verify"]
    case: CaseRef
    plan: CasePlan
    board: CaseBoard
    lab: LabInfo
    software: SoftwareInfo
    technical: dict[str, Any] = Field(
        default={}, description="board-side commands' output (technical.json without inventory)"
    )
    settings: CaseSettings
    started_at: Timestamp
    finished_at: Timestamp | None = None
    sessions: list[CaseSession] = []
    summary: Summary | None = None
    verification: Verification | None = None
    verdict: CaseVerdict = "incomplete"
    exit_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
