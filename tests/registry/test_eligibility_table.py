"""Eligibility rules, table-tested through the real store on SQLite and PostgreSQL.

Every situation is built the way it happens in production: certificates come
from signed bundle submissions (issued at the clock's time), revocations and
vendor kernels through the store's admin calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from harness.registry.eligibility import Device, Status
from harness.registry.store import LOCAL_ADMIN

VENDOR, MODEL = "Acme Boards", "AB-100"
KERNEL = "6.1.0-27-arm64"
KB1 = "3d1a0c2b9e8f7a6554433221100ffeeddccbbaa9"  # GNU build id of the vendor's build
OTHER = "0123456789abcdef0123456789abcdef01234567"  # another build of the same release


@dataclass
class Cert:
    run_id: str
    revision: str = "A1"
    os_release: str = "Debian 12"
    kernel: str = KERNEL
    days_ago: int = 10
    revoked: str | None = None
    model: str = MODEL


@dataclass
class Kernel:
    build_id: str
    release: str = "6.6.0-acme1"
    boards: list[tuple[str, str]] = field(default_factory=lambda: [(MODEL, "")])
    version: str = ""


@dataclass
class Case:
    name: str
    device: Device
    expected: Status
    certs: list[Cert] = field(default_factory=list)
    kernels: list[Kernel] = field(default_factory=list)
    rests_on: set[str] = field(default_factory=set)  # run ids / build ids in the evidence
    skipped_because: dict[str, str] = field(default_factory=dict)  # run/build id -> words in "why"


def device(
    revision: str = "A1",
    os_release: str = "Debian 12",
    kernel: str = KERNEL,
    model: str = MODEL,
    version: str = "",
    build_id: str = "",
) -> Device:
    return Device(VENDOR, model, revision, os_release, kernel, version, build_id)


CASES = [
    Case("exact valid certificate", device(), Status.CERTIFIED, [Cert("r1")], rests_on={"r1"}),
    Case(
        "certified board running another kernel stays eligible, with a note",
        device(kernel="6.1.0-28-arm64"),
        Status.CERTIFIED,
        [Cert("r1")],
        rests_on={"r1"},
    ),
    Case("never certified, unknown model", device(model="ZZ-9"), Status.NOT_ELIGIBLE),
    Case(
        "only certificate expired",
        device(),
        Status.NOT_ELIGIBLE,
        [Cert("r1", days_ago=400)],
        skipped_because={"r1": "expired on"},
    ),
    Case(
        "only certificate revoked",
        device(),
        Status.NOT_ELIGIBLE,
        [Cert("r1", revoked="flaky USB found later")],
        skipped_because={"r1": "flaky USB found later"},
    ),
    Case(
        "revoked one ignored, valid one counts",
        device(),
        Status.CERTIFIED,
        [Cert("r1", revoked="bad evidence"), Cert("r2")],
        rests_on={"r2"},
        skipped_because={"r1": "revoked"},
    ),
    Case(
        "other revision certified is related only",
        device(revision="B2"),
        Status.RELATED,
        [Cert("r1")],
        skipped_because={"r1": "revision A1, not B2"},
    ),
    Case(
        "other OS release certified is related only",
        device(os_release="Debian 13"),
        Status.RELATED,
        [Cert("r1")],
        skipped_because={"r1": "OS release Debian 12, not Debian 13"},
    ),
    Case(
        "related certificate that is revoked does not make it related",
        device(revision="B2"),
        Status.NOT_ELIGIBLE,
        [Cert("r1", revoked="withdrawn")],
        skipped_because={"r1": "revoked"},
    ),
    Case(
        "vendor kernel for all revisions of the model",
        device(revision="C3", kernel="6.6.0-acme1", build_id=KB1),
        Status.VENDOR_KERNEL,
        kernels=[Kernel(KB1)],
        rests_on={KB1},
    ),
    Case(
        "vendor kernel for another revision does not count",
        device(revision="C3", kernel="6.6.0-acme1", build_id=KB1),
        Status.NOT_ELIGIBLE,
        kernels=[Kernel(KB1, boards=[(MODEL, "A1")])],
        skipped_because={KB1: "built for Acme Boards AB-100 rev A1"},
    ),
    Case(
        "vendor kernel of another board model does not count",
        device(kernel="6.6.0-acme1", build_id=KB1),
        Status.NOT_ELIGIBLE,
        kernels=[Kernel(KB1, boards=[("XY-7", "")])],
        skipped_because={KB1: "built for Acme Boards XY-7"},
    ),
    Case(
        "device runs a different kernel than the vendor built",
        device(kernel="6.6.0-custom", build_id=OTHER),
        Status.NOT_ELIGIBLE,
        kernels=[Kernel(KB1)],
        skipped_because={KB1: "built for kernel 6.6.0-acme1"},
    ),
    Case(
        "same release but another build of the vendor kernel",
        device(kernel="6.6.0-acme1", build_id=KB1, version="#2 SMP rebuilt"),
        Status.NOT_ELIGIBLE,
        kernels=[Kernel(KB1, version="#1 SMP acme")],
        skipped_because={KB1: "different build"},
    ),
    Case(
        "same release, another build id: not the vendor's build",
        device(kernel="6.6.0-acme1", build_id=OTHER.upper()),
        Status.NOT_ELIGIBLE,
        kernels=[Kernel(KB1)],
        skipped_because={
            KB1: f"release matches 6.6.0-acme1, build id differs: not the vendor's build "
            f"(vendor build {KB1}, the device runs {OTHER})"
        },
    ),
    Case(
        "same release, build id unknown: not proven",
        device(kernel="6.6.0-acme1"),
        Status.NOT_ELIGIBLE,
        kernels=[Kernel(KB1)],
        skipped_because={KB1: "release matches 6.6.0-acme1, build id unknown"},
    ),
    Case(
        "a certified board needs no build id",
        device(kernel="6.6.0-acme1"),
        Status.CERTIFIED,
        [Cert("r1")],
        [Kernel(KB1)],
        rests_on={"r1"},
        skipped_because={KB1: "build id unknown"},
    ),
    Case(
        "expired certificate but vendor kernel still makes it eligible",
        device(kernel="6.6.0-acme1", build_id=KB1),
        Status.VENDOR_KERNEL,
        [Cert("r1", days_ago=366)],
        [Kernel(KB1)],
        rests_on={KB1},
        skipped_because={"r1": "expired"},
    ),
    Case(
        "certificate wins over vendor kernel and both are cited",
        device(kernel="6.6.0-acme1", build_id=KB1),
        Status.CERTIFIED,
        [Cert("r1")],
        [Kernel(KB1)],
        rests_on={"r1", KB1},
    ),
    Case(
        "vendor kernel beats a related certificate",
        device(revision="B2", kernel="6.6.0-acme1", build_id=KB1),
        Status.VENDOR_KERNEL,
        [Cert("r1")],
        [Kernel(KB1)],
        rests_on={KB1},
        skipped_because={"r1": "revision A1, not B2"},
    ),
    Case(
        "certificate expiring exactly now no longer counts",
        device(),
        Status.NOT_ELIGIBLE,
        [Cert("r1", days_ago=365)],
        skipped_because={"r1": "expired"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_eligibility_situation(case: Case, store, lab, clock, make_bundle_bytes) -> None:
    now = clock.now
    for cert in case.certs:
        clock.now = now - timedelta(days=cert.days_ago)
        result = store.submit_bundle(
            make_bundle_bytes(cert.run_id, vendor=VENDOR, model=cert.model, revision=cert.revision,
                              os_release=cert.os_release, kernel_release=cert.kernel),
            lab,
        )  # fmt: skip
        if cert.revoked:
            store.revoke_certificate(result["certificate_id"], cert.revoked, LOCAL_ADMIN)
    clock.now = now
    for kernel in case.kernels:
        boards = [{"vendor": VENDOR, "model": m, "revision": r} for m, r in kernel.boards]
        store.register_kernel(kernel.release, kernel.version, kernel.build_id, boards, LOCAL_ADMIN)

    answer = store.eligibility(case.device).as_dict()

    assert answer["status"] == case.expected.value, answer["summary"]
    assert answer["eligible"] == (case.expected in (Status.CERTIFIED, Status.VENDOR_KERNEL))
    cited = {e.get("run_id") or e.get("build_id") for e in answer["evidence"]}
    assert cited == case.rests_on
    reasons = {(e.get("run_id") or e.get("build_id")): e["why"] for e in answer["not_counted"]}
    for record, words in case.skipped_because.items():
        assert words in reasons[record], reasons
    if (
        case.device.kernel_release != KERNEL
        and case.expected is Status.CERTIFIED
        and not case.kernels
    ):
        assert "the device runs 6.1.0-28-arm64" in answer["evidence"][0]["note"]
