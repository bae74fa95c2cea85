"""The registry interface's contract: the local backend and the HTTP client answer alike.

Every case runs against `LocalRegistry` (the store on this machine's database) and against
`HttpRegistry` (the HTTP client, speaking to the registry's HTTP API in process), each on
SQLite and on PostgreSQL (the `db_url` fixture). A case asserts what a user sees; the
last test also replays one session on both backends and compares every answer whole, so
a key or a value that differs between them (a renamed argument, a dict vs an object, a
missing field) fails here.
"""

from __future__ import annotations

import inspect
import json
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.labkey import LabIdentity
from harness.registry.api import create_app
from harness.registry.eligibility import Device
from harness.registry.errors import Conflict, Invalid, NotFound, RegistryError
from harness.registry.interface import Registry
from harness.registry.local import LocalRegistry
from harness.registry.remote import HttpRegistry
from harness.registry.store import Principal, Settings, Store
from tests.registry.conftest import Clock
from tests.registry.runfolder import repro_fields

ADMIN_LABEL = "contract-admin"
BOARD = {"vendor": "Acme Boards", "model": "AB-100", "revision": "A1"}
DEVICE = Device("Acme Boards", "AB-100", "A1", "Debian 12", "6.1.0-27-arm64")


@dataclass
class Backend:
    """One registry, as its administrator and as the lab `lab-one` (once enrolled)."""

    admin: Registry
    as_lab: Callable[[str], Registry]  # the lab's registry, given the token add_lab answered


def _local(store: Store) -> Backend:
    store.create_token("admin", ADMIN_LABEL)  # as for HTTP, so both databases hold the same rows
    admin = LocalRegistry(store, Principal(role="admin", label=ADMIN_LABEL))
    return Backend(admin, lambda _token: LocalRegistry(store, store.lab_principal("lab-one")))


def _http(store: Store, clients: list[TestClient]) -> Backend:
    """HttpRegistry whose HTTP client is the API app's in-process test client (no socket)."""

    def client(token: str) -> HttpRegistry:
        registry = HttpRegistry("http://testserver", token)
        registry.http.close()
        registry.http = TestClient(
            create_app(store), base_url="http://testserver",
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        clients.append(registry.http)
        return registry

    return Backend(client(store.create_token("admin", ADMIN_LABEL)), client)


@pytest.fixture(params=["local", "http"])
def backend(request: pytest.FixtureRequest, store: Store) -> Iterator[Backend]:
    clients: list[TestClient] = []
    yield _local(store) if request.param == "local" else _http(store, clients)
    for client in clients:
        client.close()


def _enrol(backend: Backend, identity: LabIdentity) -> Registry:
    enrolment = identity.enrolment()
    lab = backend.admin.add_lab(enrolment["name"], enrolment["public_key"], enrolment["signature"])
    return backend.as_lab(lab["token"])


def test_both_backends_implement_every_interface_method_with_its_exact_signature() -> None:
    methods = {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(Registry, inspect.isfunction)
        if not name.startswith("_")
    }
    assert len(methods) == 25
    for backend in (LocalRegistry, HttpRegistry):
        for name, signature in methods.items():
            assert inspect.signature(getattr(backend, name)) == signature, (backend, name)


def _kernel_image(build_id: bytes, release: str) -> bytes:
    """A minimal arm64 Image: the header's magic, a GNU build-id note and the version banner."""
    header = bytearray(64)
    header[0x38:0x3C] = b"ARM\x64"
    note = struct.pack("<III", 4, len(build_id), 3) + b"GNU\x00" + build_id
    return bytes(header) + note + f"Linux version {release} (contract@test)".encode()


def test_labs_and_tokens(backend: Backend, lab_identity: LabIdentity) -> None:
    enrolment = lab_identity.enrolment()
    lab = backend.admin.add_lab(enrolment["name"], enrolment["public_key"], enrolment["signature"])
    assert lab["name"] == "lab-one" and lab["token"].startswith("hrt_lab_")
    assert lab["fingerprint"] == enrolment["fingerprint"]
    with pytest.raises(Conflict):
        backend.admin.add_lab(enrolment["name"], enrolment["public_key"], enrolment["signature"])
    assert [entry["name"] for entry in backend.admin.list_labs()] == ["lab-one"]
    token = backend.admin.create_token("reader", "dashboard", expires_in_days=30)
    assert token["token"].startswith("hrt_reader_") and token["state"] == "valid"
    assert token["expires_at"] == "2026-07-01T12:00:00+00:00"  # the test clock plus 30 days
    with pytest.raises(Invalid, match="lab"):
        backend.admin.create_token("reader", "x", lab="lab-one")
    rotated = backend.admin.rotate_token(token["id"])
    assert rotated["replaces"] == token["id"] and rotated["token"] != token["token"]
    assert backend.admin.revoke_token(rotated["id"])["state"] == "revoked"
    with pytest.raises(Conflict):
        backend.admin.revoke_token(rotated["id"])
    states = {t["id"]: t["state"] for t in backend.admin.list_tokens()}
    assert states[token["id"]] == states[rotated["id"]] == "revoked"


def test_boards_and_kernels(backend: Backend) -> None:
    board = backend.admin.register_board("Acme Boards", "AB-100", "Example SoC", ["A1", "B2"])
    assert [r["revision"] for r in board["revisions"]] == ["A1", "B2"]
    assert board["certified"] is False
    assert [b["model"] for b in backend.admin.list_boards()] == ["AB-100"]
    typed = backend.admin.register_kernel("6.6.1-acme", "#1", "ab" * 20, [BOARD])
    assert typed["build_id_verified"] is False
    with pytest.raises(Conflict):
        backend.admin.register_kernel("6.6.1-acme", "#1", "AB" * 20, [BOARD])
    image = _kernel_image(bytes(range(20)), "6.6.2-acme")
    extracted = backend.admin.register_kernel_artifact(image, [BOARD], name="Image")
    assert extracted["build_id"] == bytes(range(20)).hex()
    assert extracted["kernel_release"] == "6.6.2-acme" and extracted["build_id_verified"]
    with pytest.raises(Invalid, match=r"6\.6\.2-acme"):
        backend.admin.register_kernel_artifact(
            _kernel_image(bytes(20), "6.6.2-acme"), [BOARD], kernel_release="6.6.3"
        )
    assert [k["kernel_release"] for k in backend.admin.list_kernels()] == [
        "6.6.1-acme",
        "6.6.2-acme",
    ]


def test_runs_certificates_and_eligibility(
    backend: Backend, lab_identity: LabIdentity, make_bundle_bytes: Callable[..., bytes]
) -> None:
    lab = _enrol(backend, lab_identity)
    data = make_bundle_bytes("cert-run")
    stored = lab.submit_bundle(data)
    assert stored["status"] == "stored" and stored["verdict"] == "certified"
    assert lab.submit_bundle(data)["status"] == "duplicate"
    assert [r["run_id"] for r in backend.admin.list_runs()] == ["cert-run"]
    assert backend.admin.get_bundle("cert-run") == data
    (cert,) = backend.admin.list_certificates(vendor="Acme Boards", os_release="Debian 12")
    assert cert["id"] == stored["certificate_id"] and cert["state"] == "valid"
    assert backend.admin.list_certificates(model="other") == []
    assert backend.admin.get_certificate(cert["id"])["run_id"] == "cert-run"
    with pytest.raises(NotFound):
        backend.admin.get_certificate(cert["id"] + 1)
    answer = backend.admin.eligibility(DEVICE)
    assert answer["status"] == "eligible-certified" and answer["eligible"] is True
    assert [e["id"] for e in answer["evidence"]] == [cert["id"]]
    revoked = backend.admin.revoke_certificate(cert["id"], "lab error")
    assert revoked["revoked_reason"] == "lab error"
    answer = backend.admin.eligibility(DEVICE)
    assert answer["eligible"] is False and "lab error" in answer["not_counted"][0]["why"]


def test_customer_cases(
    backend: Backend, lab_identity: LabIdentity, make_bundle_bytes: Callable[..., bytes]
) -> None:
    lab = _enrol(backend, lab_identity)
    case = backend.admin.open_case(
        {"case_id": "CASE-1", "customer_ref": "ACME-7", "severity": "high",
         "subsystem": "storage", "summary": "eMMC errors\nafter resume", **BOARD,
         "opened_at": datetime(2026, 6, 1, 9, 0, tzinfo=UTC)}
    )  # fmt: skip
    assert case["response_target_at"] == "2026-06-02T11:00:00+00:00"  # 12 business hours
    assert case["eligibility"]["status"] == "unknown"  # no OS or kernel given
    with pytest.raises(Invalid, match="severity"):
        backend.admin.open_case({**BOARD, "case_id": "C-2", "customer_ref": "r",
                                 "severity": "urgent", "subsystem": "s"})  # fmt: skip
    lab.submit_bundle(make_bundle_bytes("repro-1", **repro_fields("CASE-1")))
    lab.submit_bundle(make_bundle_bytes("fix-1", **repro_fields("CASE-1", "verify", reproduced=0)))
    attached = lab.attach_run("CASE-1", "repro-1")
    assert [r["run_id"] for r in attached["reproduction_runs"]] == ["repro-1"]
    with pytest.raises(Invalid, match="verify-resolution"):
        lab.verify_case("CASE-1", "resolved", "repro-1")
    verified = lab.verify_case("CASE-1", "resolved", "fix-1")
    assert verified["verification"]["verdict"] == "resolved"
    assert backend.admin.get_case("CASE-1") == verified
    assert [c["case_id"] for c in backend.admin.list_cases()] == ["CASE-1"]
    with pytest.raises(NotFound):
        backend.admin.get_case("CASE-404")
    actions = [(e["action"], e["entity_key"]) for e in backend.admin.audit_entries(limit=3)]
    assert actions == [("verify", "CASE-1"), ("attach", "CASE-1"), ("submit", "fix-1")]


def _session(backend: Backend, identity: LabIdentity, bundles: dict[str, bytes]) -> list[Any]:
    """One session through every interface method; each answer (or error kind) in order."""
    enrolment = identity.enrolment()
    answers: list[Any] = []

    def call(registry: Registry, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            answer = getattr(registry, name)(*args, **kwargs)
        except RegistryError as exc:
            answer = {"error": type(exc).__name__}
        answers.append((name, answer))
        return answer

    admin = backend.admin
    lab_record = call(admin, "add_lab", enrolment["name"], enrolment["public_key"],
                      enrolment["signature"])  # fmt: skip
    lab = backend.as_lab(lab_record["token"])
    call(admin, "list_labs")
    token = call(admin, "create_token", "reader", "dashboard", None, 10)
    call(admin, "rotate_token", token["id"], 20)
    call(admin, "revoke_token", token["id"])
    call(admin, "list_tokens")
    call(admin, "register_board", "Acme Boards", "AB-100", "SoC", ["A1"])
    call(admin, "list_boards")
    call(admin, "register_kernel", "6.6.1-acme", "#1", "cd" * 20, [BOARD])
    call(admin, "register_kernel_artifact", _kernel_image(b"\x01" * 20, "6.6.9"), [BOARD])
    call(admin, "list_kernels")
    for data in bundles.values():
        call(lab, "submit_bundle", data)
    call(admin, "list_runs")
    call(admin, "list_certificates", vendor="Acme Boards")
    call(admin, "get_certificate", 1)
    call(admin, "eligibility", DEVICE)
    call(admin, "revoke_certificate", 1, "withdrawn")
    call(admin, "eligibility", DEVICE)
    call(admin, "open_case", {"case_id": "CASE-1", "customer_ref": "r", "severity": "low",
                              "subsystem": "net", **BOARD, "os_release": "Debian 12",
                              "kernel_release": "6.1.0-27-arm64"})  # fmt: skip
    call(lab, "attach_run", "CASE-1", "repro-1")
    call(lab, "verify_case", "CASE-1", "resolved", "fix-1")
    call(admin, "get_case", "CASE-1")
    call(admin, "list_cases")
    call(admin, "get_case", "missing")
    call(admin, "audit_entries", 1000)
    return answers


def _without_secrets(answers: list[Any]) -> list[Any]:
    """The transcript as JSON values, each issued secret replaced by its kind (they are random).

    Left out too: a token's `last_used_at` (only a request over HTTP uses a token) and how
    long a kernel artifact took to read (a measurement, different on every run).
    """
    text = json.dumps(answers, sort_keys=True, default=str)
    text = re.sub(r'"last_used_at": ("[^"]*"|null)', '"last_used_at": "<HTTP only>"', text)
    text = re.sub(r'"extraction_seconds": [0-9.e-]+', '"extraction_seconds": "<measured>"', text)
    for _name, answer in answers:
        if isinstance(answer, dict) and "token" in answer:
            text = text.replace(answer["token"], f"<{answer['token'].split('_')[1]} token>")
    return json.loads(text)


def test_both_backends_answer_a_whole_session_with_the_same_json(
    new_db_url: Callable[[], str],
    lab_identity: LabIdentity,
    make_bundle_bytes: Callable[..., bytes],
) -> None:
    bundles = {
        "cert-run": make_bundle_bytes("cert-run"),
        "repro-1": make_bundle_bytes("repro-1", **repro_fields("CASE-1")),
        "fix-1": make_bundle_bytes("fix-1", **repro_fields("CASE-1", "verify", reproduced=0)),
    }
    transcripts = []
    clients: list[TestClient] = []
    for make in (_local, lambda store: _http(store, clients)):
        store = Store(new_db_url(), Settings(validity_days=365), clock=Clock())
        try:
            transcripts.append(_without_secrets(_session(make(store), lab_identity, bundles)))
        finally:
            for client in clients:
                client.close()
            store.close()
    local, http = transcripts
    answers = [[name, answer.get("status")] for name, answer in local if name == "eligibility"]
    assert answers == [["eligibility", "eligible-certified"], ["eligibility", "not-eligible"]]
    assert ["get_case", {"error": "NotFound"}] in local
    verified = next(answer for name, answer in local if name == "verify_case")
    assert verified["verification"]["verdict"] == "resolved"
    for index, (asked, answer) in enumerate(local):
        assert http[index] == [asked, answer], f"call {index} ({asked}) answers differently"
