"""The audit log: every write appends an entry inside its own transaction, so a write and its
audit entry exist together or not at all; admins read the newest entries."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from harness.registry.schema import audit_log
from harness.registry.store.base import Principal, StoreBase


class AuditLog(StoreBase):
    """The append-only audit log (the database refuses updates and deletes of it)."""

    def _audit(
        self,
        conn: Connection,
        actor: Principal,
        action: str,
        entity: str,
        key: Any,
        detail: dict[str, Any],
    ) -> None:
        conn.execute(
            audit_log.insert().values(
                at=self.clock(),
                actor=actor.actor,
                action=action,
                entity=entity,
                entity_key=str(key),
                detail=json.dumps(detail, sort_keys=True, default=str),
            )
        )

    def audit_entries(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = (
                conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit))
                .mappings()
                .all()
            )
        return [{**r, "at": r["at"].isoformat(), "detail": json.loads(r["detail"])} for r in rows]
