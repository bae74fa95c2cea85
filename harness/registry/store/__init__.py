"""The registry store: every read and write, one transaction each, on SQLite or PostgreSQL.

One class so the HTTP API, the CLI and the local (serverless) registry share exactly the
same rules, assembled from one module per concern:

- base.py: the engine, transactions, insert-if-absent, `Principal`, `Settings`;
- audit.py: the audit log every write appends to in its own transaction;
- labs.py: labs and their bearer tokens;
- boards.py: board models, revisions and vendor kernels;
- runs.py: submitted bundles (a certified run issues a certificate);
- certificates.py: certificates and the eligibility answer;
- cases.py: customer cases, their reproduction runs and verification.

Input rules (allowed values, text limits) are harness/registry/rules.py. Callers other
than the HTTP API use the store through the `Registry` interface
(harness/registry/interface.py), as the HTTP client does. The data model is described in
docs/architecture.md ("Registry data model") and docs/registry.md.
"""

from __future__ import annotations

from harness.registry.store.base import (
    LOCAL_ADMIN,
    Principal,
    Settings,
    StoreBase,
    hash_token,
    make_engine,
)
from harness.registry.store.cases import Cases
from harness.registry.store.labs import LabsAndTokens

__all__ = [
    "LOCAL_ADMIN",
    "Principal",
    "Settings",
    "Store",
    "StoreBase",
    "hash_token",
    "make_engine",
]


class Store(LabsAndTokens, Cases):
    """The registry's rules over one database. Thread-safe: each call takes its own connection."""
