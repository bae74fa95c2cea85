"""Bulk-loading a registry with synthetic certificates, fast enough for a million.

Row-by-row inserts through the ORM take many minutes at 1M certificates, so the loader
writes straight through the database driver: one `executemany` in one transaction on
SQLite, `COPY ... FROM STDIN` on PostgreSQL. Values go in exactly as the store writes
them: datetimes through the column type's own bind processor (cached per distinct
value, there are only a few). Each call adds the models [first, last) with 4 revisions
x 5 OS releases = 20 certificates each (their runs included) and a vendor kernel for
every second model, so the database can be grown 10k -> 100k -> 1M between measurements.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table

from harness.registry.eligibility import Device
from harness.registry.schema import (
    board_models,
    board_revisions,
    certificates,
    kernel_boards,
    labs,
    runs,
    vendor_kernels,
)
from harness.registry.store import Store

REVISIONS = ["A1", "A2", "B1", "C1"]
RELEASES = ["Debian 11", "Debian 12", "Debian 13", "Ubuntu 22.04", "Ubuntu 24.04"]
PER_MODEL = len(REVISIONS) * len(RELEASES)
NOW = datetime(2026, 11, 1, tzinfo=UTC)


class Loader:
    def __init__(self, store: Store):
        self.store = store
        self.dialect = store.engine.dialect
        self.postgres = self.dialect.name == "postgresql"
        self._processed: dict[tuple[str, str, Any], Any] = {}

    def _value(self, table: Table, column: str, value: Any) -> Any:
        if self.postgres or not isinstance(value, datetime):
            return value  # psycopg's COPY takes Python values as they are
        key = (table.name, column, value)
        if key not in self._processed:
            processor = table.c[column].type._cached_bind_processor(self.dialect)
            bound = table.c[column].type.process_bind_param(value, self.dialect)  # type: ignore[attr-defined]
            self._processed[key] = processor(bound) if processor else bound
        return self._processed[key]

    def insert(self, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        raw = self.store.engine.raw_connection()
        try:
            cursor = raw.cursor()
            names = ", ".join(columns)
            # The rows are consistent by construction, so foreign keys are not checked row by
            # row during the load (as pg_restore and bulk loaders do); they are back on after.
            if self.postgres:
                cursor.execute("SET session_replication_role = replica")
                with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in rows:
                        copy.write_row(row)
                cursor.execute("SET session_replication_role = DEFAULT")
            else:
                cursor.execute("PRAGMA foreign_keys=OFF")
                marks = ", ".join("?" for _ in columns)
                datetimes = {i for i, c in enumerate(columns) if "_at" in c}
                # The store's SQLite connections are in autocommit mode (it issues BEGIN
                # itself): without this, every row would be its own transaction.
                cursor.execute("BEGIN")
                cursor.executemany(
                    f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
                    (
                        tuple(
                            self._value(table, columns[i], v) if i in datetimes else v
                            for i, v in enumerate(row)
                        )
                        for row in rows
                    ),
                )
                cursor.execute("COMMIT")
                cursor.execute("PRAGMA foreign_keys=ON")
            raw.commit()
        finally:
            raw.close()

    def analyze(self) -> None:
        """Refresh the planner's statistics, as autovacuum (PostgreSQL) would after a load."""
        raw = self.store.engine.raw_connection()
        try:
            raw.cursor().execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()

    # -- the registry's content ---------------------------------------------------------------

    def lab(self) -> None:
        self.insert(
            labs,
            ["id", "name", "public_key", "created_at"],
            [(1, "bench-lab", "ed25519:" + "A" * 43 + "=", NOW)],
        )

    def models(self, first: int, last: int, seed: int = 7) -> None:
        """Models [first, last) with their revisions, certified runs and vendor kernels."""
        rng = random.Random(seed + first)
        self.insert(board_models, ["id", "vendor", "model", "soc", "created_at"],
                    ((m + 1, f"Vendor {m % 50}", f"Model-{m}", "SoC", NOW) for m in range(first, last)))  # fmt: skip
        self.insert(board_revisions, ["id", "board_model_id", "revision"],
                    ((m * 4 + i + 1, m + 1, r) for m in range(first, last) for i, r in enumerate(REVISIONS)))  # fmt: skip
        old, recent = NOW - timedelta(days=400), NOW - timedelta(days=30)
        states = [rng.random() for _ in range((last - first) * PER_MODEL)]

        def certs() -> Iterable[tuple[int, int, str, str, datetime, float]]:
            index = first * PER_MODEL
            for m in range(first, last):
                for rev in REVISIONS:
                    for rel in RELEASES:
                        state = states[index - first * PER_MODEL]
                        yield index + 1, m + 1, rev, rel, old if state < 0.1 else recent, state
                        index += 1

        self.insert(runs, ["id", "run_id", "lab_id", "bundle_sha256", "bundle_size", "verdict", "plan_id",
                           "plan_version", "board_model_id", "revision", "os_release", "kernel_release",
                           "kernel_version", "finished_at", "received_at"],
                    ((i, f"bench-run-{i}", 1, "0" * 64, 0, "certified", "precert", "1.0", m, rev, rel,
                      "6.1.0-27-arm64", "", at, at) for i, m, rev, rel, at, _ in certs()))  # fmt: skip
        self.insert(certificates, ["id", "run_pk", "run_id", "board_model_id", "revision", "os_release",
                                   "kernel_release", "kernel_version", "plan_id", "plan_version",
                                   "bundle_sha256", "lab_id", "issued_at", "expires_at", "revoked_at",
                                   "revoked_reason"],
                    ((i, i, f"bench-run-{i}", m, rev, rel, "6.1.0-27-arm64", "", "precert", "1.0", "0" * 64, 1,
                      at, at + timedelta(days=365), NOW if 0.1 <= s < 0.15 else None,
                      "bench revocation" if 0.1 <= s < 0.15 else None)
                     for i, m, rev, rel, at, s in certs()))  # fmt: skip
        kernels = range(first // 2 + (first % 2), (last + 1) // 2)  # kernel k is for model 2k
        self.insert(vendor_kernels, ["id", "kernel_release", "kernel_version", "build_id", "created_at"],
                    ((k + 1, f"6.6.0-vendor{k}", "", f"build-{k}", NOW) for k in kernels))  # fmt: skip
        self.insert(kernel_boards, ["id", "kernel_id", "board_model_id", "revision"],
                    ((k + 1, k + 1, 2 * k + 1, "") for k in kernels))  # fmt: skip


def devices(models: int, count: int, seed: int = 11) -> list[Device]:
    """A mix of questions: certified, related, vendor kernel, unknown model, unknown release."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        m = rng.randrange(models)
        kind = rng.random()
        vendor_kernel = kind < 0.2
        kernel = f"6.6.0-vendor{m // 2}" if vendor_kernel else "6.1.0-27-arm64"
        build_id = f"build-{m // 2}" if vendor_kernel else ""
        model = f"Model-{m}" if kind < 0.95 else f"Unknown-{m}"
        revision = rng.choice([*REVISIONS, "Z9"])
        release = rng.choice([*RELEASES, "Fedora 41"])
        out.append(
            Device(f"Vendor {m % 50}", model, revision, release, kernel, kernel_build_id=build_id)
        )
    return out
