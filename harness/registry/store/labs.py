"""Labs and their bearer tokens: enrolment, lab principals, token issue, use, revocation, rotation."""

from __future__ import annotations

import secrets
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from harness.errors import Location, UserError
from harness.labkey import decode_public_key, fingerprint, verify_enrolment
from harness.registry.errors import Conflict, Invalid, NotFound
from harness.registry.rules import NAME_MAX, ROLES, one_of, text, validity
from harness.registry.schema import labs, tokens
from harness.registry.store.audit import AuditLog
from harness.registry.store.base import LOCAL_ADMIN, Principal, hash_token

# A token's last use is recorded at most this often, so a busy lab's reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class LabsAndTokens(AuditLog):
    """Labs (registered from their signed enrolment) and bearer tokens."""

    def add_lab(
        self,
        name: str,
        public_key: str,
        actor: Principal = LOCAL_ADMIN,
        signature: str | None = None,
    ) -> str:
        """Register a lab and its signing key; returns a new lab token (shown once).

        With `signature` (the lab's enrolment, `harness registry labs self --json`), the name
        must be the one the key's holder signs its bundles with: checked here, so a wrong
        name is refused now rather than at the lab's first submission.
        """
        name = text(name, "name", limit=NAME_MAX)
        decode_public_key(public_key, Location(field="public_key"))
        if signature is not None and not verify_enrolment(name, public_key, signature):
            raise Invalid(
                f"the enrolment signature does not match lab name {name!r} and this key: the lab "
                "signs its bundles under another name, or the statement was edited; register the "
                "unedited output of `harness registry labs self --json` from the lab",
                Location(field="signature"),
            )
        with self._tx(write=True) as conn:
            if not self._insert_ignore(
                conn,
                labs,
                {"name": name, "public_key": public_key.strip(), "created_at": self.clock()},
                ["name"],
            ):
                raise Conflict(f"lab {name!r} is already registered", Location(field="name"))
            lab_id = conn.execute(select(labs.c.id).where(labs.c.name == name)).scalar_one()
            secret, _ = self._new_token(conn, "lab", f"lab {name}", lab_id, None)
            self._audit(conn, actor, "register", "lab", name, {"public_key": public_key.strip()})
        return secret

    def ensure_lab(self, name: str, public_key: str) -> None:
        """Local registry only: make sure this machine's own lab is registered with its key."""
        with self._tx() as conn:
            row = conn.execute(select(labs.c.public_key).where(labs.c.name == name)).first()
        if row is None:
            with suppress(Conflict):  # another process registered it first
                self.add_lab(name, public_key, Principal(role="admin", label="local-setup"))
        elif row.public_key != public_key.strip():
            raise UserError(
                f"the local registry knows lab {name!r} with a different key",
                Location(field="lab"),
                "the lab key was replaced; register the new key with `harness registry labs add`",
            )

    def lab_principal(self, name: str) -> Principal:
        with self._tx() as conn:
            row = conn.execute(select(labs.c.id, labs.c.name).where(labs.c.name == name)).first()
        if row is None:
            raise NotFound(f"lab {name!r} is not registered", Location(field="lab"))
        return Principal(role="lab", label=f"lab {row.name}", lab_id=row.id, lab_name=row.name)

    def create_token(self, role: str, label: str, lab: str | None = None, **options: Any) -> str:
        """Only the new token's secret (shown once; only its sha256 is stored): for local setup
        and tests. `options` are create_token_record's `actor` and `expires_in_days`."""
        return self.create_token_record(role, label, lab, **options)["token"]

    def create_token_record(
        self,
        role: str,
        label: str,
        lab: str | None = None,
        actor: Principal = LOCAL_ADMIN,
        expires_in_days: int | None = None,
    ) -> dict[str, Any]:
        """Like create_token, but answers the token's record (id, expiry, ...) with `token`."""
        one_of(role, "role", ROLES)
        label = text(label, "label", limit=NAME_MAX)
        expires_at = self._expiry(expires_in_days)
        with self._tx(write=True) as conn:
            lab_id = None
            if role == "lab":
                if not lab:
                    raise Invalid("field 'lab' is required for a lab token", Location(field="lab"))
                lab_id = conn.execute(select(labs.c.id).where(labs.c.name == lab)).scalar()
                if lab_id is None:
                    raise NotFound(f"lab {lab!r} is not registered", Location(field="lab"))
            elif lab:
                raise Invalid(
                    f"field 'lab' is only for lab tokens, not {role} tokens", Location(field="lab")
                )
            secret, token_id = self._new_token(conn, role, label, lab_id, expires_at)
            self._audit(
                conn,
                actor,
                "create",
                "token",
                label,
                {"id": token_id, "role": role, "lab": lab, "expires_at": expires_at},
            )
        return {**self.get_token(token_id), "token": secret}

    def _expiry(self, days: int | None) -> datetime | None:
        period = validity(days)
        return None if period is None else self.clock() + period

    def _new_token(
        self,
        conn: Connection,
        role: str,
        label: str,
        lab_id: int | None,
        expires_at: datetime | None,
    ) -> tuple[str, int]:
        secret = f"hrt_{role}_{secrets.token_urlsafe(24)}"
        token_id = conn.execute(
            tokens.insert()
            .values(
                token_sha256=hash_token(secret),
                role=role,
                lab_id=lab_id,
                label=label,
                created_at=self.clock(),
                expires_at=expires_at,
            )
            .returning(tokens.c.id)
        ).scalar_one()
        return secret, token_id

    def authenticate(self, secret: str) -> Principal | None:
        """The caller behind a token; None for an unknown, revoked or expired token.

        Records when the token was last used, at most once a minute per token, so a busy
        lab does not turn every read into a write.
        """
        now = self.clock()
        with self._tx() as conn:
            row = conn.execute(
                select(
                    tokens.c.id,
                    tokens.c.role,
                    tokens.c.label,
                    tokens.c.lab_id,
                    tokens.c.expires_at,
                    tokens.c.revoked_at,
                    tokens.c.last_used_at,
                    labs.c.name,
                )
                .select_from(tokens.outerjoin(labs, labs.c.id == tokens.c.lab_id))
                .where(tokens.c.token_sha256 == hash_token(secret))
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            with self._tx(write=True) as conn:
                conn.execute(tokens.update().where(tokens.c.id == row.id).values(last_used_at=now))
        return Principal(role=row.role, label=row.label, lab_id=row.lab_id, lab_name=row.name)

    def _token_query(self) -> Any:
        return select(tokens, labs.c.name.label("lab")).select_from(
            tokens.outerjoin(labs, labs.c.id == tokens.c.lab_id)
        )

    def _token_record(self, row: Any, now: datetime) -> dict[str, Any]:
        state = (
            "revoked"
            if row.revoked_at is not None
            else "expired"
            if row.expires_at is not None and row.expires_at <= now
            else "valid"
        )

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": row.id,
            "role": row.role,
            "label": row.label,
            "lab": row.lab,
            "created_at": iso(row.created_at),
            "expires_at": iso(row.expires_at),
            "last_used_at": iso(row.last_used_at),
            "revoked_at": iso(row.revoked_at),
            "state": state,
        }

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every token ever issued (never the secret): role, holder, expiry, last use, state."""
        now = self.clock()
        with self._tx() as conn:
            rows = conn.execute(self._token_query().order_by(tokens.c.id)).all()
        return [self._token_record(r, now) for r in rows]

    def get_token(self, token_id: int) -> dict[str, Any]:
        with self._tx() as conn:
            row = conn.execute(self._token_query().where(tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"token {token_id} does not exist", Location(field="token_id"))
        return self._token_record(row, self.clock())

    def revoke_token(self, token_id: int, actor: Principal = LOCAL_ADMIN) -> dict[str, Any]:
        """Revoke a token now; requests with it are refused (401) from the next one on."""
        with self._tx(write=True) as conn:
            self._revoke_token(conn, token_id, actor, "revoke")
        return self.get_token(token_id)

    def _revoke_token(self, conn: Connection, token_id: int, actor: Principal, why: str) -> Any:
        row = conn.execute(select(tokens).where(tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"token {token_id} does not exist", Location(field="token_id"))
        if row.revoked_at is not None:
            raise Conflict(
                f"token {token_id} was already revoked on {row.revoked_at.isoformat()}",
                Location(field="token_id"),
            )
        conn.execute(tokens.update().where(tokens.c.id == token_id).values(revoked_at=self.clock()))
        self._audit(conn, actor, why, "token", row.label, {"id": token_id, "role": row.role})
        return row

    def rotate_token(
        self, token_id: int, actor: Principal = LOCAL_ADMIN, expires_in_days: int | None = None
    ) -> dict[str, Any]:
        """Revoke a token and issue its replacement (same role, holder and lab) in one step.

        The replacement keeps the old token's validity period unless `expires_in_days` is
        given; the answer holds the new secret (shown once) and the new token's record.
        """
        with self._tx(write=True) as conn:
            old = self._revoke_token(conn, token_id, actor, "rotate")
            if expires_in_days is not None:
                expires_at = self._expiry(expires_in_days)
            elif old.expires_at is not None:
                expires_at = self.clock() + (old.expires_at - old.created_at)
            else:
                expires_at = None
            secret, new_id = self._new_token(conn, old.role, old.label, old.lab_id, expires_at)
            self._audit(
                conn,
                actor,
                "create",
                "token",
                old.label,
                {"id": new_id, "role": old.role, "replaces": token_id, "expires_at": expires_at},
            )
        return {**self.get_token(new_id), "token": secret, "replaces": token_id}

    def list_labs(self, name: str | None = None) -> list[dict[str, Any]]:
        """Registered labs (or the one called `name`) with their key's fingerprint."""
        query = select(labs).order_by(labs.c.name)
        if name is not None:
            query = query.where(labs.c.name == name)
        with self._tx() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "name": r["name"],
                "public_key": r["public_key"],
                "fingerprint": fingerprint(r["public_key"]),
                "created_at": r["created_at"].isoformat(),
            }
            for r in rows
        ]

    def get_lab(self, name: str) -> dict[str, Any]:
        found = self.list_labs(name)
        if not found:
            raise NotFound(f"lab {name!r} is not registered", Location(field="lab"))
        return found[0]
