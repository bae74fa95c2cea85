"""One registry interface: what a client may ask, whether the registry is a local database or
an HTTP server.

`Registry` is implemented by `LocalRegistry` (harness/registry/local.py: the store on this
machine's database, acting as one principal) and by `HttpRegistry`
(harness/registry/remote.py: the HTTP API, acting as its bearer token's holder), with the
same names, arguments and answers: every answer is the JSON the HTTP API returns for the
same request, because the API itself serves each request through a `LocalRegistry`.
tests/registry/test_registry_contract.py runs the same cases against both, on SQLite and
PostgreSQL. `open_registry` picks one from the command line and the environment, so a lab
switches from its local file to a shared registry by setting HARNESS_REGISTRY_URL alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from harness.registry.config import default_db_url, remote_registry
from harness.registry.eligibility import Device

Record = dict[str, Any]
"""One JSON object as the HTTP API answers it (docs/registry.md lists each one's keys)."""


class Registry(Protocol):
    """The registry's operations for one caller. Errors are the `RegistryError` kinds
    (harness/registry/errors.py); an unreachable registry is an `InfraError`."""

    def close(self) -> None: ...

    # ---- labs and tokens (admin) -------------------------------------------------------

    def add_lab(self, name: str, public_key: str, signature: str | None = None) -> Record:
        """Register a lab from its enrolment; the answer holds its submit token (`token`)."""
        ...

    def list_labs(self) -> list[Record]: ...

    def create_token(
        self, role: str, label: str, lab: str | None = None, expires_in_days: int | None = None
    ) -> Record:
        """A new token's record; `token` holds the secret, shown this once."""
        ...

    def list_tokens(self) -> list[Record]: ...

    def revoke_token(self, token_id: int) -> Record: ...

    def rotate_token(self, token_id: int, expires_in_days: int | None = None) -> Record: ...

    # ---- boards and vendor kernels -----------------------------------------------------

    def register_board(
        self, vendor: str, model: str, soc: str = "", revisions: list[str] | None = None
    ) -> Record: ...

    def list_boards(self) -> list[Record]: ...

    def register_kernel(
        self,
        kernel_release: str,
        kernel_version: str,
        build_id: str,
        boards: list[dict[str, str]],
    ) -> Record:
        """A vendor build whose build id the caller typed in (recorded as unverified)."""
        ...

    def register_kernel_artifact(
        self,
        source: Path | bytes,
        boards: list[dict[str, str]],
        *,
        name: str | None = None,
        kernel_release: str = "",
        kernel_version: str = "",
    ) -> Record:
        """A vendor build from its artifact; the registry extracts the build id itself."""
        ...

    def list_kernels(self) -> list[Record]: ...

    # ---- runs ----------------------------------------------------------------------------

    def submit_bundle(self, data: bytes | BinaryIO) -> Record:
        """Store a signed run (lab callers only); idempotent per lab and run id."""
        ...

    def list_runs(self) -> list[Record]: ...

    def get_bundle(self, run_id: str, lab: str | None = None) -> bytes: ...

    # ---- certificates and eligibility ----------------------------------------------------

    def list_certificates(
        self,
        vendor: str | None = None,
        model: str | None = None,
        revision: str | None = None,
        os_release: str | None = None,
    ) -> list[Record]: ...

    def get_certificate(self, cert_id: int) -> Record: ...

    def revoke_certificate(self, cert_id: int, reason: str) -> Record: ...

    def eligibility(self, device: Device) -> Record:
        """Is `device` eligible for support, and on what evidence (docs/registry.md)?"""
        ...

    # ---- customer cases ------------------------------------------------------------------

    def open_case(self, fields: Mapping[str, Any]) -> Record:
        """Open a case from its fields (case_id, customer_ref, severity, subsystem, summary,
        vendor, model, revision, os_release, kernel_release, kernel_version, opened_at)."""
        ...

    def list_cases(self) -> list[Record]: ...

    def get_case(self, case_id: str) -> Record: ...

    def attach_run(self, case_id: str, run_id: str) -> Record: ...

    def verify_case(self, case_id: str, verdict: str, run_id: str) -> Record: ...

    # ---- audit (admin) -------------------------------------------------------------------

    def audit_entries(self, limit: int = 1000) -> list[Record]: ...


def open_registry(
    db: str | None = None, url: str | None = None, token: str | None = None
) -> Registry:
    """The registry a command talks to: the database `db` (SQLite path URL or PostgreSQL URL),
    else the HTTP registry `url` (or HARNESS_REGISTRY_URL) with `token` (or
    HARNESS_REGISTRY_TOKEN), else this machine's local registry file. A local registry is
    used as its administrator (the person at this machine owns the file)."""
    configured = remote_registry()
    if db is None and (url or configured):
        from harness.registry.remote import HttpRegistry

        if token is None:
            token = configured.token if configured else ""
        return HttpRegistry(url or configured.url, token)  # type: ignore[union-attr]
    from harness.registry.local import LocalRegistry
    from harness.registry.store import Store

    return LocalRegistry(Store(db or default_db_url()), owns_store=True)
