"""The store's plumbing: the engine, one transaction per call, insert-if-absent, and who calls.

Every concern of the registry (store/labs.py, boards.py, runs.py, certificates.py,
cases.py, audit.py) is a class over this one, and `Store` (store/__init__.py) combines
them, so each call still takes its own connection and transaction.
Duplicate-sensitive inserts use INSERT ... ON CONFLICT DO NOTHING and then read back the
winner, which is correct under concurrency on both databases; SQLite write transactions
start with BEGIN IMMEDIATE so two writers queue on the busy timeout instead of
deadlocking on a lock upgrade.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, OperationalError

from harness.errors import InfraError, Location, UserError
from harness.registry.business_hours import SupportCalendar
from harness.registry.schema import add_missing_columns, metadata


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
    """What a registry operator chooses: how long a certificate is valid, whose business hours."""

    validity_days: int = 365
    calendar: SupportCalendar = field(default_factory=SupportCalendar)


def _now() -> datetime:
    return datetime.now(UTC)


def _one_line(error: object) -> str:
    """Driver messages span lines; a harness error is one paragraph."""
    return " ".join(str(error).split())


def hash_token(secret: str) -> str:
    """Only a token's sha256 is stored: a copy of the database gives no usable token."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# A pooled PostgreSQL connection unused for this long is checked before it is handed out.
PING_AFTER_IDLE = 2.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it has been idle, not on every checkout.

    SQLAlchemy's pool_pre_ping checks every checkout: one more round trip per transaction,
    which doubled the time of a primary-key lookup on a busy registry. A connection dropped
    by a database restart or an idle timeout is one that sat in the pool, so that is when it
    is checked (with the dialect's own ping); a dead one is replaced, and the caller never
    sees it. A connection used a moment ago goes out as it is.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure: the pool replaces the connection and retries
            raise DisconnectionError(f"pooled connection is dead: {_one_line(exc)}") from exc


def make_engine(url: str) -> Engine:
    """An engine for a SQLAlchemy URL; SQLite gets WAL, a busy timeout and foreign keys."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"not a database URL: {url!r}", Location(field="database")) from None
    if parsed.drivername.startswith("postgresql"):
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_size=10, max_overflow=30)
        _ping_when_idle(engine)
        return engine
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


class StoreBase:
    """One database, one transaction per call. Thread-safe: each call takes its own connection."""

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

    def _upsert_maker(self) -> Any:
        """The dialect's INSERT that knows ON CONFLICT."""
        return pg_insert if self.dialect == "postgresql" else sqlite_insert

    def _insert_ignore(
        self, conn: Connection, table: Any, values: dict[str, Any], keys: list[str]
    ) -> int:
        """Insert unless a row with the same unique `keys` exists; returns rows inserted (0 or 1)."""
        stmt = (
            self._upsert_maker()(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=keys)
            .returning(table.c.id)
        )
        # RETURNING, not rowcount: drivers may report -1 for an INSERT with implicit RETURNING.
        return 0 if conn.execute(stmt).first() is None else 1

    def close(self) -> None:
        self.engine.dispose()
