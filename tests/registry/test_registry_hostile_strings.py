"""Hostile text (SQL, HTML, template syntax, path traversal) in every text field comes back verbatim."""

from __future__ import annotations

import html
from urllib.parse import quote

import pytest
from sqlalchemy import inspect

from tests.registry.runfolder import repro_fields

HOSTILE = [
    "'; DROP TABLE certificates; --",
    '<script>window.__pwned = 1; alert("x")</script>',
    "<img src=x onerror=alert(1)>",
    "../../../etc/passwd",
    "{{ 7*7 }} {% raw %}",
    "Robert'); DELETE FROM runs WHERE ('1'='1",
    "quote \" apostrophe ' backslash \\ percent %s %(x)s",
    "ünïcødé ✓ 板 — ☃ עברית",
]


@pytest.mark.parametrize("text", HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_hostile_text_round_trips_and_never_executes(api, make_bundle_bytes, text: str) -> None:
    admin = api.headers("admin")
    board = {"vendor": text, "model": text + " M", "revision": text + " R"}

    # through a signed submission: board identity, software identity, plan and run id from run.json
    run_id = "run " + text
    data = make_bundle_bytes(run_id, vendor=board["vendor"], model=board["model"], revision=board["revision"],
                             os_release=text, kernel_release=text, kernel_version=text, plan_id=text, plan_version=text)  # fmt: skip
    stored = api.client.post(
        "/submissions", files={"bundle": ("b.tar", data)}, headers=api.headers("lab")
    )
    assert stored.status_code == 201, stored.text
    cert = api.client.get(f"/certificates/{stored.json()['certificate_id']}").json()
    assert cert["run_id"] == run_id
    assert cert["board"] == board
    assert cert["os_release"] == cert["kernel_release"] == text
    assert cert["plan"] == {"id": text, "version": text}
    assert api.client.get(f"/runs/{quote(run_id, safe='')}/bundle").content == data

    # admin writes
    reason = "revoked because " + text
    assert (
        api.client.post(
            f"/certificates/{cert['id']}/revoke", json={"reason": reason}, headers=admin
        ).json()["revoked_reason"]
        == reason
    )
    kernel = api.client.post("/kernels", headers=admin, json={
        "kernel_release": text, "kernel_version": text, "build_id": "build " + text, "boards": [board]}).json()  # fmt: skip
    assert (kernel["kernel_release"], kernel["kernel_version"], kernel["build_id"]) == (
        text,
        text,
        "build " + text,
    )
    assert kernel["boards"] == [board]
    case_id = "case " + text
    case = api.client.post("/cases", headers=admin, json={
        "case_id": case_id, "customer_ref": text, "severity": "low", "subsystem": text, "summary": text, **board}).json()  # fmt: skip
    assert (case["case_id"], case["customer_ref"], case["subsystem"], case["summary"]) == (
        case_id,
        text,
        text,
        text,
    )
    repro_id = "repro " + text
    repro_data = make_bundle_bytes(repro_id, **board, **repro_fields(case_id))
    repro_stored = api.client.post(
        "/submissions", files={"bundle": ("b.tar", repro_data)}, headers=api.headers("lab")
    )
    assert repro_stored.status_code == 201, repro_stored.text
    attached = api.client.post(
        f"/cases/{quote(case_id, safe='')}/runs", json={"run_id": repro_id}, headers=admin
    )
    assert attached.status_code == 200, attached.text
    assert (
        api.client.get(f"/cases/{quote(case_id, safe='')}").json()["reproduction_runs"][0]["run_id"]
        == repro_id
    )
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from harness.labkey import LabIdentity

    enrolment = LabIdentity("lab " + text, Ed25519PrivateKey.generate()).enrolment()
    lab = api.client.post("/labs", headers=admin, json=enrolment)
    assert lab.status_code == 201 and lab.json()["name"] == "lab " + text

    registered = api.client.post("/boards", headers=admin, json={
        "vendor": "board " + text, "model": text, "soc": text, "revisions": [text]}).json()  # fmt: skip
    assert (registered["vendor"], registered["model"], registered["soc"]) == (
        "board " + text,
        text,
        text,
    )
    assert registered["revisions"] == [{"revision": text, "certified_os_releases": []}]
    token = api.client.post(
        "/tokens", headers=admin, json={"role": "reader", "label": text}
    ).json()["token"]
    assert (
        api.client.get("/boards", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    assert any(
        e["entity_key"] == text and e["entity"] == "token"
        for e in api.client.get("/audit", headers=admin).json()
    )

    # eligibility with hostile device fields answers from the vendor kernel, verbatim
    answer = api.client.get(
        "/eligibility",
        params={
            **board,
            "os_release": text,
            "kernel_release": text,
            "kernel_version": text,
            "kernel_build_id": "build " + text,
        },
    ).json()
    assert answer["status"] == "eligible-vendor-kernel"
    assert answer["device"]["vendor"] == text
    assert any(reason in item["why"] for item in answer["not_counted"])

    # the web pages show it escaped, never as markup or template output
    for page in (
        api.client.get("/").text,
        api.client.get(
            "/ui/eligibility", params={**board, "os_release": text, "kernel_release": text}
        ).text,
    ):
        assert text in html.unescape(page)  # shown literally (template syntax not evaluated) ...
        assert (
            "<script>window.__pwned" not in page and "<img src=x" not in page
        )  # ... and never as markup

    # and nothing was dropped or deleted
    tables = set(inspect(api.store.engine).get_table_names())
    assert {"certificates", "runs", "audit_log", "cases"} <= tables
    assert len(api.store.list_runs()) == 2  # the certification run and the repro run
