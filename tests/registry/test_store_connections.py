"""The registry keeps answering when PostgreSQL dropped its pooled connections while idle.

The store checks a pooled connection before use only after it sat idle (not on every
checkout, which cost a round trip per call); a connection the server killed in the
meantime (a restart, an idle timeout) is replaced without the caller seeing an error.
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from harness.errors import InfraError
from harness.registry.pgtemp import TempPostgres
from harness.registry.store import Store
from harness.registry.store import base as store_base


def _drop_connections(url: str) -> int:
    """What a server restart does to the store's connections: every backend of its database
    is terminated. Returns how many were."""
    parsed = make_url(url)
    with psycopg.connect(
        f"host={parsed.host} port={parsed.port} user={parsed.username} dbname=postgres",
        autocommit=True,
    ) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (parsed.database,),
        ).fetchall()
    return len(rows)


@pytest.mark.postgres
def test_a_connection_killed_while_idle_is_replaced_without_an_error(
    postgres_server: TempPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.new_database()
    store = Store(url)
    try:
        assert store.list_certificates() == []  # a connection now sits in the pool
        assert _drop_connections(url) >= 1
        monkeypatch.setattr(store_base, "PING_AFTER_IDLE", 0.0)  # it has been idle long enough
        assert store.list_certificates() == []
        assert store.list_kernels() == []
    finally:
        store.close()


@pytest.mark.postgres
def test_without_the_idle_check_the_dead_connection_would_have_failed_the_call(
    postgres_server: TempPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: the kill really reaches the pooled connection."""
    url = postgres_server.new_database()
    store = Store(url)
    try:
        store.list_certificates()
        assert _drop_connections(url) >= 1
        monkeypatch.setattr(store_base, "PING_AFTER_IDLE", float("inf"))
        with pytest.raises(InfraError, match="registry database unavailable"):
            store.list_certificates()
        assert store.list_certificates() == []  # and the pool recovers on the next call
    finally:
        store.close()
