"""Customer cases: intake (response target, eligibility at intake), attached reproduction runs
and the verification verdict, which must rest on a verify-resolution run of the case."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.engine import Connection

from harness.errors import Location
from harness.registry.eligibility import Device
from harness.registry.errors import Conflict, Forbidden, Invalid, NotFound
from harness.registry.rules import (
    CASE_VERDICTS,
    NAME_MAX,
    RESPONSE_BUSINESS_HOURS,
    REVISION_MAX,
    SEVERITIES,
    SUMMARY_MAX,
    TEXT_MAX,
    one_of,
    opened_at,
    text,
)
from harness.registry.schema import (
    board_models,
    case_intake,
    case_runs,
    cases,
    labs,
    repro_runs,
    runs,
)
from harness.registry.store.base import Principal
from harness.registry.store.certificates import Certificates
from harness.registry.store.runs import Runs


class Cases(Certificates, Runs):
    """Customer cases, their reproduction runs and the verification verdict."""

    def open_case(self, fields: dict[str, Any], actor: Principal) -> dict[str, Any]:
        """Open a case, compute its response target and check the device's eligibility at intake."""
        case_id = text(fields.get("case_id"), "case_id", limit=NAME_MAX)
        customer_ref = text(fields.get("customer_ref"), "customer_ref")
        severity = one_of(fields.get("severity"), "severity", SEVERITIES)
        subsystem = text(fields.get("subsystem"), "subsystem", limit=NAME_MAX)
        summary = text(fields.get("summary", ""), "summary", allow_empty=True, limit=SUMMARY_MAX)
        vendor = text(fields.get("vendor"), "vendor", limit=NAME_MAX)
        model = text(fields.get("model"), "model", limit=NAME_MAX)
        revision = text(fields.get("revision"), "revision", limit=REVISION_MAX)
        software = {
            name: text(fields.get(name) or "", name, allow_empty=True, limit=limit)
            for name, limit in (
                ("os_release", NAME_MAX),
                ("kernel_release", NAME_MAX),
                ("kernel_version", TEXT_MAX),
            )
        }
        opened = opened_at(fields.get("opened_at") or self.clock())
        target = self.settings.calendar.response_target(opened)
        intake = self._intake_eligibility(vendor, model, revision, software)
        with self._tx(write=True) as conn:
            board_id = self._board_id(conn, vendor, model)
            self._add_revision(conn, board_id, revision)
            if not self._insert_ignore(
                conn,
                cases,
                {
                    "case_id": case_id,
                    "customer_ref": customer_ref,
                    "severity": severity,
                    "subsystem": subsystem,
                    "summary": summary,
                    "board_model_id": board_id,
                    "revision": revision,
                    "opened_at": opened,
                    "response_target_at": target,
                },
                ["case_id"],
            ):
                raise Conflict(f"case {case_id!r} already exists", Location(field="case_id"))
            conn.execute(
                case_intake.insert().values(
                    case_id=case_id,
                    **software,
                    eligibility_status=intake["status"],
                    eligibility=json.dumps(intake, sort_keys=True, default=str),
                )
            )
            self._audit(
                conn,
                actor,
                "open",
                "case",
                case_id,
                {
                    "customer_ref": customer_ref,
                    "severity": severity,
                    "eligibility": intake["status"],
                },
            )
        return self.get_case(case_id)

    def _intake_eligibility(
        self, vendor: str, model: str, revision: str, software: dict[str, str]
    ) -> dict[str, Any]:
        """The eligibility answer for the device the customer reported, as it stands at intake."""
        if not (software["os_release"] and software["kernel_release"]):
            return {
                "status": "unknown",
                "reason": "the case does not give the device's OS release and kernel release",
            }
        answer = self.eligibility(
            Device(
                vendor,
                model,
                revision,
                software["os_release"],
                software["kernel_release"],
                software["kernel_version"],
            )
        )
        return answer.as_dict()

    def _repro_run(self, conn: Connection, case_id: str, run_id: str, actor: Principal) -> Any:
        """The stored repro run `run_id` of case `case_id`, if `actor` may use it for the case.

        Only the lab that ran it (or an admin) may attach a run or rest a verdict on it, and
        only a reproduction run of this very case counts (issue 10, defect 3).
        """
        case = conn.execute(
            select(cases.c.id, cases.c.board_model_id).where(cases.c.case_id == case_id)
        ).first()
        if case is None:
            raise NotFound(f"case {case_id!r} does not exist", Location(field="case_id"))
        try:
            run_pk = self._find_run(conn, run_id, prefer_lab=actor.lab_id).id
        except NotFound:
            raise NotFound(
                f"run {run_id!r} is not stored; submit its bundle first", Location(field="run_id")
            ) from None
        row = conn.execute(
            select(
                runs.c.lab_id,
                runs.c.board_model_id,
                repro_runs.c.case_id,
                repro_runs.c.mode,
                repro_runs.c.verify_verdict,
            )
            .select_from(runs.outerjoin(repro_runs, repro_runs.c.run_pk == runs.c.id))
            .where(runs.c.id == run_pk)
        ).one()
        if actor.role != "admin" and (actor.role != "lab" or row.lab_id != actor.lab_id):
            raise Forbidden(
                f"run {run_id!r} was submitted by another lab: only that lab or an admin may "
                "attach it or verify with it"
            )
        if row.case_id is None:
            raise Invalid(
                f"run {run_id!r} is not a reproduction run (harness repro)",
                Location(field="run_id"),
            )
        if row.case_id != case_id:
            raise Invalid(
                f"run {run_id!r} reproduces case {row.case_id!r}, not {case_id!r}",
                Location(field="run_id"),
            )
        return case, row, run_pk

    def attach_run(self, case_id: str, run_id: str, actor: Principal) -> dict[str, Any]:
        with self._tx(write=True) as conn:
            _case, _row, run_pk = self._repro_run(conn, case_id, run_id, actor)
            if self._attach(conn, case_id, run_id, run_pk):
                self._audit(conn, actor, "attach", "case", case_id, {"run_id": run_id})
        return self.get_case(case_id)

    def _attach(self, conn: Connection, case_id: str, run_id: str, run_pk: int) -> bool:
        """Attach a stored run to a case unless it already is; True when it was new."""
        values = {"case_id": case_id, "run_pk": run_pk, "run_id": run_id,
                  "attached_at": self.clock()}  # fmt: skip
        return bool(self._insert_ignore(conn, case_runs, values, ["case_id", "run_pk"]))

    def verify_case(
        self, case_id: str, verdict: str, run_id: str, actor: Principal
    ) -> dict[str, Any]:
        """Record the verification verdict; `resolved` must rest on a passing verify run.

        That run must be a verify-resolution run (`harness repro --verify`) of this case,
        whose own verdict is `resolved`, on a board of the case's model.
        """
        one_of(verdict, "verdict", CASE_VERDICTS)
        with self._tx(write=True) as conn:
            case, row, run_pk = self._repro_run(conn, case_id, run_id, actor)
            if verdict == "resolved":
                if row.mode != "verify" or row.verify_verdict != "resolved":
                    raise Invalid(
                        f"run {run_id!r} is not a verify-resolution run that found the case "
                        f"resolved (mode {row.mode}, verdict {row.verify_verdict}): "
                        "a 'resolved' verdict needs one",
                        Location(field="run_id"),
                    )
                if row.board_model_id != case.board_model_id:
                    raise Invalid(
                        f"run {run_id!r} ran on another board model than the case's: a "
                        "'resolved' verdict needs a run on a board of the case's model",
                        Location(field="run_id"),
                    )
            self._attach(conn, case_id, run_id, run_pk)
            conn.execute(
                cases.update()
                .where(cases.c.case_id == case_id)
                .values(
                    verification_verdict=verdict,
                    verification_run_id=run_id,
                    verified_at=self.clock(),
                )
            )
            self._audit(
                conn, actor, "verify", "case", case_id, {"verdict": verdict, "run_id": run_id}
            )
        return self.get_case(case_id)

    def get_case(self, case_id: str) -> dict[str, Any]:
        found = self.list_cases(case_id=case_id)
        if not found:
            raise NotFound(f"case {case_id!r} does not exist", Location(field="case_id"))
        return found[0]

    def list_cases(self, case_id: str | None = None) -> list[dict[str, Any]]:
        now = self.clock()
        query = (
            select(
                cases,
                board_models.c.vendor,
                board_models.c.model,
                case_intake.c.os_release,
                case_intake.c.kernel_release,
                case_intake.c.kernel_version,
                case_intake.c.eligibility_status,
                case_intake.c.eligibility,
            )
            .select_from(
                cases.join(board_models, board_models.c.id == cases.c.board_model_id).outerjoin(
                    case_intake, case_intake.c.case_id == cases.c.case_id
                )
            )
            .order_by(cases.c.id)
        )
        if case_id is not None:
            query = query.where(cases.c.case_id == case_id)
        with self._tx() as conn:
            rows = conn.execute(query).mappings().all()
            attached = conn.execute(
                select(
                    case_runs.c.case_id,
                    case_runs.c.run_id,
                    runs.c.verdict,
                    labs.c.name.label("lab"),
                    board_models.c.model,
                    repro_runs.c.mode,
                    repro_runs.c.iterations,
                    repro_runs.c.reproduced,
                    repro_runs.c.errors,
                    repro_runs.c.rate,
                    repro_runs.c.ci_low,
                    repro_runs.c.ci_high,
                    repro_runs.c.signature_match,
                    repro_runs.c.verify_verdict,
                )
                .select_from(
                    case_runs.join(runs, runs.c.id == case_runs.c.run_pk)
                    .join(labs, labs.c.id == runs.c.lab_id)
                    .join(board_models, board_models.c.id == runs.c.board_model_id)
                    .outerjoin(repro_runs, repro_runs.c.run_pk == case_runs.c.run_pk)
                )
                .where(case_runs.c.case_id.in_([r["case_id"] for r in rows]))
                .order_by(case_runs.c.id)
            ).all()
        return [
            self._case_dict(r, [a for a in attached if a.case_id == r["case_id"]], now)
            for r in rows
        ]

    def _case_dict(self, r: Any, attached: list[Any], now: datetime) -> dict[str, Any]:
        target = r["response_target_at"]
        left = self.settings.calendar.business_time_between(now, target) if now < target else None
        return {
            "case_id": r["case_id"],
            "customer_ref": r["customer_ref"],
            "severity": r["severity"],
            "subsystem": r["subsystem"],
            "summary": r["summary"],
            "board": {"vendor": r["vendor"], "model": r["model"], "revision": r["revision"]},
            "device": {
                "os_release": r["os_release"] or None,
                "kernel_release": r["kernel_release"] or None,
                "kernel_version": r["kernel_version"] or None,
            },
            "eligibility": {
                "status": r["eligibility_status"] or "unknown",
                "answer": json.loads(r["eligibility"]) if r["eligibility"] else None,
            },
            "opened_at": r["opened_at"].isoformat(),
            "response_target_at": target.isoformat(),
            "response": {
                "target_business_hours": RESPONSE_BUSINESS_HOURS,
                "overdue": now >= target,
                "business_hours_left": round(left.total_seconds() / 3600, 2) if left else 0.0,
            },
            "reproduction_runs": [
                {
                    "run_id": a.run_id,
                    "verdict": a.verdict,
                    "lab": a.lab,
                    "board_model": a.model,
                    "mode": a.mode,
                    "iterations": a.iterations,
                    "reproduced": a.reproduced,
                    "errors": a.errors,
                    "rate": a.rate,
                    "interval": [a.ci_low, a.ci_high] if a.ci_low is not None else None,
                    "signature_match": a.signature_match,
                    "verify_verdict": a.verify_verdict,
                    "report": f"/runs/{quote(a.run_id, safe='')}/report",
                }
                for a in attached
            ],
            "verification": {
                "verdict": r["verification_verdict"],
                "run_id": r["verification_run_id"],
                "verified_at": r["verified_at"].isoformat() if r["verified_at"] else None,
            },
        }
