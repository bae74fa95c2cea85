"""Board models with their revisions, and vendor-built kernels registered for them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection

from harness.errors import Location, UserError
from harness.registry.eligibility import KernelBoard, KernelRecord, normalise_build_id
from harness.registry.errors import Conflict, Invalid, NotFound
from harness.registry.rules import NAME_MAX, REVISION_MAX, TEXT_MAX, text
from harness.registry.schema import (
    board_models,
    board_revisions,
    certificates,
    kernel_artifacts,
    kernel_boards,
    vendor_kernels,
)
from harness.registry.store.audit import AuditLog
from harness.registry.store.base import Principal


def kernels_query(where: Any) -> Select[Any]:
    """The vendor kernels matching `where`, each row one of its boards with its artifact.

    One round trip (outer joins) instead of one for the kernels, one for their boards and
    one for their artifacts: the eligibility answer runs it on every device check.
    """
    return (
        select(
            vendor_kernels.c.id,
            vendor_kernels.c.kernel_release,
            vendor_kernels.c.kernel_version,
            vendor_kernels.c.build_id,
            kernel_artifacts.c.name.label("artifact_name"),
            kernel_artifacts.c.sha256.label("artifact_sha256"),
            kernel_artifacts.c.format.label("artifact_format"),
            kernel_artifacts.c.extracted_at.label("artifact_extracted_at"),
            board_models.c.vendor.label("board_vendor"),
            board_models.c.model.label("board_model"),
            kernel_boards.c.revision.label("board_revision"),
        )
        .select_from(
            vendor_kernels.outerjoin(
                kernel_artifacts, kernel_artifacts.c.kernel_id == vendor_kernels.c.id
            )
            .outerjoin(kernel_boards, kernel_boards.c.kernel_id == vendor_kernels.c.id)
            .outerjoin(board_models, board_models.c.id == kernel_boards.c.board_model_id)
        )
        .where(where)
        .order_by(vendor_kernels.c.id, kernel_boards.c.id)
    )


def kernel_records(rows: Sequence[Any]) -> list[KernelRecord]:
    """Rows of `kernels_query`, grouped back into one record per kernel (in id order)."""
    boards: dict[int, list[KernelBoard]] = {}
    first: dict[int, Any] = {}
    for row in rows:
        first.setdefault(row.id, row)
        listed = boards.setdefault(row.id, [])
        if row.board_vendor is not None:
            listed.append(KernelBoard(row.board_vendor, row.board_model, row.board_revision))
    return [
        KernelRecord(
            id=k.id,
            kernel_release=k.kernel_release,
            kernel_version=k.kernel_version,
            build_id=k.build_id,
            artifact=None
            if k.artifact_name is None
            else {
                "name": k.artifact_name,
                "sha256": k.artifact_sha256,
                "format": k.artifact_format,
                "extracted_at": k.artifact_extracted_at.isoformat(),
            },
            boards=tuple(boards[k.id]),
        )
        for k in first.values()
    ]


class BoardsAndKernels(AuditLog):
    """Board models and revisions, and the vendor kernels registered for them."""

    def _board_id(self, conn: Connection, vendor: str, model: str, soc: str = "") -> int:
        self._insert_ignore(
            conn,
            board_models,
            {"vendor": vendor, "model": model, "soc": soc, "created_at": self.clock()},
            ["vendor", "model"],
        )
        return conn.execute(
            select(board_models.c.id).where(
                board_models.c.vendor == vendor, board_models.c.model == model
            )
        ).scalar_one()

    def _add_revision(self, conn: Connection, board_id: int, revision: str) -> None:
        self._insert_ignore(
            conn,
            board_revisions,
            {"board_model_id": board_id, "revision": revision},
            ["board_model_id", "revision"],
        )

    def register_board(
        self, vendor: str, model: str, soc: str, revisions: list[str], actor: Principal
    ) -> dict[str, Any]:
        vendor, model = text(vendor, "vendor", limit=NAME_MAX), text(model, "model", limit=NAME_MAX)
        soc = text(soc, "soc", allow_empty=True, limit=NAME_MAX)
        revisions = [
            text(r, f"revisions[{i}]", limit=REVISION_MAX) for i, r in enumerate(revisions)
        ]
        with self._tx(write=True) as conn:
            board_id = self._board_id(conn, vendor, model, soc)
            if soc:
                conn.execute(
                    board_models.update().where(board_models.c.id == board_id).values(soc=soc)
                )
            for revision in revisions:
                self._add_revision(conn, board_id, revision)
            self._audit(
                conn,
                actor,
                "register",
                "board",
                f"{vendor}/{model}",
                {"soc": soc, "revisions": revisions},
            )
        return self.get_board(vendor, model)

    def get_board(self, vendor: str, model: str) -> dict[str, Any]:
        boards = self.list_boards(vendor=vendor, model=model)
        if not boards:
            raise NotFound(f"board model {vendor!r} {model!r} is not known")
        return boards[0]

    def list_boards(
        self, vendor: str | None = None, model: str | None = None
    ) -> list[dict[str, Any]]:
        """Board models with their revisions and, per revision, the OS releases certified right now."""
        now = self.clock()
        query = select(board_models).order_by(board_models.c.vendor, board_models.c.model)
        if vendor is not None:
            query = query.where(board_models.c.vendor == vendor)
        if model is not None:
            query = query.where(board_models.c.model == model)
        with self._tx() as conn:
            models = conn.execute(query).mappings().all()
            ids = [m["id"] for m in models]
            revs = conn.execute(
                select(board_revisions.c.board_model_id, board_revisions.c.revision).where(
                    board_revisions.c.board_model_id.in_(ids)
                )
            ).all()
            valid = conn.execute(
                select(
                    certificates.c.board_model_id,
                    certificates.c.revision,
                    certificates.c.os_release,
                    func.count(),
                )
                .where(
                    certificates.c.board_model_id.in_(ids),
                    certificates.c.revoked_at.is_(None),
                    certificates.c.expires_at > now,
                    certificates.c.issued_at <= now,
                )
                .group_by(
                    certificates.c.board_model_id,
                    certificates.c.revision,
                    certificates.c.os_release,
                )
            ).all()
        out = []
        for m in models:
            revisions: dict[str, list[str]] = {
                r.revision: [] for r in revs if r.board_model_id == m["id"]
            }
            for v in valid:
                if v.board_model_id == m["id"]:
                    revisions.setdefault(v.revision, []).append(v.os_release)
            out.append(
                {
                    "vendor": m["vendor"],
                    "model": m["model"],
                    "soc": m["soc"],
                    "revisions": [
                        {"revision": rev, "certified_os_releases": sorted(rel)}
                        for rev, rel in sorted(revisions.items())
                    ],
                    "certified": any(revisions.values()),
                }
            )
        return out

    def register_kernel(
        self,
        kernel_release: str,
        kernel_version: str,
        build_id: str,
        boards: list[dict[str, str]],
        actor: Principal,
        artifact: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Register a vendor build. `artifact` (name, sha256, format) only from
        `register_kernel_artifact`, which extracted `build_id` itself; without it the id is
        the caller's word and is shown as unverified."""
        kernel_release = text(kernel_release, "kernel_release", limit=NAME_MAX)
        kernel_version = text(kernel_version, "kernel_version", allow_empty=True)
        build_id = normalise_build_id(text(build_id, "build_id", limit=NAME_MAX))
        if not boards:
            raise Invalid(
                "field 'boards' must name at least one board model", Location(field="boards")
            )
        cleaned = [
            (
                text(b.get("vendor"), f"boards[{i}].vendor", limit=NAME_MAX),
                text(b.get("model"), f"boards[{i}].model", limit=NAME_MAX),
                text(
                    b.get("revision") or "",
                    f"boards[{i}].revision",
                    allow_empty=True,
                    limit=REVISION_MAX,
                ),
            )
            for i, b in enumerate(boards)
        ]
        with self._tx(write=True) as conn:
            if not self._insert_ignore(
                conn,
                vendor_kernels,
                {
                    "kernel_release": kernel_release,
                    "kernel_version": kernel_version,
                    "build_id": build_id,
                    "created_at": self.clock(),
                },
                ["build_id"],
            ):
                raise Conflict(
                    f"kernel build {build_id!r} is already registered", Location(field="build_id")
                )
            kernel_id = conn.execute(
                select(vendor_kernels.c.id).where(vendor_kernels.c.build_id == build_id)
            ).scalar_one()
            for vendor, model, revision in cleaned:
                board_id = self._board_id(conn, vendor, model)
                if revision:
                    self._add_revision(conn, board_id, revision)
                self._insert_ignore(
                    conn,
                    kernel_boards,
                    {"kernel_id": kernel_id, "board_model_id": board_id, "revision": revision},
                    ["kernel_id", "board_model_id", "revision"],
                )
            if artifact is not None:
                conn.execute(
                    kernel_artifacts.insert().values(
                        kernel_id=kernel_id,
                        name=artifact["name"][:400],
                        sha256=artifact["sha256"],
                        format=artifact["format"][:100],
                        extracted_at=self.clock(),
                    )
                )
            self._audit(
                conn,
                actor,
                "register",
                "kernel",
                build_id,
                {"kernel_release": kernel_release, "boards": cleaned, "artifact": artifact},
            )
        return next(k for k in self.list_kernels() if k["build_id"] == build_id)

    def register_kernel_artifact(
        self,
        source: Path | bytes,
        boards: list[dict[str, str]],
        actor: Principal,
        *,
        name: str | None = None,
        kernel_release: str = "",
        kernel_version: str = "",
    ) -> dict[str, Any]:
        """Register the vendor build in a kernel artifact (.deb, bzImage, Image[.gz], vmlinux).

        The build id and release come from the artifact; a `kernel_release` given as well must
        agree with it. A malformed or hostile artifact is Invalid (exit 2 / HTTP 422).
        """
        from harness.kernelid.artifact import identify_artifact

        label = name or (source.name if isinstance(source, Path) else "upload")
        label = text(label, "name", limit=TEXT_MAX)
        where = str(source) if isinstance(source, Path) else label
        try:
            found = identify_artifact(source, label)
        except UserError as exc:
            raise Invalid(exc.message, Location(file=where, field="artifact")) from None
        release = found.kernel_release or ""
        if kernel_release and release and kernel_release != release:
            raise Invalid(
                f"the artifact is a build of {release}, not {kernel_release}",
                Location(file=where, field="kernel_release"),
            )
        release = release or kernel_release
        if not release:
            raise Invalid(
                "the artifact does not say its release: give it (uname -r of the build)",
                Location(file=where, field="kernel_release"),
            )
        digest = hashlib.sha256()
        if isinstance(source, Path):
            with source.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        else:
            digest.update(source)
        record = self.register_kernel(
            release,
            kernel_version,
            found.build_id,
            boards,
            actor,
            artifact={"name": label, "sha256": digest.hexdigest(), "format": found.format},
        )
        return {**record, "extraction_seconds": round(found.seconds, 3)}

    def _kernel_records(self, conn: Connection, where: Any) -> list[KernelRecord]:
        return kernel_records(conn.execute(kernels_query(where)).all())

    def list_kernels(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            return [
                k.as_evidence()
                for k in self._kernel_records(conn, vendor_kernels.c.id.is_not(None))
            ]
