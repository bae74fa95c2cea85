"""Eligibility query latency with 100,000 certificates stored, on SQLite and PostgreSQL.

Prints p50/p99 of `Store.eligibility` for a mix of devices (certified, related,
vendor kernel, unknown) and, as a baseline measured in the same run on the
same store, p50/p99 of a certificate primary-key lookup (`Store.get_certificate`),
with their ratio. Run: python bench/registry_eligibility.py [--certs N] [--queries N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.registry.eligibility import Device
from harness.registry.pgtemp import TempPostgres
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
BATCH = 5000


def populate(store: Store, certs: int, seed: int = 7) -> int:
    """Bulk-load certificates (one per model x revision x release) and vendor kernels; returns model count."""
    rng = random.Random(seed)
    per_model = len(REVISIONS) * len(RELEASES)
    models = certs // per_model
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(
            labs.insert().values(
                name="bench-lab", public_key="ed25519:" + "A" * 43 + "=", created_at=now
            )
        )
        conn.execute(board_models.insert(), [
            {"vendor": f"Vendor {m % 50}", "model": f"Model-{m}", "soc": "SoC", "created_at": now} for m in range(models)
        ])  # fmt: skip
        conn.execute(board_revisions.insert(), [
            {"board_model_id": m + 1, "revision": r} for m in range(models) for r in REVISIONS
        ])  # fmt: skip
        rows = [(m, r, rel) for m in range(models) for r in REVISIONS for rel in RELEASES][:certs]
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            run_rows, cert_rows = [], []
            for i, (m, rev, rel) in enumerate(chunk, start):
                run_id = f"bench-run-{i}"
                state = rng.random()
                issued = now - timedelta(days=400 if state < 0.1 else 30)
                run_rows.append({
                    "id": i + 1, "run_id": run_id, "lab_id": 1, "bundle_sha256": "0" * 64, "bundle_size": 0, "verdict": "certified",
                    "plan_id": "precert", "plan_version": "1.0", "board_model_id": m + 1, "revision": rev, "os_release": rel,
                    "kernel_release": "6.1.0-27-arm64", "kernel_version": "", "finished_at": issued, "received_at": issued,
                })  # fmt: skip
                cert_rows.append({
                    "run_pk": i + 1, "run_id": run_id, "board_model_id": m + 1, "revision": rev, "os_release": rel,
                    "kernel_release": "6.1.0-27-arm64", "kernel_version": "", "plan_id": "precert", "plan_version": "1.0",
                    "bundle_sha256": "0" * 64, "lab_id": 1, "issued_at": issued, "expires_at": issued + timedelta(days=365),
                    "revoked_at": now if 0.1 <= state < 0.15 else None,
                    "revoked_reason": "bench revocation" if 0.1 <= state < 0.15 else None,
                })  # fmt: skip
            conn.execute(runs.insert(), run_rows)
            conn.execute(certificates.insert(), cert_rows)
        kernels = max(1, models // 2)
        conn.execute(vendor_kernels.insert(), [
            {"kernel_release": f"6.6.0-vendor{k}", "kernel_version": "", "build_id": f"build-{k}", "created_at": now}
            for k in range(kernels)
        ])  # fmt: skip
        conn.execute(kernel_boards.insert(), [
            {"kernel_id": k + 1, "board_model_id": (k * 2) % models + 1, "revision": ""} for k in range(kernels)
        ])  # fmt: skip
    return models


def devices(models: int, count: int, seed: int = 11) -> list[Device]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        m = rng.randrange(models)
        kind = rng.random()
        kernel = f"6.6.0-vendor{m // 2}" if kind < 0.2 else "6.1.0-27-arm64"
        model = f"Model-{m}" if kind < 0.95 else f"Unknown-{m}"
        revision = rng.choice([*REVISIONS, "Z9"])
        out.append(
            Device(
                f"Vendor {m % 50}", model, revision, rng.choice([*RELEASES, "Fedora 41"]), kernel
            )
        )
    return out


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return p50 * 1000, p99 * 1000


def timed(calls: list[Callable[[], object]]) -> list[float]:
    samples = []
    for call in calls:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def bench(name: str, url: str, certs: int, queries: int) -> None:
    store = Store(url)
    started = time.perf_counter()
    models = populate(store, certs)
    load_s = time.perf_counter() - started
    rng = random.Random(3)
    asks = devices(models, queries)
    statuses: dict[str, int] = {}
    for d in asks[:200]:  # warm-up, and a check that the mix exercises every rule
        status = store.eligibility(d).status.value
        statuses[status] = statuses.get(status, 0) + 1
    ids = [rng.randrange(1, certs + 1) for _ in range(queries)]
    baseline = timed([lambda i=i: store.get_certificate(i) for i in ids])
    elig = timed([lambda d=d: store.eligibility(d) for d in asks])
    b50, b99 = percentiles(baseline)
    e50, e99 = percentiles(elig)
    print(
        f"{name:10s} certificates={certs} models={models} load={load_s:.1f}s queries={queries} statuses(first 200)={statuses}"
    )
    print(f"{'':10s} baseline pk lookup  p50={b50:7.3f} ms  p99={b99:7.3f} ms")
    print(
        f"{'':10s} eligibility         p50={e50:7.3f} ms  p99={e99:7.3f} ms   ratio p50={e50 / b50:.2f}x  p99={e99 / b99:.2f}x"
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            bench("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.certs, args.queries)
    if args.only in (None, "postgres"):
        with TempPostgres() as pg:
            bench("postgresql", pg.new_database(), args.certs, args.queries)


if __name__ == "__main__":
    main()
