"""Eligibility rules: is this device covered by support, and on what evidence?

Pure functions over certificate and kernel records so the rules can be
table-tested without a database. Every answer carries the records it rests on
and, for each record that looked relevant but did not count, the reason, so a
support engineer can explain a "no" to a customer without digging.

Order of precedence: a valid certificate for the exact board revision and OS
release; else a vendor-built kernel made for this board, proven by the GNU
build id of the kernel the device runs (a release string is only a claim:
anyone can build a kernel that prints the vendor's `uname -r`); else a valid
certificate of the same model for another revision or OS release (related,
not eligible); else not eligible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    CERTIFIED = "eligible-certified"
    VENDOR_KERNEL = "eligible-vendor-kernel"
    RELATED = "not-eligible-related-certificate"
    NOT_ELIGIBLE = "not-eligible"


@dataclass(frozen=True)
class Device:
    vendor: str
    model: str
    revision: str
    os_release: str
    kernel_release: str
    kernel_version: str = ""
    kernel_build_id: str = ""
    """GNU build id of the running kernel (hex); "" when unknown."""


def normalise_build_id(value: str) -> str:
    """Hex build ids compare case- and separator-insensitively; free text stays as given."""
    compact = value.strip().replace(":", "").replace("-", "")
    if compact and all(c in "0123456789abcdefABCDEF" for c in compact):
        return compact.lower()
    return value


@dataclass(frozen=True)
class CertRecord:
    id: int
    run_id: str
    vendor: str
    model: str
    revision: str
    os_release: str
    kernel_release: str
    kernel_version: str
    plan_id: str
    plan_version: str
    lab: str
    bundle_sha256: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    image_name: str | None = None  # the OS image the run deployed (--image), if it did
    image_sha256: str | None = None

    def as_evidence(self) -> dict[str, Any]:
        return {
            "kind": "certificate",
            "id": self.id,
            "run_id": self.run_id,
            "board": {"vendor": self.vendor, "model": self.model, "revision": self.revision},
            "os_release": self.os_release,
            "kernel_release": self.kernel_release,
            "plan": {"id": self.plan_id, "version": self.plan_version},
            "lab": self.lab,
            "bundle_sha256": self.bundle_sha256,
            "image": (
                {"name": self.image_name, "sha256": self.image_sha256}
                if self.image_sha256
                else None
            ),
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_reason": self.revoked_reason,
        }


@dataclass(frozen=True)
class KernelBoard:
    vendor: str
    model: str
    revision: str  # "" = every revision

    def covers(self, device: Device) -> bool:
        return (
            self.vendor == device.vendor
            and self.model == device.model
            and self.revision in ("", device.revision)
        )

    def label(self) -> str:
        return f"{self.vendor} {self.model}" + (
            f" rev {self.revision}" if self.revision else " (all revisions)"
        )


@dataclass(frozen=True)
class KernelRecord:
    id: int
    kernel_release: str
    kernel_version: str
    build_id: str
    boards: tuple[KernelBoard, ...]
    artifact: dict[str, Any] | None = None
    """Where the build id was extracted from (name, sha256, format); None: typed in, unverified."""

    @property
    def build_id_verified(self) -> bool:
        return self.artifact is not None

    def as_evidence(self) -> dict[str, Any]:
        return {
            "kind": "vendor-kernel",
            "id": self.id,
            "kernel_release": self.kernel_release,
            "kernel_version": self.kernel_version,
            "build_id": self.build_id,
            "build_id_verified": self.build_id_verified,
            "artifact": self.artifact,
            "boards": [
                {"vendor": b.vendor, "model": b.model, "revision": b.revision or None}
                for b in self.boards
            ],
        }


@dataclass
class Answer:
    device: Device
    status: Status
    summary: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    not_counted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return self.status in (Status.CERTIFIED, Status.VENDOR_KERNEL)

    def as_dict(self) -> dict[str, Any]:
        d = self.device
        return {
            "device": {
                "vendor": d.vendor,
                "model": d.model,
                "revision": d.revision,
                "os_release": d.os_release,
                "kernel_release": d.kernel_release,
                "kernel_version": d.kernel_version,
                "kernel_build_id": normalise_build_id(d.kernel_build_id) or None,
            },
            "status": self.status.value,
            "eligible": self.eligible,
            "summary": self.summary,
            "evidence": self.evidence,
            "not_counted": self.not_counted,
        }


def _validity_problem(cert: CertRecord, now: datetime) -> str | None:
    if cert.revoked_at is not None and cert.revoked_at <= now:
        return f"revoked on {cert.revoked_at.date().isoformat()}: {cert.revoked_reason or 'no reason given'}"
    if cert.expires_at <= now:
        return f"expired on {cert.expires_at.date().isoformat()}"
    if cert.issued_at > now:
        return f"not valid before {cert.issued_at.date().isoformat()}"
    return None


def _kernel_problem(kernel: KernelRecord, device: Device) -> str | None:
    if kernel.kernel_release != device.kernel_release:
        if device.kernel_build_id and kernel.build_id == normalise_build_id(device.kernel_build_id):
            return (
                f"build id {kernel.build_id} matches, but the device reports release "
                f"{device.kernel_release}, not {kernel.kernel_release}"
            )
        return f"built for kernel {kernel.kernel_release}, the device runs {device.kernel_release}"
    if not any(board.covers(device) for board in kernel.boards):
        made_for = ", ".join(b.label() for b in kernel.boards) or "no board"
        return f"built for {made_for}, not for {device.vendor} {device.model} rev {device.revision}"
    if not device.kernel_build_id:
        return (
            f"release matches {kernel.kernel_release}, build id unknown: the device's running "
            f"build id was not given, so it cannot be proven to be the vendor's build {kernel.build_id}"
        )
    if kernel.build_id != normalise_build_id(device.kernel_build_id):
        return (
            f"release matches {kernel.kernel_release}, build id differs: not the vendor's build "
            f"(vendor build {kernel.build_id}, the device runs {normalise_build_id(device.kernel_build_id)})"
        )
    if (
        kernel.kernel_version
        and device.kernel_version
        and kernel.kernel_version != device.kernel_version
    ):
        return f"same release but a different build ({kernel.kernel_version!r}, the device runs {device.kernel_version!r})"
    return None


def evaluate(
    device: Device, certs: list[CertRecord], kernels: list[KernelRecord], now: datetime
) -> Answer:
    """Decide eligibility from the candidate records (the store passes all that could matter)."""
    exact: list[CertRecord] = []
    related: list[CertRecord] = []
    not_counted: list[dict[str, Any]] = []

    def skip(record: dict[str, Any], why: str) -> None:
        not_counted.append({**record, "why": why})

    for cert in sorted(certs, key=lambda c: (c.issued_at, c.id)):
        if (cert.vendor, cert.model) != (device.vendor, device.model):
            skip(cert.as_evidence(), "certificate for another board model")
            continue
        problem = _validity_problem(cert, now)
        if problem:
            skip(cert.as_evidence(), problem)
            continue
        same_revision = cert.revision == device.revision
        same_release = cert.os_release == device.os_release
        if same_revision and same_release:
            exact.append(cert)
        else:
            other = []
            if not same_revision:
                other.append(f"revision {cert.revision}, not {device.revision}")
            if not same_release:
                other.append(f"OS release {cert.os_release}, not {device.os_release}")
            skip(cert.as_evidence(), "valid certificate for " + " and ".join(other))
            related.append(cert)

    matching_kernels: list[KernelRecord] = []
    for kernel in sorted(kernels, key=lambda k: k.id):
        problem = _kernel_problem(kernel, device)
        if problem:
            skip(kernel.as_evidence(), problem)
        else:
            matching_kernels.append(kernel)

    board = f"{device.vendor} {device.model} rev {device.revision}"
    if exact:
        evidence = [_with_note(c, device) for c in exact]
        evidence += [k.as_evidence() for k in matching_kernels]
        return Answer(
            device,
            Status.CERTIFIED,
            f"eligible: {board} is pre-certified for {device.os_release}",
            evidence,
            not_counted,
        )
    if matching_kernels:
        return Answer(
            device,
            Status.VENDOR_KERNEL,
            f"eligible: {board} runs vendor-built kernel {device.kernel_release} "
            f"(build id {normalise_build_id(device.kernel_build_id)} is the vendor's build)",
            [{**k.as_evidence(), "why": _match_reason(k, device)} for k in matching_kernels],
            not_counted,
        )
    if related:
        return Answer(
            device,
            Status.RELATED,
            f"not eligible: {board} is not certified for {device.os_release}, "
            "but a certificate exists for another revision or OS release of this model",
            [],
            not_counted,
        )
    reason = (
        "never certified"
        if not certs
        else "no valid certificate (expired, revoked or for another model)"
    )
    build_problems = [
        item["why"] for item in not_counted if item["why"].startswith("release matches ")
    ]
    if build_problems:
        reason += "; " + build_problems[0]
    return Answer(device, Status.NOT_ELIGIBLE, f"not eligible: {board} {reason}", [], not_counted)


def _match_reason(kernel: KernelRecord, device: Device) -> str:
    source = (
        f"extracted from {kernel.artifact.get('name')}"
        if kernel.artifact
        else "typed in when registered (unverified)"
    )
    return (
        f"release matches {kernel.kernel_release} and build id matches: the device runs "
        f"{normalise_build_id(device.kernel_build_id)}, the vendor's build id is {kernel.build_id} ({source})"
    )


def _with_note(cert: CertRecord, device: Device) -> dict[str, Any]:
    record = {**cert.as_evidence(), "why": "valid certificate for this revision and OS release"}
    if cert.kernel_release != device.kernel_release:
        record["note"] = (
            f"certified with kernel {cert.kernel_release}; the device runs {device.kernel_release}"
        )
    return record
