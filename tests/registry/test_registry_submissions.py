"""Submitting evidence over HTTP: only intact bundles signed by the lab's registered key count."""

from __future__ import annotations

import io
import tarfile

import pytest
from openapi_spec_validator import validate as validate_openapi

from harness.labkey import LabIdentity, load_or_create_identity
from tests.registry.runfolder import repro_fields


def snapshot(store) -> tuple:
    return (
        store.list_runs(),
        store.list_certificates(),
        store.list_boards(),
        len(store.audit_entries()),
    )


def submit(api, data: bytes, role: str = "lab"):
    return api.client.post(
        "/submissions", files={"bundle": ("b.tar", data)}, headers=api.headers(role)
    )


def rewrite_member(data: bytes, name: str, edit) -> bytes:
    """Edit one member in place, keeping the tar well-formed (a careful attacker)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in src.getmembers():
            content = src.extractfile(member).read()
            if member.name == name:
                content = edit(content)
                member.size = len(content)
            dst.addfile(member, io.BytesIO(content))
    return out.getvalue()


def test_certified_run_is_stored_once_with_one_certificate(api, make_bundle_bytes) -> None:
    data = make_bundle_bytes("run-42")
    first, second = submit(api, data), submit(api, data)
    assert first.status_code == 201 and first.json()["status"] == "stored"
    assert second.status_code == 200 and second.json()["status"] == "duplicate"
    assert first.json()["certificate_id"] == second.json()["certificate_id"]
    assert [r["run_id"] for r in api.store.list_runs()] == ["run-42"]
    assert len(api.store.list_certificates()) == 1
    stored = api.client.get("/runs/run-42/bundle")
    assert stored.content == data


def test_not_certified_run_is_stored_without_certificate(api, make_bundle_bytes) -> None:
    response = submit(api, make_bundle_bytes("run-nc", verdict="not-certified"))
    assert response.status_code == 201
    assert response.json()["certificate_id"] is None
    assert api.store.list_certificates() == []


def test_same_run_id_with_other_evidence_is_a_conflict_and_keeps_the_first(
    api, make_bundle_bytes
) -> None:
    first = make_bundle_bytes("run-7")
    assert submit(api, first).status_code == 201
    response = submit(api, make_bundle_bytes("run-7", kernel_release="6.1.0-99-arm64"))
    assert response.status_code == 409
    assert "already stored with a different bundle" in response.json()["detail"]
    assert api.client.get("/runs/run-7/bundle").content == first


def test_bundle_signed_by_an_unregistered_key_is_rejected_and_nothing_stored(
    api, make_bundle_bytes, tmp_path
) -> None:
    registered = load_or_create_identity()
    forger = load_or_create_identity(tmp_path / "forger")
    forged = make_bundle_bytes(
        "run-forged", identity=LabIdentity(registered.name, forger.private_key)
    )
    before = snapshot(api.store)
    response = submit(api, forged)
    assert response.status_code == 422
    assert "different public key" in response.json()["detail"]
    assert snapshot(api.store) == before


def test_manifest_resigned_with_lab_key_but_files_changed_is_rejected(
    api, make_bundle_bytes
) -> None:
    data = make_bundle_bytes("run-edit", verdict="not-certified")
    altered = rewrite_member(
        data, "run/run.json", lambda c: c.replace(b'"not-certified"', b'"certified"')
    )
    before = snapshot(api.store)
    response = submit(api, altered)
    assert response.status_code == 422
    assert "'run.json' was changed" in response.json()["detail"]
    assert snapshot(api.store) == before


def test_altered_manifest_fails_the_signature(api, make_bundle_bytes) -> None:
    data = make_bundle_bytes("run-man")
    altered = rewrite_member(data, "manifest.json", lambda c: c.replace(b"run-man", b"run-mam"))
    before = snapshot(api.store)
    response = submit(api, altered)
    assert response.status_code == 422
    assert "signature does not match" in response.json()["detail"]
    assert snapshot(api.store) == before


def test_a_single_flipped_byte_anywhere_is_rejected(api, make_bundle_bytes) -> None:
    data = make_bundle_bytes("run-flip")
    before = snapshot(api.store)
    for offset in (10, 600, 1500, len(data) // 2, len(data) - 3):
        altered = bytearray(data)
        altered[offset] ^= 1
        assert submit(api, bytes(altered)).status_code == 422, offset
    assert snapshot(api.store) == before


def test_bundle_of_another_registered_lab_is_refused_with_this_labs_token(
    api, make_bundle_bytes, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("HARNESS_LAB_NAME", "lab-two")
    other = load_or_create_identity(tmp_path / "lab-two")
    api.store.add_lab("lab-two", other.public_key_text)
    response = submit(api, make_bundle_bytes("run-other", identity=other))
    assert response.status_code == 422
    assert "different public key" in response.json()["detail"]
    assert api.store.list_runs() == []


def test_run_json_missing_a_field_names_it(api, make_bundle_bytes) -> None:
    data = make_bundle_bytes(
        "run-nofield", unchecked={"board": {"vendor": "Acme Boards", "revision": "A1"}}
    )
    response = submit(api, data)
    assert response.status_code == 422
    assert response.json()["detail"] == "run.json field 'board.model': Field required"


@pytest.mark.parametrize("payload", [b"", b"not a tar at all" * 100, b"\0" * 10240])
def test_garbage_upload_is_422_with_a_reason(api, payload) -> None:
    response = submit(api, payload)
    assert response.status_code == 422
    assert "bundle" in response.json()["detail"]
    assert api.store.list_runs() == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/cases", {"case_id": "C", "customer_ref": "c", "subsystem": "usb", "vendor": "V", "model": "M", "revision": "A"}, "severity"),
        ("/cases", {"case_id": "C", "customer_ref": "c", "severity": "urgent!", "subsystem": "usb", "vendor": "V", "model": "M", "revision": "A"}, "severity"),
        ("/cases", {"case_id": "C", "customer_ref": "c", "severity": "low", "subsystem": "usb", "vendor": "V", "model": "M", "revision": "A", "opened_at": "yesterday"}, "opened_at"),
        ("/kernels", {"kernel_release": "6.6", "build_id": "b", "boards": []}, "boards"),
        ("/kernels", {"kernel_release": "6.6", "build_id": "b", "boards": [{"vendor": "V"}]}, "boards.0.model"),
        ("/labs", {"name": "x", "public_key": "ssh-rsa AAAA", "signature": "AAAA"}, "public_key"),
        ("/boards", {"vendor": "V", "model": "M", "colour": "red"}, "colour"),
    ],
)  # fmt: skip
def test_bad_request_names_the_field_in_one_paragraph(api, path, body, field) -> None:
    response = api.client.post(path, json=body, headers=api.headers("admin"))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    assert f"'{field}'" in detail


def test_revoking_twice_is_a_conflict_and_the_first_reason_stays(api, make_bundle_bytes) -> None:
    cert_id = submit(api, make_bundle_bytes("run-rv")).json()["certificate_id"]
    first = api.client.post(
        f"/certificates/{cert_id}/revoke", json={"reason": "bad RAM"}, headers=api.headers("admin")
    )
    assert first.status_code == 200 and first.json()["revoked_reason"] == "bad RAM"
    again = api.client.post(
        f"/certificates/{cert_id}/revoke", json={"reason": "other"}, headers=api.headers("admin")
    )
    assert again.status_code == 409
    assert api.store.get_certificate(cert_id)["revoked_reason"] == "bad RAM"
    missing = api.client.post(
        "/certificates/999999/revoke", json={"reason": "x"}, headers=api.headers("admin")
    )
    assert missing.status_code == 404


def _open_case(api, case_id: str = "CASE-1", model: str = "AB-100") -> None:
    opened = api.client.post("/cases", headers=api.headers("admin"), json={
        "case_id": case_id, "customer_ref": "ACME-77", "severity": "critical", "subsystem": "ethernet",
        "vendor": "Acme Boards", "model": model, "revision": "A1", "opened_at": "2026-06-01T12:00:00+00:00"})  # fmt: skip
    assert opened.status_code == 201, opened.text


def test_case_lifecycle_repro_runs_and_verification(api, make_bundle_bytes) -> None:
    _open_case(api)
    repro = submit(api, make_bundle_bytes("repro-1", **repro_fields("CASE-1"))).json()["run_id"]
    fixed = submit(
        api, make_bundle_bytes("verify-1", **repro_fields("CASE-1", "verify", reproduced=0))
    ).json()["run_id"]
    attached = api.client.post(
        "/cases/CASE-1/runs", json={"run_id": repro}, headers=api.headers("lab")
    )
    assert attached.status_code == 200, attached.text
    run = attached.json()["reproduction_runs"][0]
    assert (run["rate"], run["reproduced"], run["iterations"], run["interval"]) == (
        0.3,
        3,
        10,
        [0.107791, 0.603222],  # the Wilson interval of 3 in 10, as the repro session computes it
    )
    assert run["lab"] == "lab-one" and run["report"] == "/runs/repro-1/report"
    missing = api.client.post(
        "/cases/CASE-1/runs", json={"run_id": "never-submitted"}, headers=api.headers("lab")
    )
    assert missing.status_code == 404 and "submit its bundle first" in missing.json()["detail"]
    verified = api.client.post(
        "/cases/CASE-1/verification",
        json={"verdict": "resolved", "run_id": fixed},
        headers=api.headers("lab"),
    )
    case = verified.json()
    assert (
        case["verification"]["verdict"] == "resolved"
        and case["verification"]["run_id"] == "verify-1"
    )
    assert [r["run_id"] for r in case["reproduction_runs"]] == ["repro-1", "verify-1"]
    assert case["response_target_at"] == "2026-06-02T14:00:00+00:00"
    assert case["response"]["target_business_hours"] == 12
    actions = [(e["action"], e["entity_key"]) for e in api.store.audit_entries()]
    assert ("open", "CASE-1") in actions and ("verify", "CASE-1") in actions


def test_a_repro_run_never_issues_a_certificate(api, make_bundle_bytes) -> None:
    stored = submit(api, make_bundle_bytes("repro-2", **repro_fields("CASE-X")))
    assert stored.status_code == 201, stored.text
    assert stored.json()["certificate_id"] is None
    forged = {**repro_fields("CASE-X"), "unchecked": {"verdict": "certified"}}
    refused = submit(api, make_bundle_bytes("repro-3", **forged))
    assert refused.status_code == 422 and "not a verdict of a repro run" in refused.text


def test_another_labs_token_cannot_attach_or_verify_with_a_run_it_did_not_run(
    api, make_bundle_bytes
) -> None:
    """Issue 10, defect 3: lab B attached lab A's run to a case and set it resolved."""
    from harness.registry.store import Principal

    _open_case(api)
    run_a = submit(
        api, make_bundle_bytes("verify-a", **repro_fields("CASE-1", "verify", reproduced=0))
    ).json()["run_id"]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from harness.labkey import encode_public_key

    token_b = api.store.add_lab(
        "lab-two", encode_public_key(Ed25519PrivateKey.generate().public_key())
    )
    as_b = {"Authorization": f"Bearer {token_b}"}
    before = api.client.get("/cases/CASE-1").json()
    for path, body in (("runs", {}), ("verification", {"verdict": "resolved"})):
        refused = api.client.post(
            f"/cases/CASE-1/{path}", json={**body, "run_id": run_a}, headers=as_b
        )
        assert refused.status_code == 403, refused.text
        assert "another lab" in refused.json()["detail"]
    assert api.client.get("/cases/CASE-1").json() == before
    admin = api.store.verify_case("CASE-1", "resolved", run_a, Principal(role="admin", label="ops"))
    assert admin["verification"]["verdict"] == "resolved", "an admin may"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "not a reproduction run"),  # a certification run
        (repro_fields("CASE-1", "repro", reproduced=0), "not a verify-resolution run"),
        (repro_fields("CASE-1", "verify", reproduced=2), "not a verify-resolution run that found"),
        (repro_fields("CASE-OTHER", "verify", reproduced=0), "reproduces case 'CASE-OTHER'"),
        (
            {**repro_fields("CASE-1", "verify", reproduced=0), "model": "AB-200"},
            "another board model",
        ),
    ],
    ids=[
        "certification-run",
        "repro-not-verify",
        "verify-not-resolved",
        "other-case",
        "other-model",
    ],
)
def test_resolved_verdict_needs_a_resolved_verify_run_of_the_case_on_its_board_model(
    api, make_bundle_bytes, fields, words
) -> None:
    _open_case(api)
    run_id = submit(api, make_bundle_bytes("candidate", **fields)).json()["run_id"]
    refused = api.client.post(
        "/cases/CASE-1/verification",
        json={"verdict": "resolved", "run_id": run_id},
        headers=api.headers("admin"),
    )
    assert refused.status_code == 422, refused.text
    assert words in refused.json()["detail"]
    assert api.client.get("/cases/CASE-1").json()["verification"]["verdict"] is None


def test_audit_log_refuses_updates_and_deletes_at_the_database(
    store, lab, make_bundle_bytes
) -> None:
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    from harness.registry.schema import audit_log

    store.submit_bundle(make_bundle_bytes("run-audit"), lab)
    entries = store.audit_entries()
    assert {e["action"] for e in entries} >= {"register", "submit"}
    for statement in (update(audit_log).values(actor="mallory"), delete(audit_log)):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(statement)
    assert store.audit_entries() == entries


def test_published_openapi_is_valid_and_its_upload_field_is_what_the_server_accepts(
    api, make_bundle_bytes
) -> None:
    published = api.client.get("/openapi.json")  # no token: client generators fetch it first
    assert published.status_code == 200
    spec = published.json()
    validate_openapi(spec)  # raises on a spec a client generator would choke on
    for path in (
        "/submissions",
        "/eligibility",
        "/certificates/{cert_id}/revoke",
        "/kernels",
        "/cases",
    ):
        assert path in spec["paths"]
    body = spec["paths"]["/submissions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    form = spec["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[-1]]
    (field,) = form["required"]
    # a client that builds its upload from the spec alone gets its run stored
    response = api.client.post(
        "/submissions",
        files={field: ("run.bundle.tar", make_bundle_bytes("run-from-spec"))},
        headers=api.headers("lab"),
    )
    assert response.status_code == 201, response.text
    assert [r["run_id"] for r in api.store.list_runs()] == ["run-from-spec"]


def test_incomplete_run_whose_board_never_booted_is_kept_as_evidence(
    api, make_bundle_bytes
) -> None:
    unknown = {
        "kernel_release": None,
        "kernel_version": None,
        "os_release": None,
        "bootloader": None,
    }
    response = submit(
        api, make_bundle_bytes("run-noboot", verdict="incomplete", extra={"software": unknown})
    )
    assert response.status_code == 201 and response.json()["certificate_id"] is None
    assert [r["verdict"] for r in api.store.list_runs()] == ["incomplete"]


def test_certified_run_without_os_release_is_refused(api, make_bundle_bytes) -> None:
    software = {"kernel_release": "6.1.0-27-arm64", "os_release": None}
    response = submit(api, make_bundle_bytes("run-noos", extra={"software": software}))
    assert response.status_code == 422
    assert (
        response.json()["detail"]
        == "run.json field 'software.os_release': a certified run must record it"
    )
    assert api.store.list_runs() == []


def test_eligibility_query_without_a_field_names_it(api) -> None:
    response = api.client.get(
        "/eligibility", params={"vendor": "V", "model": "M", "revision": "A", "os_release": "D"}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "field 'kernel_release': Field required"


def test_refused_write_leaves_no_partial_rows(api) -> None:
    """A duplicate case for a new board: the board row made earlier in the transaction is rolled back."""
    case = {"case_id": "CASE-dup", "customer_ref": "c", "severity": "low", "subsystem": "usb"}
    first = api.client.post(
        "/cases",
        json={**case, "vendor": "V", "model": "M", "revision": "A"},
        headers=api.headers("admin"),
    )
    assert first.status_code == 201
    boards_before, audit_before = api.store.list_boards(), len(api.store.audit_entries())
    again = api.client.post(
        "/cases",
        json={**case, "vendor": "Brand New", "model": "Never Seen", "revision": "Z"},
        headers=api.headers("admin"),
    )
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    assert api.store.list_boards() == boards_before
    assert len(api.store.audit_entries()) == audit_before
