"""The registry on this machine's database: the `Registry` interface over a `Store`, as one caller.

The store's writes take the caller (`actor`, for permissions and the audit log); a
`LocalRegistry` binds one, so its methods are exactly the interface's. The HTTP API serves
every request through a `LocalRegistry` bound to the request's token holder, so the local
backend and the HTTP client answer each call with the same JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from harness.registry.eligibility import Device
from harness.registry.interface import Record
from harness.registry.store import LOCAL_ADMIN, Principal, Store


class LocalRegistry:
    """`Registry` over `store`, acting as `actor` (the local administrator by default)."""

    def __init__(self, store: Store, actor: Principal = LOCAL_ADMIN, owns_store: bool = False):
        self.store = store
        self.actor = actor
        self.owns_store = owns_store

    def close(self) -> None:
        if self.owns_store:
            self.store.close()

    # ---- labs and tokens -----------------------------------------------------------------

    def add_lab(self, name: str, public_key: str, signature: str | None = None) -> Record:
        token = self.store.add_lab(name, public_key, self.actor, signature=signature)
        return {**self.store.get_lab(name), "token": token}

    def list_labs(self) -> list[Record]:
        return self.store.list_labs()

    def create_token(
        self, role: str, label: str, lab: str | None = None, expires_in_days: int | None = None
    ) -> Record:
        return self.store.create_token_record(
            role, label, lab, self.actor, expires_in_days=expires_in_days
        )

    def list_tokens(self) -> list[Record]:
        return self.store.list_tokens()

    def revoke_token(self, token_id: int) -> Record:
        return self.store.revoke_token(token_id, self.actor)

    def rotate_token(self, token_id: int, expires_in_days: int | None = None) -> Record:
        return self.store.rotate_token(token_id, self.actor, expires_in_days=expires_in_days)

    # ---- boards and vendor kernels -------------------------------------------------------

    def register_board(
        self, vendor: str, model: str, soc: str = "", revisions: list[str] | None = None
    ) -> Record:
        return self.store.register_board(vendor, model, soc, revisions or [], self.actor)

    def list_boards(self) -> list[Record]:
        return self.store.list_boards()

    def register_kernel(
        self,
        kernel_release: str,
        kernel_version: str,
        build_id: str,
        boards: list[dict[str, str]],
    ) -> Record:
        return self.store.register_kernel(
            kernel_release, kernel_version, build_id, boards, self.actor
        )

    def register_kernel_artifact(
        self,
        source: Path | bytes,
        boards: list[dict[str, str]],
        *,
        name: str | None = None,
        kernel_release: str = "",
        kernel_version: str = "",
    ) -> Record:
        return self.store.register_kernel_artifact(
            source,
            boards,
            self.actor,
            name=name,
            kernel_release=kernel_release,
            kernel_version=kernel_version,
        )

    def list_kernels(self) -> list[Record]:
        return self.store.list_kernels()

    # ---- runs ----------------------------------------------------------------------------

    def submit_bundle(self, data: bytes | BinaryIO) -> Record:
        return self.store.submit_bundle(data, self.actor)

    def list_runs(self) -> list[Record]:
        return self.store.list_runs()

    def get_bundle(self, run_id: str, lab: str | None = None) -> bytes:
        return self.store.get_bundle(run_id, lab)

    # ---- certificates and eligibility ----------------------------------------------------

    def list_certificates(
        self,
        vendor: str | None = None,
        model: str | None = None,
        revision: str | None = None,
        os_release: str | None = None,
    ) -> list[Record]:
        return self.store.list_certificates(vendor, model, revision, os_release)

    def get_certificate(self, cert_id: int) -> Record:
        return self.store.get_certificate(cert_id)

    def revoke_certificate(self, cert_id: int, reason: str) -> Record:
        return self.store.revoke_certificate(cert_id, reason, self.actor)

    def eligibility(self, device: Device) -> Record:
        return self.store.eligibility(device).as_dict()

    # ---- customer cases ------------------------------------------------------------------

    def open_case(self, fields: Mapping[str, Any]) -> Record:
        return self.store.open_case(dict(fields), self.actor)

    def list_cases(self) -> list[Record]:
        return self.store.list_cases()

    def get_case(self, case_id: str) -> Record:
        return self.store.get_case(case_id)

    def attach_run(self, case_id: str, run_id: str) -> Record:
        return self.store.attach_run(case_id, run_id, self.actor)

    def verify_case(self, case_id: str, verdict: str, run_id: str) -> Record:
        return self.store.verify_case(case_id, verdict, run_id, self.actor)

    # ---- audit ---------------------------------------------------------------------------

    def audit_entries(self, limit: int = 1000) -> list[Record]:
        return self.store.audit_entries(limit)
