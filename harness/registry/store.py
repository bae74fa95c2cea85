"""The registry store: every read and write, one transaction each, on SQLite or PostgreSQL.

One class so the HTTP API, the CLI and the local (serverless) client share
exactly the same rules. Writes append to the audit log inside the same
transaction, so a write and its audit entry exist together or not at all.
Duplicate-sensitive inserts use INSERT ... ON CONFLICT DO NOTHING and then
read back the winner, which is correct under concurrency on both databases;
SQLite write transactions start with BEGIN IMMEDIATE so two writers queue on
the busy timeout instead of deadlocking on a lock upgrade.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Literal
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from harness.errors import InfraError, Location, UserError
from harness.labkey import decode_public_key, fingerprint, verify_enrolment
from harness.registry.business_hours import SupportCalendar
from harness.registry.eligibility import (
    Answer,
    CertRecord,
    Device,
    KernelBoard,
    KernelRecord,
    evaluate,
    normalise_build_id,
)
from harness.registry.errors import Conflict, Forbidden, Invalid, NotFound
from harness.registry.schema import (
    BUNDLE_CHUNK,
    add_missing_columns,
    audit_log,
    board_models,
    board_revisions,
    bundle_chunks,
    case_intake,
    case_runs,
    cases,
    certificates,
    kernel_artifacts,
    kernel_boards,
    labs,
    metadata,
    repro_runs,
    runs,
    tokens,
    vendor_kernels,
)
from harness.registry.submission import check_bundle
from harness.registry.textrules import check_text

Role = Literal["admin", "lab", "reader"]
ROLES: tuple[str, ...] = ("admin", "lab", "reader")
SEVERITIES = ("critical", "high", "medium", "low")
CASE_VERDICTS = ("resolved", "not-resolved")
RESPONSE_BUSINESS_HOURS = 12
TEXT_MAX = 400
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_ROW_ID = 2**63 - 1
# Free text that may span lines (a case summary, a revocation reason); every other
# field is a name and must be one printable line.
# A case's opening time: wide enough for imported history, narrow enough that the
# response target (12 business hours later) always fits in a datetime.
OPENED_AT_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
MULTILINE_FIELDS = frozenset({"summary", "reason"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's role, and for lab tokens the lab it speaks for."""

    role: str
    label: str
    lab_id: int | None = None
    lab_name: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.label}"


LOCAL_ADMIN = Principal(role="admin", label="local-cli")


@dataclass
class Settings:
    validity_days: int = 365
    calendar: SupportCalendar = field(default_factory=SupportCalendar)


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: Any, name: str, *, allow_empty: bool = False, limit: int = TEXT_MAX) -> str:
    """Type, emptiness, length and characters (harness.registry.textrules) of a text field."""
    if not isinstance(value, str):
        raise Invalid(f"field '{name}' must be a string", Location(field=name))
    if not allow_empty and not value.strip():
        raise Invalid(f"field '{name}' must not be empty", Location(field=name))
    if len(value) > limit:
        raise Invalid(f"field '{name}' is longer than {limit} characters", Location(field=name))
    problem = check_text(value, multiline=name in MULTILINE_FIELDS)
    if problem:
        raise Invalid(f"field '{name}' {problem}", Location(field=name))
    return value


def _row_id(value: int, name: str) -> int:
    """A row id from a URL: anything outside a 63-bit key cannot exist (and would overflow the driver)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ROW_ID:
        raise NotFound(f"{name.replace('_', ' ')} {value} does not exist", Location(field=name))
    return value


def _one_line(error: object) -> str:
    """Driver messages span lines; a harness error is one paragraph."""
    return " ".join(str(error).split())


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def make_engine(url: str) -> Engine:
    """An engine for a SQLAlchemy URL; SQLite gets WAL, a busy timeout and foreign keys."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"not a database URL: {url!r}", Location(field="database")) from None
    if parsed.drivername.startswith("postgresql"):
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_size=10, max_overflow=30, pool_pre_ping=True)
    if not parsed.drivername.startswith("sqlite"):
        raise UserError(
            f"unsupported database {parsed.drivername!r} (use sqlite or postgresql)",
            Location(field="database"),
        )
    if parsed.database and parsed.database != ":memory:":
        _create_private(Path(parsed.database))
    engine = create_engine(
        parsed,
        connect_args={"timeout": 60, "check_same_thread": False},
        pool_size=10,
        max_overflow=30,
    )

    @event.listens_for(engine, "connect")
    def _sqlite_setup(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _begin)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _create_private(path: Path) -> None:
    """Create the SQLite file (and its folder) readable by its owner only, before SQLite opens it.

    It holds token hashes and every lab's evidence. SQLite creates its -wal and -shm
    files with the main file's permissions, so they are private too.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise InfraError(f"cannot create the registry database {path}: {exc.strerror}") from None
    os.close(fd)


class Store:
    """The registry's rules over one database. Thread-safe: each call takes its own connection."""

    def __init__(
        self, url: str, settings: Settings | None = None, clock: Callable[[], datetime] = _now
    ):
        self.url = url
        self.settings = settings or Settings()
        self.clock = clock
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._create_schema()

    # ---- plumbing -------------------------------------------------------------------------

    def _create_schema(self) -> None:
        try:
            with self._tx(write=True) as conn:
                metadata.create_all(conn, checkfirst=True)
                add_missing_columns(conn)
        except (OperationalError, DBAPIError) as exc:
            if self.dialect == "postgresql" and "already exists" in str(exc):
                return  # another process created it at the same moment
            raise InfraError(
                f"cannot open the registry database {self._safe_url()}: {exc.orig}"
            ) from None

    def _safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[Connection]:
        """One transaction; database outages become InfraError (exit 3 / HTTP 503), not tracebacks."""
        try:
            with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE" if write else "DEFERRED")
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise InfraError(f"registry database unavailable: {_one_line(exc.orig)}") from None

    def _insert_ignore(
        self, conn: Connection, table: Any, values: dict[str, Any], keys: list[str]
    ) -> int:
        """Insert unless a row with the same unique `keys` exists; returns rows inserted (0 or 1)."""
        maker = pg_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = (
            maker(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=keys)
            .returning(table.c.id)
        )
        # RETURNING, not rowcount: drivers may report -1 for an INSERT with implicit RETURNING.
        return 0 if conn.execute(stmt).first() is None else 1

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

    def close(self) -> None:
        self.engine.dispose()

    # ---- labs and tokens ------------------------------------------------------------------

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
        name = _text(name, "name", limit=200)
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

    def create_token(
        self,
        role: str,
        label: str,
        lab: str | None = None,
        actor: Principal = LOCAL_ADMIN,
        expires_in_days: int | None = None,
    ) -> str:
        """A new bearer token (the secret is returned once; only its sha256 is stored)."""
        return self.create_token_record(role, label, lab, actor, expires_in_days)["token"]

    def create_token_record(
        self,
        role: str,
        label: str,
        lab: str | None = None,
        actor: Principal = LOCAL_ADMIN,
        expires_in_days: int | None = None,
    ) -> dict[str, Any]:
        """Like create_token, but answers the token's record (id, expiry, ...) with `token`."""
        if role not in ROLES:
            raise Invalid(f"field 'role' must be one of {', '.join(ROLES)}", Location(field="role"))
        label = _text(label, "label", limit=200)
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
        if days is None:
            return None
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise Invalid(
                "field 'expires_in_days' must be a whole number of days from 1 to 3650",
                Location(field="expires_in_days"),
            )
        return self.clock() + timedelta(days=days)

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

    def list_labs(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(select(labs).order_by(labs.c.name)).mappings().all()
        return [
            {
                "name": r["name"],
                "public_key": r["public_key"],
                "fingerprint": fingerprint(r["public_key"]),
                "created_at": r["created_at"].isoformat(),
            }
            for r in rows
        ]

    # ---- boards ---------------------------------------------------------------------------

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
        vendor, model = _text(vendor, "vendor", limit=200), _text(model, "model", limit=200)
        soc = _text(soc, "soc", allow_empty=True, limit=200)
        revisions = [_text(r, f"revisions[{i}]", limit=100) for i, r in enumerate(revisions)]
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

    # ---- submissions and certificates -----------------------------------------------------

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
            maker = pg_insert if self.dialect == "postgresql" else sqlite_insert
            run_pk = conn.execute(
                maker(runs)
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

    def _cert_query(self) -> Any:
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
        cert_id = _row_id(cert_id, "certificate_id")
        with self._tx() as conn:
            row = conn.execute(self._cert_query().where(certificates.c.id == cert_id)).first()
        if row is None:
            raise NotFound(
                f"certificate {cert_id} does not exist", Location(field="certificate_id")
            )
        return self._cert_record(row).as_evidence()

    def revoke_certificate(self, cert_id: int, reason: str, actor: Principal) -> dict[str, Any]:
        cert_id = _row_id(cert_id, "certificate_id")
        reason = _text(reason, "reason", limit=2000)
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

    # ---- vendor kernels -------------------------------------------------------------------

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
        kernel_release = _text(kernel_release, "kernel_release", limit=200)
        kernel_version = _text(kernel_version, "kernel_version", allow_empty=True)
        build_id = normalise_build_id(_text(build_id, "build_id", limit=200))
        if not boards:
            raise Invalid(
                "field 'boards' must name at least one board model", Location(field="boards")
            )
        cleaned = [
            (
                _text(b.get("vendor"), f"boards[{i}].vendor", limit=200),
                _text(b.get("model"), f"boards[{i}].model", limit=200),
                _text(
                    b.get("revision") or "", f"boards[{i}].revision", allow_empty=True, limit=100
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
        label = _text(label, "name", limit=400)
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
        kernel_rows = conn.execute(
            select(vendor_kernels).where(where).order_by(vendor_kernels.c.id)
        ).all()
        if not kernel_rows:
            return []
        board_rows = conn.execute(
            select(
                kernel_boards.c.kernel_id,
                board_models.c.vendor,
                board_models.c.model,
                kernel_boards.c.revision,
            )
            .select_from(
                kernel_boards.join(
                    board_models, board_models.c.id == kernel_boards.c.board_model_id
                )
            )
            .where(kernel_boards.c.kernel_id.in_([k.id for k in kernel_rows]))
            .order_by(kernel_boards.c.id)
        ).all()
        artifact_rows = conn.execute(
            select(kernel_artifacts).where(
                kernel_artifacts.c.kernel_id.in_([k.id for k in kernel_rows])
            )
        ).all()
        artifacts = {
            a.kernel_id: {
                "name": a.name,
                "sha256": a.sha256,
                "format": a.format,
                "extracted_at": a.extracted_at.isoformat(),
            }
            for a in artifact_rows
        }
        return [
            KernelRecord(
                id=k.id,
                kernel_release=k.kernel_release,
                kernel_version=k.kernel_version,
                build_id=k.build_id,
                artifact=artifacts.get(k.id),
                boards=tuple(
                    KernelBoard(b.vendor, b.model, b.revision)
                    for b in board_rows
                    if b.kernel_id == k.id
                ),
            )
            for k in kernel_rows
        ]

    def list_kernels(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            return [
                k.as_evidence()
                for k in self._kernel_records(conn, vendor_kernels.c.id.is_not(None))
            ]

    # ---- eligibility ----------------------------------------------------------------------

    def eligibility(self, device: Device) -> Answer:
        """Fetch every record that could decide or explain the answer, then apply the rules.

        Two or three round trips whatever the data: the certificates of the board model, and
        the vendor kernels of that release or made for that model (plus their board lists).
        """
        board = (
            select(board_models.c.id)
            .where(board_models.c.vendor == device.vendor, board_models.c.model == device.model)
            .scalar_subquery()
        )
        for_board = select(kernel_boards.c.kernel_id).where(kernel_boards.c.board_model_id == board)
        with self._tx() as conn:
            rows = conn.execute(
                self._cert_query().where(certificates.c.board_model_id == board)
            ).all()
            certs = [self._cert_record(r) for r in rows]
            kernels = self._kernel_records(
                conn,
                or_(
                    vendor_kernels.c.kernel_release == device.kernel_release,
                    vendor_kernels.c.id.in_(for_board),
                    vendor_kernels.c.build_id == normalise_build_id(device.kernel_build_id),
                ),
            )
        return evaluate(device, certs, kernels, self.clock())

    # ---- customer cases -------------------------------------------------------------------

    def open_case(self, fields: dict[str, Any], actor: Principal) -> dict[str, Any]:
        """Open a case, compute its response target and check the device's eligibility at intake."""
        case_id = _text(fields.get("case_id"), "case_id", limit=200)
        customer_ref = _text(fields.get("customer_ref"), "customer_ref")
        severity = fields.get("severity")
        if severity not in SEVERITIES:
            raise Invalid(
                f"field 'severity' must be one of {', '.join(SEVERITIES)}",
                Location(field="severity"),
            )
        subsystem = _text(fields.get("subsystem"), "subsystem", limit=200)
        summary = _text(fields.get("summary", ""), "summary", allow_empty=True, limit=10000)
        vendor = _text(fields.get("vendor"), "vendor", limit=200)
        model = _text(fields.get("model"), "model", limit=200)
        revision = _text(fields.get("revision"), "revision", limit=100)
        software = {
            name: _text(fields.get(name) or "", name, allow_empty=True, limit=limit)
            for name, limit in (
                ("os_release", 200),
                ("kernel_release", 200),
                ("kernel_version", 400),
            )
        }
        opened_at = fields.get("opened_at") or self.clock()
        if not isinstance(opened_at, datetime) or opened_at.tzinfo is None:
            raise Invalid(
                "field 'opened_at' must be an ISO 8601 time with a time zone",
                Location(field="opened_at"),
            )
        try:
            in_range = OPENED_AT_RANGE[0] <= opened_at.astimezone(UTC) < OPENED_AT_RANGE[1]
        except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
            in_range = False
        if not in_range:
            raise Invalid(
                f"field 'opened_at' must lie between {OPENED_AT_RANGE[0]:%Y-%m-%d} and "
                f"{OPENED_AT_RANGE[1]:%Y-%m-%d} (UTC)",
                Location(field="opened_at"),
            )
        target = self.settings.calendar.response_target(opened_at)
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
                    "opened_at": opened_at,
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
            if self._insert_ignore(
                conn,
                case_runs,
                {
                    "case_id": case_id,
                    "run_pk": run_pk,
                    "run_id": run_id,
                    "attached_at": self.clock(),
                },
                ["case_id", "run_pk"],
            ):
                self._audit(conn, actor, "attach", "case", case_id, {"run_id": run_id})
        return self.get_case(case_id)

    def verify_case(
        self, case_id: str, verdict: str, run_id: str, actor: Principal
    ) -> dict[str, Any]:
        """Record the verification verdict; `resolved` must rest on a passing verify run.

        That run must be a verify-resolution run (`harness repro --verify`) of this case,
        whose own verdict is `resolved`, on a board of the case's model.
        """
        if verdict not in CASE_VERDICTS:
            raise Invalid(
                f"field 'verdict' must be one of {', '.join(CASE_VERDICTS)}",
                Location(field="verdict"),
            )
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
            self._insert_ignore(
                conn,
                case_runs,
                {
                    "case_id": case_id,
                    "run_pk": run_pk,
                    "run_id": run_id,
                    "attached_at": self.clock(),
                },
                ["case_id", "run_pk"],
            )
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

    def run_report(self, run_id: str) -> bytes:
        """The HTML report inside a stored repro run's bundle (verified when it was stored)."""
        from harness.report.bundle import read_member

        data = self.get_bundle(run_id)
        try:
            return read_member(data, "run/report.html")
        except KeyError:
            raise NotFound(f"run {run_id!r} has no HTML report", Location(field="run_id")) from None

    # ---- audit ----------------------------------------------------------------------------

    def audit_entries(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = (
                conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit))
                .mappings()
                .all()
            )
        return [{**r, "at": r["at"].isoformat(), "detail": json.loads(r["detail"])} for r in rows]
