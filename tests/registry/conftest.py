"""Registry fixtures: the same tests run against SQLite and a real PostgreSQL 15.

A single PostgreSQL cluster is started per session (in a temp folder, owned
by the postgres user) and every test gets a fresh database in it; SQLite
tests get a fresh file. Lab identities live in a per-test HARNESS_DATA_HOME.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.labkey import LabIdentity, load_or_create_identity
from harness.registry.pgtemp import TempPostgres
from harness.registry.store import Principal, Settings, Store
from harness.report.bundle import make_bundle
from tests.registry.runfolder import foreign_bundle, make_run_folder


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TempPostgres]:
    with TempPostgres() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("postgres_server").new_schema()


@pytest.fixture
def new_db_url(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Fresh, empty databases of the same kind as `db_url` (SQLite or PostgreSQL), one per call."""
    count = itertools.count()
    if db_url.startswith("sqlite"):
        return lambda: f"sqlite:///{tmp_path / f'registry-{next(count)}.db'}"
    return request.getfixturevalue("postgres_server").new_schema


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keys, outbox and the default local registry of this test only; never the user's."""
    home = tmp_path / "harness-home"
    monkeypatch.setenv("HARNESS_DATA_HOME", str(home))
    monkeypatch.setenv("HARNESS_LAB_NAME", "lab-one")
    for name in ("HARNESS_REGISTRY_URL", "HARNESS_REGISTRY_TOKEN", "HARNESS_REGISTRY_DB"):
        monkeypatch.delenv(name, raising=False)
    return home


class Clock:
    """A settable clock so expiry and response targets are tested without waiting."""

    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[Store]:
    s = Store(db_url, Settings(validity_days=365), clock=clock)
    yield s
    s.close()


@pytest.fixture
def lab_identity(data_home: Path) -> LabIdentity:
    return load_or_create_identity()


@pytest.fixture
def lab(store: Store, lab_identity: LabIdentity) -> Principal:
    store.add_lab(lab_identity.name, lab_identity.public_key_text)
    return store.lab_principal(lab_identity.name)


_counter = itertools.count()


@pytest.fixture
def make_bundle_bytes(tmp_path: Path, lab_identity: LabIdentity) -> Callable[..., bytes]:
    """Build a run folder with the given fields and return its signed bundle's bytes."""

    def build(
        run_id: str | None = None, identity: LabIdentity | None = None, **fields: Any
    ) -> bytes:
        run_id = run_id or f"run-{next(_counter)}"
        parent = tmp_path / "runs" / f"{next(_counter)}"
        folder = make_run_folder(parent, run_id, **fields)
        if "unchecked" in fields:  # a run.json this harness would refuse to bundle
            return foreign_bundle(folder, identity or lab_identity)
        return make_bundle(
            folder, parent / "bundle.tar", identity or lab_identity
        ).path.read_bytes()

    return build


@dataclass
class Api:
    """The registry app over a real store, with one token of each role."""

    client: Any
    store: Store
    tokens: dict[str, str]

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}


@pytest.fixture
def api(store: Store, lab: Principal, lab_identity: LabIdentity) -> Iterator[Api]:
    from fastapi.testclient import TestClient

    from harness.registry.api import create_app

    tokens = {
        "admin": store.create_token("admin", "alice"),
        "lab": store.create_token("lab", "lab one ci", lab=lab_identity.name),
        "reader": store.create_token("reader", "dashboard"),
    }
    with TestClient(create_app(store)) as client:
        yield Api(client, store, tokens)


# Bounds for a hang only (a loaded host starts uvicorn slowly): readiness is a /health answer.
READY_GUARD = 120.0
STOP_GUARD = 60.0


class Server:
    """A real `harness registry serve` process (uvicorn) on a free 127.0.0.1 port."""

    def __init__(self, db_url: str, env: dict[str, str], log: Path):
        self.db_url = db_url
        self.log = log
        self.env = env
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "registry", "--db", self.db_url, "serve", "--port", str(self.port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"),
        )  # fmt: skip
        deadline = time.monotonic() + READY_GUARD
        while True:
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"registry server exited (code {code}) before it answered: {self._output()}"
                )
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"registry server did not answer /health within {READY_GUARD:.0f} s: "
                    f"{self._output()}"
                )
            time.sleep(0.05)

    def _output(self) -> str:
        text = self.log.read_text(errors="replace").strip() if self.log.exists() else ""
        return text[-3000:] or "(no output)"

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_GUARD)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_GUARD)
            except subprocess.TimeoutExpired:
                self.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def start_server(data_home: Path, tmp_path: Path) -> Iterator[Callable[[str], Server]]:
    started: list[Server] = []

    def start(db_url: str) -> Server:
        server = Server(db_url, dict(os.environ), tmp_path / f"server-{len(started)}.log").start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
