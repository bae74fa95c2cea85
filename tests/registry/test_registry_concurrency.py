"""Twenty concurrent submitters against a real registry server: no row lost, none duplicated."""

from __future__ import annotations

import threading
from collections import Counter

import httpx

SUBMITTERS = 20
RUNS_EACH = 25
SHARED = 5  # run ids every submitter sends at once (same evidence from a retried CI job)


def plan_for(submitter: int) -> list[str]:
    """25 submissions: 5 shared run ids, 19 of its own, and one of its own again."""
    own = [f"own-{submitter}-{i}" for i in range(RUNS_EACH - SHARED - 1)]
    shared = [f"shared-{i}" for i in range(SHARED)]
    order = shared[:2] + own[:10] + shared[2:] + own[10:] + [own[submitter % len(own)]]
    assert len(order) == RUNS_EACH
    return order


def test_concurrent_submitters_store_every_run_exactly_once(
    db_url, store, lab, make_bundle_bytes, start_server
) -> None:
    token = store.create_token("lab", "ci", lab="lab-one")
    run_ids = sorted({r for s in range(SUBMITTERS) for r in plan_for(s)})
    verdict = {r: ("certified" if i % 3 else "not-certified") for i, r in enumerate(run_ids)}
    bundles = {r: make_bundle_bytes(r, verdict=verdict[r]) for r in run_ids}
    server = start_server(db_url)

    outcomes: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(SUBMITTERS)

    def submitter(index: int) -> None:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        ) as client:
            barrier.wait()
            for run_id in plan_for(index):
                response = client.post("/submissions", files={"bundle": ("b.tar", bundles[run_id])})
                status = (
                    response.json().get("status", response.text)
                    if response.status_code < 500
                    else response.text
                )
                with lock:
                    outcomes.append((run_id, response.status_code, status))

    threads = [threading.Thread(target=submitter, args=(i,)) for i in range(SUBMITTERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(outcomes) == SUBMITTERS * RUNS_EACH
    assert {code for _, code, _ in outcomes} <= {200, 201}, [
        o for o in outcomes if o[1] not in (200, 201)
    ][:3]
    stored = Counter(run_id for run_id, code, status in outcomes if status == "stored")
    assert stored == Counter(
        run_ids
    )  # each run stored by exactly one request, all others "duplicate"
    rows = [r["run_id"] for r in store.list_runs()]
    assert sorted(rows) == run_ids
    certs = [c["run_id"] for c in store.list_certificates()]
    assert sorted(certs) == sorted(r for r in run_ids if verdict[r] == "certified")
    submits = [e for e in store.audit_entries(limit=10000) if e["action"] == "submit"]
    assert len(submits) == len(run_ids)
    assert len(store.list_boards()) == 1
