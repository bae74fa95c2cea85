"""Properties every eligibility answer keeps, over random certificate and kernel sets (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.registry.eligibility import (
    CertRecord,
    Device,
    KernelBoard,
    KernelRecord,
    Status,
    evaluate,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
MODELS = ["AB-100", "XY-7"]
REVISIONS = ["A1", "B2"]
RELEASES = ["Debian 12", "Debian 13"]
KERNELS = ["6.1.0-27-arm64", "6.6.0-acme1"]
BUILD_IDS = ["aa01", "bb02"]  # GNU build ids (hex), shared by kernels so that ids collide too


@st.composite
def certs(draw: st.DrawFn) -> list[CertRecord]:
    out = []
    for i in range(draw(st.integers(0, 6))):
        issued = NOW - timedelta(days=draw(st.integers(-5, 500)))
        revoked = draw(st.booleans())
        out.append(
            CertRecord(
                id=i + 1, run_id=f"r{i + 1}", vendor="Acme", model=draw(st.sampled_from(MODELS)),
                revision=draw(st.sampled_from(REVISIONS)), os_release=draw(st.sampled_from(RELEASES)),
                kernel_release=draw(st.sampled_from(KERNELS)), kernel_version="", plan_id="precert", plan_version="1",
                lab="lab", bundle_sha256="0" * 64, issued_at=issued, expires_at=issued + timedelta(days=365),
                revoked_at=NOW - timedelta(days=1) if revoked else None, revoked_reason="why" if revoked else None,
            )
        )  # fmt: skip
    return out


@st.composite
def kernels(draw: st.DrawFn) -> list[KernelRecord]:
    out = []
    for i in range(draw(st.integers(0, 3))):
        boards = tuple(
            KernelBoard(
                "Acme", draw(st.sampled_from(MODELS)), draw(st.sampled_from(["", *REVISIONS]))
            )
            for _ in range(draw(st.integers(1, 2)))
        )
        out.append(
            KernelRecord(
                id=i + 1,
                kernel_release=draw(st.sampled_from(KERNELS)),
                kernel_version="",
                build_id=draw(st.sampled_from(BUILD_IDS)),
                boards=boards,
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(
    certs(),
    kernels(),
    st.sampled_from(MODELS),
    st.sampled_from(REVISIONS),
    st.sampled_from(RELEASES),
    st.sampled_from(KERNELS),
    st.sampled_from(["", *BUILD_IDS]),
)
def test_every_record_is_either_evidence_or_explained_and_status_follows_evidence(
    cert_list, kernel_list, model, revision, release, kernel, build_id
) -> None:
    device = Device("Acme", model, revision, release, kernel, kernel_build_id=build_id)
    answer = evaluate(device, cert_list, kernel_list, NOW)
    cited = [(e["kind"], e["id"]) for e in answer.evidence]
    skipped = [(e["kind"], e["id"]) for e in answer.not_counted]
    given_records = [("certificate", c.id) for c in cert_list] + [
        ("vendor-kernel", k.id) for k in kernel_list
    ]
    # each record appears once (a matching kernel is cited even when a certificate decides)
    assert sorted(cited + skipped) == sorted(given_records)
    assert all(e["why"] for e in answer.not_counted)
    assert answer.eligible == bool(answer.evidence)
    valid_exact = [
        c for c in cert_list
        if (c.model, c.revision, c.os_release) == (model, revision, release)
        and c.revoked_at is None and c.issued_at <= NOW < c.expires_at
    ]  # fmt: skip
    assert (answer.status is Status.CERTIFIED) == bool(valid_exact)
    if answer.status is Status.VENDOR_KERNEL:
        assert all(
            e["kind"] == "vendor-kernel"
            and e["kernel_release"] == kernel
            and e["build_id"] == build_id
            for e in answer.evidence
        )
    # a kernel counts only on proof: the device's running build id is the vendor's
    for item in answer.evidence:
        if item["kind"] == "vendor-kernel":
            assert item["build_id"] == build_id
    for item in answer.not_counted:
        if (
            item["kind"] == "certificate"
            and item.get("revoked_at")
            and item["board"]["model"] == model
        ):
            assert "revoked" in item["why"]
