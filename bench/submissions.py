"""Registry submissions over HTTP: 20 labs submitting signed bundles at once.

A real `harness registry serve` (uvicorn) on PostgreSQL, as a shared lab runs it.
Twenty labs are enrolled, each with its own signing key and token; each has a batch
of small, real, signed bundles (run folders written by the run engine's own models
through tests/registry/runfolder.py, packed by `make_bundle`). All labs then submit
at once, one connection each, as fast as the server answers. Throughput is bundles
stored per second of wall time; afterwards the registry must hold every run exactly
once (0 lost, 0 duplicated) and every request must have been answered `stored`.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.context import Context
from bench.core import REPO, Row, check
from harness.labkey import LabIdentity
from harness.registry.store import Store
from harness.report.bundle import make_bundle
from tests.registry.runfolder import make_run_folder

TITLE = "registry submissions over HTTP"
BASELINE = "none (a throughput target)"
LABS = 20
GUARD = 120.0  # a bound for a hang only


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_of(pid: int | str) -> float:
    """CPU seconds (user + system) a live process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu(database: str) -> float:
    """CPU seconds of the PostgreSQL backends serving `database` (their title names it)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if database in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                total += _cpu_of(pid)
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
    return total


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _bundles(
    folder: Path, per_lab: int
) -> tuple[list[LabIdentity], dict[str, list[tuple[str, bytes]]]]:
    identities, bundles = [], {}
    for lab in range(LABS):
        identity = LabIdentity(f"bench-lab-{lab:02d}", Ed25519PrivateKey.generate())
        identities.append(identity)
        bundles[identity.name] = []
        for index in range(per_lab):
            run_id = f"run-{lab:02d}-{index:04d}"
            parent = folder / identity.name / run_id
            run_dir = make_run_folder(parent, run_id, model=f"BENCH-{lab % 5}")
            info = make_bundle(run_dir, parent / "bundle.tar", identity)
            bundles[identity.name].append((run_id, info.path.read_bytes()))
    return identities, bundles


async def _submit_all(
    url: str, tokens: dict[str, str], bundles: dict[str, list[tuple[str, bytes]]]
) -> list[tuple[str, str, int, str]]:
    outcomes: list[tuple[str, str, int, str]] = []

    async def lab(name: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[name]}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=GUARD) as client:
            for run_id, data in bundles[name]:
                response = await client.post("/submissions", files={"bundle": ("b.tar", data)})
                status = (
                    response.json().get("status", "")
                    if response.status_code < 500
                    else response.text
                )
                outcomes.append((name, run_id, response.status_code, status))

    await asyncio.gather(*(lab(name) for name in bundles))
    return outcomes


def run(ctx: Context) -> Row:
    row = Row("submissions", TITLE, BASELINE)
    per_lab = ctx.n(40, 1)
    folder = ctx.folder("submissions")
    identities, bundles = _bundles(folder, per_lab)
    size = sum(len(b) for runs in bundles.values() for _, b in runs) / (LABS * per_lab)
    url = ctx.postgres().new_database()
    store = Store(url)
    tokens = {i.name: store.add_lab(i.name, i.public_key_text) for i in identities}
    port = _free_port()
    log = (folder / "server.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "harness", "registry", "--db", url, "serve", "--port", str(port)],
        cwd=REPO, env={**os.environ, "HARNESS_DATA_HOME": str(folder / "home")}, stdout=log, stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + GUARD
        while True:
            check(server.poll() is None, "the registry server exited during start-up")
            try:
                if httpx.get(base + "/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            check(time.monotonic() < deadline, "the registry server never answered /health")
            time.sleep(0.05)
        database = url.rsplit("/", 1)[1]
        cpu_before = (_cpu_of(server.pid), _postgres_cpu(database), _own_cpu())
        started = time.perf_counter()
        outcomes = asyncio.run(_submit_all(base, tokens, bundles))
        wall = time.perf_counter() - started
        cpu_used = [
            after - before
            for before, after in zip(
                cpu_before, (_cpu_of(server.pid), _postgres_cpu(database), _own_cpu()), strict=True
            )
        ]
    finally:
        server.terminate()
        server.wait(timeout=GUARD)
        log.close()
    total = LABS * per_lab
    check(len(outcomes) == total, f"{len(outcomes)} answers for {total} submissions")
    bad = [o for o in outcomes if o[2] != 201 or o[3] != "stored"]
    check(not bad, f"{len(bad)} submissions not stored, e.g. {bad[:3]}")
    stored = [(r["lab"], r["run_id"]) for r in store.list_runs()]
    store.close()
    check(len(stored) == total, f"the registry holds {len(stored)} runs, {total} were submitted")
    check(len(set(stored)) == total, "a run is stored twice")
    rate = row.add(
        f"{LABS} labs x {per_lab} bundles ({size / 1024:.0f} KiB each), bundles stored per second",
        [total / wall],
        "/s",
    )
    row.ok(
        f"{total} submissions, each answered 201 stored; the registry holds each run exactly once (0 lost, 0 duplicated)"
    )
    row.target("throughput", rate.median, ">=", 200, " bundles/s")
    server_ms, postgres_ms, client_ms = (1000 * seconds / total for seconds in cpu_used)
    per_bundle = server_ms + postgres_ms + client_ms
    row.notes.append(
        f"CPU per bundle stored (from /proc, during the measured pass): the registry server "
        f"{server_ms:.1f} ms, PostgreSQL's backends {postgres_ms:.1f} ms, the 20 submitting "
        f"clients {client_ms:.1f} ms; {per_bundle:.0f} ms in all, so {os.cpu_count()} idle "
        f"cores could store at most about {1000 * (os.cpu_count() or 1) / per_bundle:.0f} "
        "bundles/s with the clients on the same host."
    )
    return row
