"""A case at intake: the customer's device is checked for eligibility against what the registry
holds, and the 12-business-hour response clock shows the business time left, then overdue."""

from __future__ import annotations

from datetime import UTC, datetime

from harness.registry.store import LOCAL_ADMIN

DEVICE = {"vendor": "Acme Boards", "model": "AB-100", "revision": "A1"}
SOFTWARE = {"os_release": "Debian 12", "kernel_release": "6.1.0-27-arm64"}


def _open(store, case_id: str, **fields: object) -> dict:
    return store.open_case(
        {"case_id": case_id, "customer_ref": f"ACME-{case_id}", "severity": "high",
         "subsystem": "usb", **{**DEVICE, **fields}},
        LOCAL_ADMIN,
    )  # fmt: skip


def test_eligibility_is_checked_at_intake_against_the_registry(
    store, lab, make_bundle_bytes
) -> None:
    stored = store.submit_bundle(make_bundle_bytes("cert-run", **DEVICE, **SOFTWARE), lab)
    assert stored["certificate_id"] is not None

    certified = _open(store, "C-1", **SOFTWARE)["eligibility"]
    assert certified["status"] == "eligible-certified"
    assert certified["answer"]["eligible"] is True
    assert [e["run_id"] for e in certified["answer"]["evidence"]] == ["cert-run"]

    related = _open(store, "C-2", **{**SOFTWARE, **DEVICE, "revision": "B2"})["eligibility"]
    assert related["status"] == "not-eligible-related-certificate"
    assert related["answer"]["eligible"] is False
    other = _open(store, "C-4", **{**SOFTWARE, **DEVICE, "model": "AB-200"})["eligibility"]
    assert (other["status"], other["answer"]["eligible"]) == ("not-eligible", False)

    unknown = _open(store, "C-3")["eligibility"]
    assert unknown["status"] == "unknown"
    assert (
        "does not give the device's OS release and kernel release" in (unknown["answer"]["reason"])
    )
    assert store.get_case("C-1")["eligibility"] == certified, "kept as it was at intake"


def test_response_clock_counts_business_hours_left_then_overdue(store, clock, api) -> None:
    # Friday 17:30 UTC: 0.5 h on Friday, 10 h on Monday, 1.5 h on Tuesday
    _open(store, "C-9", opened_at=datetime(2026, 11, 27, 17, 30, tzinfo=UTC))
    for now, left, overdue in (
        (datetime(2026, 11, 28, 11, 0, tzinfo=UTC), 11.5, False),  # Saturday: nothing spent
        (datetime(2026, 11, 30, 12, 0, tzinfo=UTC), 7.5, False),  # Monday noon
        (datetime(2026, 12, 1, 9, 0, tzinfo=UTC), 0.5, False),
        (datetime(2026, 12, 1, 9, 30, tzinfo=UTC), 0.0, True),  # the target itself
        (datetime(2026, 12, 3, 9, 0, tzinfo=UTC), 0.0, True),
    ):
        clock.now = now
        response = store.get_case("C-9")["response"]
        assert response == {
            "target_business_hours": 12,
            "overdue": overdue,
            "business_hours_left": left,
        }, now
    clock.now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    page = api.client.get("/ui/cases")
    assert page.status_code == 200
    assert "7.5 business hours left" in page.text
    clock.now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert "overdue" in api.client.get("/ui/cases").text
