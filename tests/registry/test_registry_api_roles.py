"""Role matrix: every endpoint against no token, reader, lab and admin, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from harness.registry.store import LOCAL_ADMIN
from tests.registry.runfolder import repro_fields

ROLES = [None, "reader", "lab", "admin"]
READ = {None, "reader", "lab", "admin"}


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def endpoints(
    api, make_bundle_bytes
) -> dict[str, tuple[set[str | None], Callable[[], tuple[str, str, dict[str, Any]]]]]:
    """name -> (roles allowed, a function making a fresh valid request for it)."""
    store = api.store
    lab = store.lab_principal("lab-one")

    def stored_run() -> str:
        return store.submit_bundle(make_bundle_bytes(f"run-{_uid()}"), lab)["run_id"]

    def fresh_cert() -> int:
        return store.submit_bundle(make_bundle_bytes(f"run-{_uid()}"), lab)["certificate_id"]

    def fresh_case() -> str:
        case_id = f"CASE-{_uid()}"
        store.open_case(
            {"case_id": case_id, "customer_ref": "c", "severity": "low", "subsystem": "net",
             "vendor": "Acme Boards", "model": "AB-100", "revision": "A1"},
            LOCAL_ADMIN,
        )  # fmt: skip
        return case_id

    def case_with_run(mode: str) -> tuple[str, str]:
        """A fresh case and a repro run of it by lab-one (verify mode: found resolved)."""
        case_id = fresh_case()
        data = make_bundle_bytes(f"run-{_uid()}", **repro_fields(case_id, mode, reproduced=0))
        return case_id, store.submit_bundle(data, lab)["run_id"]

    def attach_request(
        mode: str, path: str, body: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        case_id, run_id = case_with_run(mode)
        return "POST", f"/cases/{case_id}/{path}", {"json": {**body, "run_id": run_id}}

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from harness.labkey import LabIdentity

    def new_enrolment() -> dict[str, str]:
        return LabIdentity(f"lab-{_uid()}", Ed25519PrivateKey.generate()).enrolment()

    board = {
        "vendor": "Acme Boards",
        "model": "AB-100",
        "revision": "A1",
        "os_release": "Debian 12",
        "kernel_release": "6.1.0-27-arm64",
    }
    return {
        "GET /health": (READ, lambda: ("GET", "/health", {})),
        "GET /openapi.json": (READ, lambda: ("GET", "/openapi.json", {})),
        "GET /": (READ, lambda: ("GET", "/", {})),
        "GET /ui/eligibility": (READ, lambda: ("GET", "/ui/eligibility", {"params": board})),
        "GET /boards": (READ, lambda: ("GET", "/boards", {})),
        "GET /certificates": (READ, lambda: ("GET", "/certificates", {})),
        "GET /certificates/{id}": (READ, lambda: ("GET", f"/certificates/{fresh_cert()}", {})),
        "GET /kernels": (READ, lambda: ("GET", "/kernels", {})),
        "GET /cases": (READ, lambda: ("GET", "/cases", {})),
        "GET /cases/{id}": (READ, lambda: ("GET", f"/cases/{fresh_case()}", {})),
        "GET /runs": (READ, lambda: ("GET", "/runs", {})),
        "GET /runs/{id}/bundle": (READ, lambda: ("GET", f"/runs/{stored_run()}/bundle", {})),
        "GET /eligibility": (READ, lambda: ("GET", "/eligibility", {"params": board})),
        "POST /submissions": (
            {"lab"},
            lambda: (
                "POST",
                "/submissions",
                {"files": {"bundle": ("b.tar", make_bundle_bytes(f"run-{_uid()}"))}},
            ),
        ),
        "POST /cases/{id}/runs": (
            {"lab", "admin"},
            lambda: attach_request("repro", "runs", {}),
        ),
        "POST /cases/{id}/verification": (
            {"lab", "admin"},
            lambda: attach_request("verify", "verification", {"verdict": "resolved"}),
        ),
        "POST /boards": (
            {"admin"},
            lambda: (
                "POST",
                "/boards",
                {"json": {"vendor": "V", "model": f"M-{_uid()}", "revisions": ["A"]}},
            ),
        ),
        "POST /certificates/{id}/revoke": (
            {"admin"},
            lambda: ("POST", f"/certificates/{fresh_cert()}/revoke", {"json": {"reason": "r"}}),
        ),
        "POST /kernels": (
            {"admin"},
            lambda: (
                "POST",
                "/kernels",
                {
                    "json": {
                        "kernel_release": "6.6",
                        "build_id": f"b-{_uid()}",
                        "boards": [{"vendor": "V", "model": "M"}],
                    }
                },
            ),
        ),
        "POST /cases": (
            {"admin"},
            lambda: (
                "POST",
                "/cases",
                {
                    "json": {
                        "case_id": f"C-{_uid()}",
                        "customer_ref": "c",
                        "severity": "high",
                        "subsystem": "usb",
                        "vendor": "V",
                        "model": "M",
                        "revision": "A",
                    }
                },
            ),
        ),
        "POST /labs": (
            {"admin"},
            lambda: ("POST", "/labs", {"json": new_enrolment()}),
        ),
        "GET /labs": ({"admin"}, lambda: ("GET", "/labs", {})),
        "POST /tokens": (
            {"admin"},
            lambda: ("POST", "/tokens", {"json": {"role": "reader", "label": f"t-{_uid()}"}}),
        ),
        "GET /audit": ({"admin"}, lambda: ("GET", "/audit", {})),
    }


def expected_status(allowed: set[str | None], role: str | None) -> str:
    if role in allowed:
        return "ok"
    return "401" if role is None else "403"


def observed(status: int) -> str:
    return "ok" if 200 <= status < 300 else str(status)


def test_role_matrix_with_public_reads(api, make_bundle_bytes) -> None:
    table = endpoints(api, make_bundle_bytes)
    expected, actual = {}, {}
    for name, (allowed, request) in table.items():
        for role in ROLES:
            method, url, kwargs = request()
            response = api.client.request(method, url, headers=api.headers(role), **kwargs)
            expected[name, role] = expected_status(allowed, role)
            actual[name, role] = observed(response.status_code)
    assert actual == expected


def test_private_reads_need_a_token_but_any_role_will_do(store, lab, make_bundle_bytes) -> None:
    from fastapi.testclient import TestClient

    from harness.registry.api import create_app

    reader = store.create_token("reader", "r")
    with TestClient(create_app(store, public_reads=False)) as client:
        for path in ("/boards", "/certificates", "/kernels", "/cases", "/runs", "/"):
            assert client.get(path).status_code == 401
            assert (
                client.get(path, headers={"Authorization": f"Bearer {reader}"}).status_code == 200
            )


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer ", "Basic dXNlcjpwYXNz", "hrt_admin_x"])
def test_invalid_or_malformed_tokens_are_401_for_writes(api, header) -> None:
    response = api.client.post(
        "/boards", json={"vendor": "V", "model": "M"}, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert api.store.list_boards() == []


def test_unauthorized_write_leaves_only_reads_in_the_audit_log(api) -> None:
    before = len(api.store.audit_entries())
    api.client.post("/kernels", json={"kernel_release": "6.6", "build_id": "b", "boards": [{"vendor": "V", "model": "M"}]},
                    headers=api.headers("lab"))  # fmt: skip
    assert api.store.list_kernels() == []
    assert len(api.store.audit_entries()) == before
