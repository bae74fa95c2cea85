"""Hostile but well-formed requests get a 4xx that names the reason, never an HTTP 500."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.labkey import LabIdentity
from tests.bundle.hostile import nested_json, resign, sparse_bundle


def submit(api, data: bytes, role: str = "lab"):
    return api.client.post(
        "/submissions", files={"bundle": ("b.tar", data)}, headers=api.headers(role)
    )


@pytest.mark.parametrize("cert_id", ["99999999999999999999", str(2**63), "-1", "0"])
def test_out_of_range_certificate_id_is_a_4xx_naming_it(api, cert_id: str) -> None:
    shown = api.client.get(f"/certificates/{cert_id}")
    assert shown.status_code == 422, shown.text
    assert "cert_id" in shown.json()["detail"]
    revoked = api.client.post(
        f"/certificates/{cert_id}/revoke", json={"reason": "x"}, headers=api.headers("admin")
    )
    assert revoked.status_code == 422, revoked.text
    assert "cert_id" in revoked.json()["detail"]


@pytest.mark.parametrize("token_id", ["99999999999999999999", str(2**63), "-1", "0"])
def test_out_of_range_token_id_is_a_4xx_naming_it(api, token_id: str) -> None:
    """Found by the schemathesis run after token revocation was added: an HTTP 500."""
    for action in ("revoke", "rotate"):
        answer = api.client.post(f"/tokens/{token_id}/{action}", headers=api.headers("admin"))
        assert answer.status_code == 422, answer.text
        assert "token_id" in answer.json()["detail"]


def test_largest_valid_certificate_id_is_simply_not_found(api) -> None:
    response = api.client.get(f"/certificates/{2**63 - 1}")
    assert response.status_code == 404
    assert "does not exist" in response.json()["detail"]


@pytest.mark.parametrize("opened_at", ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+14:00"])
def test_case_opened_at_the_ends_of_time_is_refused_naming_the_field(api, opened_at: str) -> None:
    case = {"case_id": "C-1", "customer_ref": "ACME-1", "severity": "high", "subsystem": "usb",
            "vendor": "Acme", "model": "AB-100", "revision": "A1", "opened_at": opened_at}  # fmt: skip
    response = api.client.post("/cases", json=case, headers=api.headers("admin"))
    assert response.status_code == 422, response.text
    assert (
        "field 'opened_at' must lie between 1970-01-01 and 2200-01-01" in response.json()["detail"]
    )
    assert api.store.list_cases() == []


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deeply_nested_run_json_in_a_signed_bundle_is_422(
    api, make_bundle_bytes, lab_identity: LabIdentity, depth: int
) -> None:
    def nest(members: dict[str, bytes]) -> None:
        run = json.loads(members["run/run.json"])
        text = json.dumps({**run, "deep": "HOLE"}).encode()
        members["run/run.json"] = text.replace(b'"HOLE"', nested_json(depth))

    data = resign(make_bundle_bytes("nested-run"), lab_identity, nest)
    response = submit(api, data)
    assert response.status_code == 422, response.text
    assert "run.json nests deeper than 64 levels" in response.json()["detail"]
    assert api.store.list_runs() == []


def test_deeply_nested_manifest_in_an_upload_is_422(api, make_bundle_bytes, lab_identity) -> None:
    data = resign(make_bundle_bytes("nested-manifest"), lab_identity, lambda m: None)
    from tests.bundle.hostile import repack

    hostile = repack(data, lambda m: m.__setitem__("manifest.json", nested_json(100_000)))
    response = submit(api, hostile)
    assert response.status_code == 422, response.text
    assert "manifest.json nests deeper than 64 levels" in response.json()["detail"]


def test_sparse_bundle_upload_is_422_naming_the_member(api) -> None:
    response = submit(api, sparse_bundle(10**15))
    assert response.status_code == 422, response.text
    assert "'run/console.log' is a sparse file (refused)" in response.json()["detail"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Acme\r\nInjected: yes", "a line break (U+000D"),
        ("Acme\x1b[31m", "a control character (U+001B"),
        ("Acme\u202eevil", "an invisible layout character (U+202E"),
    ],
)
def test_control_characters_in_names_are_refused_with_the_reason(
    api, value: str, shown: str
) -> None:
    response = api.client.post(
        "/boards", json={"vendor": value, "model": "M"}, headers=api.headers("admin")
    )
    assert response.status_code == 422, response.text
    assert "field 'vendor' contains " + shown in response.json()["detail"]
    assert api.store.list_boards() == []


def test_line_breaks_stay_allowed_in_a_case_summary(api) -> None:
    case = {"case_id": "C-2", "customer_ref": "ACME-2", "severity": "low", "subsystem": "usb",
            "summary": "line one\r\nline two\n\ttabbed", "vendor": "Acme", "model": "AB-100", "revision": "A1"}  # fmt: skip
    response = api.client.post("/cases", json=case, headers=api.headers("admin"))
    assert response.status_code == 201, response.text
    assert response.json()["summary"] == case["summary"]


def test_control_characters_in_a_bundles_run_json_are_refused(api, make_bundle_bytes) -> None:
    response = submit(api, make_bundle_bytes("ctl-run", model="AB-100\nCERTIFIED"))
    assert response.status_code == 422, response.text
    assert "run.json field 'board.model' contains a line break" in response.json()["detail"]


def test_control_characters_in_a_cli_name_exit_2_with_the_reason(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness", "registry", "--db", str(tmp_path / "r.db"),
         "tokens", "create", "--role", "reader", "--label", "ops\x07bell"],
        capture_output=True, text=True, env=dict(os.environ), timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "field 'label' contains a control character (U+0007" in result.stderr
    assert "Traceback" not in result.stderr
