"""A throwaway PostgreSQL 15 cluster in a temporary folder, for tests and benchmarks.

Debian's server refuses to run as root, so the cluster is owned by the
`postgres` user and started through runuser; it listens on 127.0.0.1 and a
socket inside its own folder only, with fsync off (the data is disposable).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from harness.errors import InfraError

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TempPostgres:
    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise InfraError(
                f"PostgreSQL 15 server binaries not found in {PG_BIN} (apt-get install postgresql)"
            )
        self.root = Path(tempfile.mkdtemp(prefix="harness-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.started = False

    def _as_postgres(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.root,
        )

    def start(self) -> TempPostgres:
        shutil.chown(self.root, "postgres", "postgres")
        steps = [
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "harness", "-E", "UTF8", "--no-sync"],
            [
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                "-o", f"-k {self.root} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                "start",
            ],
        ]  # fmt: skip
        for step in steps:
            done = self._as_postgres(*step)
            if done.returncode != 0:
                self.stop()
                raise InfraError(
                    f"cannot start temporary PostgreSQL ({Path(step[0]).name}): {done.stderr or done.stdout}"
                )
        self.started = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://harness@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=harness dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def new_schema(self) -> str:
        """A fresh, empty schema in the default database, as the URL's search path.

        Much cheaper than a database per test (no template copy), and just as isolated
        for the registry, whose tables all live in the first schema of the search path.
        """
        import psycopg

        name = "s_" + uuid.uuid4().hex[:16]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=harness dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return self.url() + f"?options=-csearch_path%3D{name}"

    def stop(self) -> None:
        if self.started:
            self._as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
