"""Registry eligibility latency at 10k, 100k and 1M certificates, on SQLite and PostgreSQL.

The same store grows through the three sizes (bench/seed.py bulk-loads it, then
ANALYZE); at each size `Store.eligibility` answers a fixed mix of questions (certified,
related, vendor kernel, unknown), and the baseline, on the same store at the same
moment, is a certificate primary-key lookup (`Store.get_certificate`). The answers'
mix is checked (every status occurs) so a broken query cannot look fast.
"""

from __future__ import annotations

import random
import time

from bench.context import Context
from bench.core import Row, check, ratio, timed
from bench.seed import PER_MODEL, Loader, devices
from harness.registry.store import Store

TITLE = "registry eligibility"
BASELINE = "certificate primary-key lookup in the same database"


def _curve(row: Row, ctx: Context, name: str, url: str, sizes: list[int]) -> None:
    store = Store(url)
    loader = Loader(store)
    loader.lab()
    models = 0
    queries = ctx.n(1000, 100)
    try:
        for size in sizes:
            started = time.perf_counter()
            loader.models(models, size // PER_MODEL)
            loader.analyze()
            models = size // PER_MODEL
            load = time.perf_counter() - started
            asks = devices(models, queries)
            statuses = {store.eligibility(d).status.value for d in asks[:100]}  # also warms up
            check(len(statuses) == 4, f"{name} at {size}: answers covered only {statuses}")
            rng = random.Random(3)
            ids = iter([rng.randrange(1, size + 1) for _ in range(queries)])
            base = row.add(
                f"{name} {size:,}: pk lookup",
                timed(lambda ids=ids: store.get_certificate(next(ids)), queries),
                baseline=True,
            )
            asked = iter(asks)
            elig = row.add(
                f"{name} {size:,}: eligibility",
                timed(lambda asked=asked: store.eligibility(next(asked)), queries),
            )
            # An extra pass under the profiler (it slows what it watches).
            with ctx.profiled(f"eligibility-{name}-{size}", enabled=size == sizes[-1]):
                for device in asks[:200]:
                    store.eligibility(device)
            row.target(
                f"{name} {size:,}: eligibility p99", elig.percentile(99) * 1000, "<=", 5, " ms"
            )
            row.notes.append(
                f"{name} {size:,} certificates: loaded in {load:.1f} s; eligibility / pk lookup "
                f"(median) {ratio(elig, base):.2f}x, p99 {elig.percentile(99) / base.percentile(99):.2f}x."
            )
        row.ok(f"{name}: every size answered all four statuses")
    finally:
        store.close()


def run(ctx: Context) -> Row:
    row = Row("registry", TITLE, BASELINE)
    sizes = [1_000] if ctx.quick else [10_000, 100_000, 1_000_000]
    db = ctx.folder("registry") / "registry.db"
    _curve(row, ctx, "SQLite", f"sqlite:///{db}", sizes)
    _curve(row, ctx, "PostgreSQL", ctx.postgres().new_database(), sizes)
    return row
