"""The registry's tables (SQLAlchemy Core), identical on SQLite and PostgreSQL.

Uniqueness that the business depends on (one run per run id, one board model
per vendor and model, one certificate per run) is enforced by the database,
not by Python checks, so concurrent submitters cannot race past it. The audit
log is append-only at the database level: triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite would otherwise hand back naive ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the registry")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only autoincrements INTEGER keys

labs = Table(
    "labs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("public_key", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("role", String(10), nullable=False),
    Column("lab_id", ForeignKey("labs.id"), nullable=True),
    Column("label", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),  # None: until revoked
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

board_models = Table(
    "board_models",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("vendor", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("soc", String(200), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("vendor", "model", name="uq_board_model"),
)

board_revisions = Table(
    "board_revisions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("board_model_id", ForeignKey("board_models.id"), nullable=False),
    Column("revision", String(100), nullable=False),
    UniqueConstraint("board_model_id", "revision", name="uq_board_revision"),
)

# Run ids are the lab's own names, so they are unique per lab, not globally: one lab can
# never squat another's id. Everything that points at a run uses its row id (`runs.id`).
runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("run_id", String(200), nullable=False),
    Column("lab_id", ForeignKey("labs.id"), nullable=False),
    Column("bundle_sha256", String(64), nullable=False),
    Column("bundle_size", BigInteger, nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("plan_id", String(200), nullable=False),
    Column("plan_version", String(100), nullable=False),
    Column("board_model_id", ForeignKey("board_models.id"), nullable=False),
    Column("revision", String(100), nullable=False),
    Column("os_release", String(200), nullable=False),
    Column("kernel_release", String(200), nullable=False),
    Column("kernel_version", String(400), nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("lab_id", "run_id", name="uq_run_per_lab"),
)

# A bundle's bytes in pieces of at most BUNDLE_CHUNK bytes, so storing and serving a
# 200 MB bundle never holds it whole in memory (one LargeBinary value would, on both
# databases and in every driver).
BUNDLE_CHUNK = 1 << 20
bundle_chunks = Table(
    "bundle_chunks",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("run_pk", ForeignKey("runs.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    UniqueConstraint("run_pk", "seq", name="uq_bundle_chunk"),
)

certificates = Table(
    "certificates",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("run_pk", ForeignKey("runs.id"), nullable=False, unique=True),
    Column("run_id", String(200), nullable=False),
    Column("board_model_id", ForeignKey("board_models.id"), nullable=False),
    Column("revision", String(100), nullable=False),
    Column("os_release", String(200), nullable=False),
    Column("kernel_release", String(200), nullable=False),
    Column("kernel_version", String(400), nullable=False),
    Column("plan_id", String(200), nullable=False),
    Column("plan_version", String(100), nullable=False),
    Column("bundle_sha256", String(64), nullable=False),
    # The OS image the run deployed (`--image`), so the certificate names exactly what was
    # certified; null when the run took the unit as it was installed.
    Column("image_name", String(255), nullable=True),
    Column("image_sha256", String(64), nullable=True),
    Column("lab_id", ForeignKey("labs.id"), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_reason", Text, nullable=True),
    Index("ix_cert_board", "board_model_id", "revision", "os_release"),
)

vendor_kernels = Table(
    "vendor_kernels",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("kernel_release", String(200), nullable=False),
    Column("kernel_version", String(400), nullable=False, default=""),
    Column("build_id", String(200), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_kernel_release", "kernel_release"),
)

kernel_boards = Table(
    "kernel_boards",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("kernel_id", ForeignKey("vendor_kernels.id"), nullable=False),
    Column("board_model_id", ForeignKey("board_models.id"), nullable=False),
    # "" means every revision of the model
    Column("revision", String(100), nullable=False, default=""),
    UniqueConstraint("kernel_id", "board_model_id", "revision", name="uq_kernel_board"),
    Index("ix_kernel_board_model", "board_model_id"),
)

# The artifact a vendor kernel's build id was extracted from (`kernels add FILE`). A separate
# table, not new columns, so that registries created before it get it from create_all too; a
# kernel without a row here had its build id typed in, and is shown as unverified.
kernel_artifacts = Table(
    "kernel_artifacts",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("kernel_id", ForeignKey("vendor_kernels.id"), nullable=False, unique=True),
    Column("name", String(400), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("format", String(100), nullable=False),
    Column("extracted_at", UTCDateTime, nullable=False),
)

cases = Table(
    "cases",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", String(200), nullable=False, unique=True),
    Column("customer_ref", String(400), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("subsystem", String(200), nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("board_model_id", ForeignKey("board_models.id"), nullable=False),
    Column("revision", String(100), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("response_target_at", UTCDateTime, nullable=False),
    Column("verification_verdict", String(20), nullable=True),
    Column("verification_run_id", String(200), nullable=True),
    Column("verified_at", UTCDateTime, nullable=True),
)

case_runs = Table(
    "case_runs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.case_id"), nullable=False),
    Column("run_pk", ForeignKey("runs.id"), nullable=False),
    Column("run_id", String(200), nullable=False),
    Column("attached_at", UTCDateTime, nullable=False),
    UniqueConstraint("case_id", "run_pk", name="uq_case_run"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("entity", String(50), nullable=False),
    Column("entity_key", String(400), nullable=False),
    Column("detail", Text, nullable=False),
)


def add_missing_columns(connection: Connection) -> list[str]:
    """Add the nullable columns a newer harness defines to tables an older one created.

    `create_all` creates missing tables but never alters existing ones, so a registry
    database made before a column existed (e.g. token expiry) would otherwise fail on
    its first query. Only nullable columns can be added this way; returns what was added.
    """
    from sqlalchemy import inspect

    inspector = inspect(connection)
    added = []
    for table in metadata.sorted_tables:
        existing = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in existing or not column.nullable:
                continue
            kind = column.type.compile(dialect=connection.dialect)
            connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
            added.append(f"{table.name}.{column.name}")
    return added


_APPEND_ONLY_SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
]
_APPEND_ONLY_POSTGRES = [
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
]


@event.listens_for(audit_log, "after_create")
def _make_append_only(target: Table, connection: Connection, **_: Any) -> None:
    statements = (
        _APPEND_ONLY_POSTGRES if connection.dialect.name == "postgresql" else _APPEND_ONLY_SQLITE
    )
    for statement in statements:
        connection.exec_driver_sql(statement)


# Added for customer-case reproduction (docs/repro.md); new tables rather than new columns so an
# existing registry database gains them through create_all without a migration.
case_intake = Table(
    "case_intake",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.case_id"), nullable=False, unique=True),
    Column("os_release", String(200), nullable=False, default=""),
    Column("kernel_release", String(200), nullable=False, default=""),
    Column("kernel_version", String(400), nullable=False, default=""),
    Column("eligibility_status", String(50), nullable=False),
    Column("eligibility", Text, nullable=False),
)

repro_runs = Table(
    "repro_runs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    # Run ids are unique per lab only: the row of `runs` is the key, the text id is shown.
    Column("run_pk", ForeignKey("runs.id"), nullable=False, unique=True),
    Column("run_id", String(200), nullable=False),
    Column("case_id", String(200), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("iterations", Integer, nullable=False),
    Column("reproduced", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("rate", Float, nullable=True),
    Column("ci_low", Float, nullable=True),
    Column("ci_high", Float, nullable=True),
    Column("signature_match", String(40), nullable=True),
    Column("verify_verdict", String(20), nullable=True),
    Index("ix_repro_case", "case_id"),
)
