"""The records a reproduction run writes: one per iteration (results.jsonl) and run.json.

Pydantic models so the files have one definition, a JSON schema
(`model_json_schema()`, see docs/repro.md) and validation when a run is
resumed or used as a baseline. Kept apart from certification's records on
purpose: a repro iteration has no pass/fail, only reproduced / not-reproduced /
error, and errors (the lab's fault) never count towards a rate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IterationOutcome = Literal["reproduced", "not-reproduced", "error"]
SignatureMatch = Literal["same failure", "different failure", "no crash"]
RUN_KIND = "repro"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    started_at: str
    finished_at: str
    duration: float
    boot_id: str | None = None
    evidence: Evidence | None = None
    recovery: str | None = Field(default=None, description="how the board was recovered")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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
    verdict: Literal["resolved", "not-resolved", "inconclusive"]
    why: str


class CaseRef(_Record):
    id: str
    version: str
    sha256: str
    file: str
    customer_ref: str
    severity: int
    subsystem: str
    seen_on: dict[str, str | None]
    customer_fingerprints: list[Fingerprint] = []


class RunRecord(BaseModel):
    """run.json of a repro run; also carries the fields the registry reads (plan, verdict…)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_version: Literal[1] = Field(default=1, alias="schema")
    kind: Literal["repro"] = RUN_KIND
    run_id: str
    harness_version: str
    status: Literal["running", "finished"]
    mode: Literal["repro", "verify"]
    case: CaseRef
    plan: dict[str, str] = Field(description="{'id': 'case:<id>', 'version': …} for the registry")
    board: dict[str, str | None]
    lab: dict[str, str | None]
    software: dict[str, str | None]
    technical: dict[str, object] = {}
    settings: dict[str, object]
    started_at: str
    finished_at: str | None = None
    sessions: list[dict[str, object]] = []
    summary: Summary | None = None
    verification: Verification | None = None
    verdict: Literal[
        "incomplete", "reproduced", "not-reproduced", "resolved", "not-resolved", "inconclusive"
    ] = "incomplete"
    exit_code: int | None = None
