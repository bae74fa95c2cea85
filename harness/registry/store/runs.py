"""Submitted runs: a signed bundle is checked, stored in pieces and, when certified, issues a
certificate; repro runs are recorded for their case. Idempotent per lab and run id."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.engine import Connection

from harness.errors import Location
from harness.registry.errors import Conflict, Forbidden, NotFound
from harness.registry.schema import (
    BUNDLE_CHUNK,
    bundle_chunks,
    certificates,
    labs,
    repro_runs,
    runs,
)
from harness.registry.store.base import Principal
from harness.registry.store.boards import BoardsAndKernels
from harness.registry.submission import check_bundle


class Runs(BoardsAndKernels):
    """Submitted bundles, stored in pieces; a certified run issues its certificate here."""

    def submit_bundle(self, data: bytes | BinaryIO, principal: Principal) -> dict[str, Any]:
        """Store a signed run; a certified verdict issues a certificate. Idempotent per lab and run id.

        `data` is the bundle's bytes or a seekable file holding them (the HTTP API passes
        the spooled upload): it is verified and stored in pieces, never read whole.
        """
        if principal.role != "lab" or principal.lab_id is None:
            raise Forbidden("only a lab token can submit evidence")
        source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
        with self._tx() as conn:
            key = conn.execute(
                select(labs.c.public_key).where(labs.c.id == principal.lab_id)
            ).scalar_one()
        checked = check_bundle(source, principal.lab_name or "", key)
        run = checked.run
        now = self.clock()
        with self._tx(write=True) as conn:
            existing = self._existing_run(conn, principal.lab_id, run.run_id, checked.sha256)
            if existing:
                return existing
            board_id = self._board_id(conn, run.board.vendor, run.board.model, run.board.soc)
            self._add_revision(conn, board_id, run.board.revision)
            run_pk = conn.execute(
                self._upsert_maker()(runs)
                .values(
                    run_id=run.run_id,
                    lab_id=principal.lab_id,
                    bundle_sha256=checked.sha256,
                    bundle_size=checked.size,
                    verdict=run.verdict,
                    plan_id=run.plan.id,
                    plan_version=run.plan.version,
                    board_model_id=board_id,
                    revision=run.board.revision,
                    # "" = unknown: the run never reached the OS (only possible for uncertified runs)
                    os_release=run.software.os_release or "",
                    kernel_release=run.software.kernel_release or "",
                    kernel_version=run.software.kernel_version or "",
                    finished_at=run.finished_at,
                    received_at=now,
                )
                .on_conflict_do_nothing(index_elements=["lab_id", "run_id"])
                .returning(runs.c.id)
            ).scalar()
            if run_pk is None:  # a concurrent submitter stored it between our check and insert
                existing = self._existing_run(conn, principal.lab_id, run.run_id, checked.sha256)
                assert existing is not None
                return existing
            self._store_chunks(conn, run_pk, source)
            cert_id = None
            if run.kind == "repro":
                self._store_repro(conn, run, run_pk)
            if run.kind == "certification" and run.verdict == "certified":
                cert_id = conn.execute(
                    certificates.insert()
                    .values(
                        run_pk=run_pk,
                        run_id=run.run_id,
                        board_model_id=board_id,
                        revision=run.board.revision,
                        os_release=run.software.os_release,
                        kernel_release=run.software.kernel_release,
                        kernel_version=run.software.kernel_version or "",
                        plan_id=run.plan.id,
                        plan_version=run.plan.version,
                        bundle_sha256=checked.sha256,
                        lab_id=principal.lab_id,
                        issued_at=now,
                        expires_at=now + timedelta(days=self.settings.validity_days),
                    )
                    .returning(certificates.c.id)
                ).scalar_one()
            self._audit(
                conn,
                principal,
                "submit",
                "run",
                run.run_id,
                {
                    "bundle_sha256": checked.sha256,
                    "verdict": run.verdict,
                    "certificate_id": cert_id,
                },
            )
        return {
            "status": "stored",
            "run_id": run.run_id,
            "bundle_sha256": checked.sha256,
            "verdict": run.verdict,
            "certificate_id": cert_id,
        }

    @staticmethod
    def _store_chunks(conn: Connection, run_pk: int, source: BinaryIO) -> None:
        source.seek(0)
        seq = 0
        while chunk := source.read(BUNDLE_CHUNK):
            conn.execute(bundle_chunks.insert().values(run_pk=run_pk, seq=seq, data=chunk))
            seq += 1

    def _existing_run(
        self, conn: Connection, lab_id: int, run_id: str, sha256: str
    ) -> dict[str, Any] | None:
        row = conn.execute(
            select(runs.c.id, runs.c.bundle_sha256, runs.c.verdict).where(
                runs.c.lab_id == lab_id, runs.c.run_id == run_id
            )
        ).first()
        if row is None:
            return None
        if row.bundle_sha256 != sha256:
            raise Conflict(
                f"run {run_id!r} is already stored with a different bundle (sha256 {row.bundle_sha256}); "
                "a run id can carry only one set of evidence",
                Location(field="run_id"),
            )
        cert_id = conn.execute(
            select(certificates.c.id).where(certificates.c.run_pk == row.id)
        ).scalar()
        return {
            "status": "duplicate",
            "run_id": run_id,
            "bundle_sha256": sha256,
            "verdict": row.verdict,
            "certificate_id": cert_id,
        }

    def _find_run(
        self, conn: Connection, run_id: str, lab: str | None = None, prefer_lab: int | None = None
    ) -> Any:
        """The run row for a run id: run ids are per lab, so `lab` (or the caller's own lab) decides
        between labs that used the same id; NotFound or, when still ambiguous, Conflict."""
        query = (
            select(runs.c.id, runs.c.run_id, runs.c.lab_id, runs.c.bundle_size, labs.c.name)
            .select_from(runs.join(labs, labs.c.id == runs.c.lab_id))
            .where(runs.c.run_id == run_id)
        )
        if lab is not None:
            query = query.where(labs.c.name == lab)
        rows = conn.execute(query.order_by(runs.c.id)).all()
        if prefer_lab is not None and len(rows) > 1:
            rows = [r for r in rows if r.lab_id == prefer_lab] or rows
        if not rows:
            where = f" from lab {lab!r}" if lab is not None else ""
            raise NotFound(f"run {run_id!r}{where} is not stored", Location(field="run_id"))
        if len(rows) > 1:
            raise Conflict(
                f"run id {run_id!r} was used by labs {', '.join(sorted(r.name for r in rows))}; "
                "name the lab",
                Location(field="lab"),
            )
        return rows[0]

    def bundle_info(self, run_id: str, lab: str | None = None) -> tuple[int, int]:
        """(row id, size in bytes) of a stored run's bundle, for `iter_bundle`."""
        with self._tx() as conn:
            row = self._find_run(conn, run_id, lab)
        return row.id, row.bundle_size

    def iter_bundle(self, run_pk: int) -> Iterator[bytes]:
        """A stored bundle piece by piece, each piece its own short read."""
        seq = 0
        while True:
            with self._tx() as conn:
                chunk = conn.execute(
                    select(bundle_chunks.c.data).where(
                        bundle_chunks.c.run_pk == run_pk, bundle_chunks.c.seq == seq
                    )
                ).scalar()
            if chunk is None:
                return
            yield bytes(chunk)
            seq += 1

    def get_bundle(self, run_id: str, lab: str | None = None) -> bytes:
        """A whole stored bundle in memory (the CLI and tests; the HTTP API streams `iter_bundle`)."""
        run_pk, _size = self.bundle_info(run_id, lab)
        return b"".join(self.iter_bundle(run_pk))

    def list_runs(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = (
                conn.execute(
                    select(
                        runs.c.run_id,
                        runs.c.bundle_sha256,
                        runs.c.verdict,
                        labs.c.name.label("lab"),
                        runs.c.received_at,
                    )
                    .select_from(runs.join(labs, labs.c.id == runs.c.lab_id))
                    .order_by(runs.c.id)
                )
                .mappings()
                .all()
            )
        return [{**r, "received_at": r["received_at"].isoformat()} for r in rows]

    def _store_repro(self, conn: Connection, run: Any, run_pk: int) -> None:
        summary = run.summary
        interval = summary.interval
        conn.execute(
            repro_runs.insert().values(
                run_pk=run_pk,
                run_id=run.run_id,
                case_id=run.case.id,
                mode=run.mode,
                iterations=summary.iterations,
                reproduced=summary.reproduced,
                errors=summary.errors,
                rate=summary.rate,
                ci_low=interval.low if interval else None,
                ci_high=interval.high if interval else None,
                signature_match=summary.signature_match,
                verify_verdict=run.verification.verdict if run.verification else None,
            )
        )

    def run_report(self, run_id: str) -> bytes:
        """The HTML report inside a stored repro run's bundle (verified when it was stored)."""
        from harness.report.bundle_read import read_member

        data = self.get_bundle(run_id)
        try:
            return read_member(data, "run/report.html")
        except KeyError:
            raise NotFound(f"run {run_id!r} has no HTML report", Location(field="run_id")) from None
