"""Checking an uploaded evidence bundle before anything is stored.

The registry trusts nothing in an upload: the signature is checked against
the key the lab registered (not the key the bundle carries), every byte
against the manifest, and the run summary against a strict schema, so a
certificate can only ever come from intact evidence signed by a known lab.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import BinaryIO, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.model.case_records import CaseVerdict, SignatureMatch, VerifyVerdict
from harness.model.records import Verdict
from harness.registry.errors import Invalid
from harness.registry.textrules import check_text
from harness.report.bundle_read import (
    BundleUnreadable,
    MemberTooLarge,
    load_json_bounded,
    read_member,
    verify_bundle,
)

MAX_BUNDLE_BYTES = 256 << 20
MAX_RUN_JSON_BYTES = 4 << 20


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", use_enum_values=True)


class PlanRef(_Loose):
    id: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)


class BoardRef(_Loose):
    vendor: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    revision: str = Field(min_length=1, max_length=100)
    soc: str = Field(default="", max_length=200)


class SoftwareRef(_Loose):
    """None when the run never reached the OS (e.g. an incomplete run whose board did not boot)."""

    kernel_release: str | None = Field(default=None, min_length=1, max_length=200)
    kernel_version: str | None = Field(default=None, max_length=400)
    os_release: str | None = Field(default=None, min_length=1, max_length=200)


class ReproCase(_Loose):
    id: str = Field(min_length=1, max_length=200)


class ReproInterval(_Loose):
    low: float = Field(ge=0, le=1)
    high: float = Field(ge=0, le=1)


class ReproSummary(_Loose):
    iterations: int = Field(ge=0)
    reproduced: int = Field(ge=0)
    errors: int = Field(default=0, ge=0)
    rate: float | None = Field(default=None, ge=0, le=1)
    interval: ReproInterval | None = None
    signature_match: SignatureMatch | None = None


class ReproVerification(_Loose):
    verdict: VerifyVerdict


CERTIFICATION_VERDICTS: tuple[str, ...] = tuple(Verdict)
REPRO_VERDICTS: tuple[str, ...] = get_args(CaseVerdict)


class RunSummary(_Loose):
    """The parts of run.json (harness.model.records.RunRecord, or for a repro run
    harness.model.case_records.CaseRunRecord) the registry records.

    A projection rather than the record models themselves: a registry serves labs running
    other harness versions, so fields it does not record are tolerated, while the ones it
    does get the registry's own bounds. Its enumerations (verdicts, signature matches) are
    the models' own, so the registry accepts exactly the values a harness writes.

    `kind: repro` marks a reproduction run of a customer case (docs/repro.md): its verdict is
    a repro verdict and it can never issue a certificate.
    """

    run_id: str = Field(min_length=1, max_length=200)
    kind: Literal["certification", "repro"] = "certification"
    plan: PlanRef
    board: BoardRef
    software: SoftwareRef
    verdict: Verdict | CaseVerdict
    finished_at: datetime | None = None
    mode: Literal["repro", "verify"] | None = None
    case: ReproCase | None = None
    summary: ReproSummary | None = None
    verification: ReproVerification | None = None


class CheckedBundle(BaseModel):
    run: RunSummary
    sha256: str
    lab: str
    size: int


# The run.json names the registry stores and shows: one printable line each.
_NAMES = (
    ("run_id",),
    ("plan", "id"),
    ("plan", "version"),
    ("board", "vendor"),
    ("board", "model"),
    ("board", "revision"),
    ("board", "soc"),
    ("software", "kernel_release"),
    ("software", "os_release"),
)


def _check_names(run: RunSummary) -> None:
    for path in _NAMES:
        value: object = run
        for part in path:
            value = getattr(value, part)
        if isinstance(value, str) and (problem := check_text(value)):
            raise Invalid(f"run.json field '{'.'.join(path)}' {problem}")


def check_bundle(data: bytes | BinaryIO, lab_name: str, registered_key: str) -> CheckedBundle:
    """Verify an upload for `lab_name`; raises Invalid (422) naming the first reason it is refused.

    `data` may be a seekable file (the spooled upload): it is read in pieces, never whole.
    """
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    size = source.seek(0, io.SEEK_END)
    source.seek(0)
    if size > MAX_BUNDLE_BYTES:
        raise Invalid(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        report = verify_bundle(source, trusted_key=registered_key, label="bundle")
    except BundleUnreadable as exc:
        raise Invalid(f"bundle is not readable: {exc.message}") from None
    if not report.ok:
        raise Invalid("bundle rejected: " + "; ".join(report.problems))
    if report.manifest["lab"] != lab_name:
        raise Invalid(
            f"bundle was signed for lab {report.manifest['lab']!r}, but the token belongs to lab {lab_name!r}"
        )
    try:
        raw = load_json_bounded(read_member(source, "run/run.json", MAX_RUN_JSON_BYTES), "run.json")
    except KeyError:
        raise Invalid("bundle has no run.json") from None
    except MemberTooLarge:
        raise Invalid(f"run.json in the bundle is larger than {MAX_RUN_JSON_BYTES} bytes") from None
    except ValueError as exc:
        raise Invalid(f"run.json in the bundle: {exc}") from None
    try:
        run = RunSummary.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Invalid(f"run.json field '{where}': {first['msg']}") from None
    allowed = REPRO_VERDICTS if run.kind == "repro" else CERTIFICATION_VERDICTS
    if run.verdict not in allowed:
        raise Invalid(
            f"run.json field 'verdict': {run.verdict!r} is not a verdict of a {run.kind} run"
        )
    if run.kind == "repro" and (run.case is None or run.summary is None or run.mode is None):
        raise Invalid("run.json of a repro run must give 'mode', 'case' and 'summary'")
    if run.verdict == "certified":
        for name in ("kernel_release", "os_release"):
            if not getattr(run.software, name):
                raise Invalid(f"run.json field 'software.{name}': a certified run must record it")
    if run.finished_at is not None and run.finished_at.tzinfo is None:
        raise Invalid(
            "run.json field 'finished_at': must carry a time zone (ISO 8601 with Z or offset)"
        )
    _check_names(run)
    if run.run_id != report.run_id:
        raise Invalid(
            f"manifest run id {report.run_id!r} differs from run.json run id {run.run_id!r}"
        )
    return CheckedBundle(run=run, sha256=report.sha256, lab=lab_name, size=size)
