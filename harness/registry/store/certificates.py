"""Certificates (issued by runs.py when a certified run is stored): listing, revocation, and
the eligibility answer that rests on them and on the vendor kernels."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, union

from harness.errors import Location
from harness.registry.eligibility import Answer, CertRecord, Device, evaluate, normalise_build_id
from harness.registry.errors import Conflict, NotFound
from harness.registry.rules import REASON_MAX, row_id, text
from harness.registry.schema import board_models, certificates, kernel_boards, labs, vendor_kernels
from harness.registry.store.base import Principal
from harness.registry.store.boards import BoardsAndKernels, kernel_records, kernels_query


class Certificates(BoardsAndKernels):
    """Certificates and the eligibility answer that rests on them and on vendor kernels."""

    @staticmethod
    def _cert_query() -> Any:
        return select(
            certificates,
            board_models.c.vendor,
            board_models.c.model,
            labs.c.name.label("lab"),
        ).select_from(
            certificates.join(
                board_models, board_models.c.id == certificates.c.board_model_id
            ).join(labs, labs.c.id == certificates.c.lab_id)
        )

    @staticmethod
    def _cert_record(row: Any) -> CertRecord:
        return CertRecord(
            id=row.id,
            run_id=row.run_id,
            vendor=row.vendor,
            model=row.model,
            revision=row.revision,
            os_release=row.os_release,
            kernel_release=row.kernel_release,
            kernel_version=row.kernel_version,
            plan_id=row.plan_id,
            plan_version=row.plan_version,
            lab=row.lab,
            bundle_sha256=row.bundle_sha256,
            image_name=row.image_name,
            image_sha256=row.image_sha256,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            revoked_reason=row.revoked_reason,
        )

    def list_certificates(
        self,
        vendor: str | None = None,
        model: str | None = None,
        revision: str | None = None,
        os_release: str | None = None,
    ) -> list[dict[str, Any]]:
        query = self._cert_query().order_by(certificates.c.id)
        for column, value in (
            (board_models.c.vendor, vendor),
            (board_models.c.model, model),
            (certificates.c.revision, revision),
            (certificates.c.os_release, os_release),
        ):
            if value is not None:
                query = query.where(column == value)
        now = self.clock()
        with self._tx() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            record = self._cert_record(row)
            state = (
                "revoked"
                if record.revoked_at
                else "expired"
                if record.expires_at <= now
                else "valid"
            )
            out.append({**record.as_evidence(), "state": state})
        return out

    def get_certificate(self, cert_id: int) -> dict[str, Any]:
        cert_id = row_id(cert_id, "certificate_id")
        with self._tx() as conn:
            row = conn.execute(self._cert_query().where(certificates.c.id == cert_id)).first()
        if row is None:
            raise NotFound(
                f"certificate {cert_id} does not exist", Location(field="certificate_id")
            )
        return self._cert_record(row).as_evidence()

    def revoke_certificate(self, cert_id: int, reason: str, actor: Principal) -> dict[str, Any]:
        cert_id = row_id(cert_id, "certificate_id")
        reason = text(reason, "reason", limit=REASON_MAX)
        with self._tx(write=True) as conn:
            row = conn.execute(
                select(certificates.c.revoked_at).where(certificates.c.id == cert_id)
            ).first()
            if row is None:
                raise NotFound(
                    f"certificate {cert_id} does not exist", Location(field="certificate_id")
                )
            if row.revoked_at is not None:
                raise Conflict(
                    f"certificate {cert_id} is already revoked", Location(field="certificate_id")
                )
            conn.execute(
                certificates.update()
                .where(certificates.c.id == cert_id)
                .values(revoked_at=self.clock(), revoked_reason=reason)
            )
            self._audit(conn, actor, "revoke", "certificate", cert_id, {"reason": reason})
        return self.get_certificate(cert_id)

    def eligibility(self, device: Device) -> Answer:
        """Fetch every record that could decide or explain the answer, then apply the rules.

        Two round trips whatever the data: the certificates of the board model, and the
        vendor kernels of that release, of that build id or made for that model (with their
        boards and artifacts). Both statements are built once (module level, bound
        parameters): building and keying a SQLAlchemy statement per call cost more than the
        database's own work.
        """
        params = {
            "vendor": device.vendor,
            "model": device.model,
            "kernel_release": device.kernel_release,
            "build_id": normalise_build_id(device.kernel_build_id),
        }
        with self._tx() as conn:
            certs = [self._cert_record(r) for r in conn.execute(_MODEL_CERTS, params)]
            kernels = kernel_records(conn.execute(_DEVICE_KERNELS, params).all())
        return evaluate(device, certs, kernels, self.clock())


_MODEL = (
    select(board_models.c.id)
    .where(board_models.c.vendor == bindparam("vendor"), board_models.c.model == bindparam("model"))
    .scalar_subquery()
)
_MODEL_CERTS = Certificates._cert_query().where(certificates.c.board_model_id == _MODEL)
# The kernels that could decide or explain the answer: of the device's release, made for its
# model, or of its build id. A UNION of three index lookups, not one OR: with the OR
# (its model part a subquery) PostgreSQL scanned every vendor kernel on every call.
_DEVICE_KERNEL_IDS = union(
    select(vendor_kernels.c.id).where(
        vendor_kernels.c.kernel_release == bindparam("kernel_release")
    ),
    select(kernel_boards.c.kernel_id).where(kernel_boards.c.board_model_id == _MODEL),
    select(vendor_kernels.c.id).where(vendor_kernels.c.build_id == bindparam("build_id")),
)
_DEVICE_KERNELS = kernels_query(vendor_kernels.c.id.in_(_DEVICE_KERNEL_IDS))
