"""Property-based fuzzing of every registry route from its own OpenAPI schema: never a 5xx.

Schemathesis generates requests (valid and invalid bodies, path and query values)
from /openapi.json and sends them over loopback to a real `harness registry serve`
(uvicorn) seeded with a lab, a certificate and a case. Writes are sent with an
admin token (a lab token for /submissions) so bodies reach the routes' own
validation instead of stopping at 401. Examples are derandomized (the same every
run, so CI cannot flake); HARNESS_FUZZ_EXAMPLES raises the count for a deeper
local run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from harness.labkey import load_or_create_identity
from harness.registry.store import LOCAL_ADMIN, Store
from harness.report.bundle import make_bundle
from tests.registry.conftest import Server
from tests.registry.runfolder import make_run_folder

EXAMPLES = int(os.environ.get("HARNESS_FUZZ_EXAMPLES", "12"))
SENT: list[int] = []


@pytest.fixture(scope="module")
def fuzz_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, dict[str, str]]]:
    root = tmp_path_factory.mktemp("fuzz")
    env = {**os.environ, "HARNESS_DATA_HOME": str(root / "home"), "HARNESS_LAB_NAME": "fuzz-lab"}
    for name in ("HARNESS_REGISTRY_URL", "HARNESS_REGISTRY_TOKEN", "HARNESS_REGISTRY_DB"):
        env.pop(name, None)
    db_url = f"sqlite:///{root / 'registry.db'}"
    store = Store(db_url)
    identity = load_or_create_identity(root / "home" / "lab")
    tokens = {
        "lab": store.add_lab(identity.name, identity.public_key_text),
        "admin": store.create_token("admin", "fuzzer"),
    }
    bundle = make_bundle(make_run_folder(root / "results", "fuzz-run-1"), root / "b.tar", identity)
    with bundle.path.open("rb") as fh:
        store.submit_bundle(fh, store.lab_principal(identity.name))
    store.open_case(
        {"case_id": "CASE-1", "customer_ref": "ACME-1", "severity": "high", "subsystem": "usb",
         "vendor": "Acme Boards", "model": "AB-100", "revision": "A1"},
        LOCAL_ADMIN,
    )  # fmt: skip
    store.close()
    server = Server(db_url, env, root / "server.log").start()
    yield server, tokens
    server.stop()
    print(f"\nregistry API fuzzing: {len(SENT)} requests sent")
    assert "Traceback" not in (root / "server.log").read_text()


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    server, _ = fuzz_server
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_route_answers_a_server_error(case, fuzz_server) -> None:
    _, tokens = fuzz_server
    role = "lab" if case.path.startswith("/submissions") else "admin"
    response = case.call(headers={"Authorization": f"Bearer {tokens[role]}"}, timeout=60)
    SENT.append(response.status_code)
    case.validate_response(response, checks=[not_a_server_error])


def test_fuzzing_reached_every_route(api_schema) -> None:
    """Guard against a schema that silently lost its operations (the fuzzing would pass on nothing)."""
    paths = {op.ok().path for op in api_schema.get_all_operations()}
    assert {"/submissions", "/boards", "/certificates/{cert_id}", "/cases/{case_id}"} <= paths
