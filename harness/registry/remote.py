"""The registry over HTTP, with the same method names as the local Store.

The CLI and the client speak to either through one interface, so a lab can
switch from the local SQLite file to a shared registry by setting
HARNESS_REGISTRY_URL without anything else changing. HTTP errors become the
same RegistryError kinds the store raises; an unreachable registry is an
InfraError (exit 3), never a silent success.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from harness.errors import InfraError
from harness.registry.eligibility import Device
from harness.registry.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RegistryError,
    Unauthorized,
)

_BY_STATUS: dict[int, type[RegistryError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


class RemoteStore:
    def __init__(self, url: str, token: str = "", timeout: float = 30.0):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise InfraError(f"registry {self.url} unreachable: {exc}") from None
        if response.status_code >= 500:
            raise InfraError(
                f"registry {self.url} failed ({response.status_code}): {response.text[:500]}"
            )
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise _BY_STATUS.get(response.status_code, RegistryError)(
                f"registry refused the request: {detail}"
            )
        return (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else response.content
        )

    def submit_bundle_bytes(self, data: bytes | BinaryIO) -> dict[str, Any]:
        """Upload a bundle (bytes or an open file, which httpx streams)."""
        return self._call(
            "POST", "/submissions", files={"bundle": ("bundle.tar", data, "application/x-tar")}
        )

    def list_boards(self) -> list[dict[str, Any]]:
        return self._call("GET", "/boards")

    def register_board(
        self, vendor: str, model: str, soc: str, revisions: list[str]
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "/boards",
            json={"vendor": vendor, "model": model, "soc": soc, "revisions": revisions},
        )

    def list_certificates(self, **filters: str | None) -> list[dict[str, Any]]:
        return self._call(
            "GET", "/certificates", params={k: v for k, v in filters.items() if v is not None}
        )

    def revoke_certificate(self, cert_id: int, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/certificates/{cert_id}/revoke", json={"reason": reason})

    def eligibility(self, device: Device) -> dict[str, Any]:
        return self._call("GET", "/eligibility", params=device.__dict__)

    def list_kernels(self) -> list[dict[str, Any]]:
        return self._call("GET", "/kernels")

    def register_kernel(
        self, release: str, version: str, build_id: str, boards: list[dict[str, str]]
    ) -> dict[str, Any]:
        body = {
            "kernel_release": release,
            "kernel_version": version,
            "build_id": build_id,
            "boards": boards,
        }
        return self._call("POST", "/kernels", json=body)

    def register_kernel_artifact(
        self,
        source: Path,
        boards: list[dict[str, str]],
        *,
        name: str | None = None,
        kernel_release: str = "",
        kernel_version: str = "",
    ) -> dict[str, Any]:
        """Upload a kernel artifact; the registry extracts its build id itself."""
        params: list[tuple[str, str]] = [
            (
                "board",
                f"{b['vendor']}/{b['model']}" + (f"@{b['revision']}" if b.get("revision") else ""),
            )
            for b in boards
        ]
        params += [("name", name or source.name)]
        if kernel_release:
            params.append(("kernel_release", kernel_release))
        if kernel_version:
            params.append(("kernel_version", kernel_version))
        with source.open("rb") as handle:
            return self._call(
                "POST",
                "/kernels/artifact",
                params=params,
                content=handle,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(source.stat().st_size),
                },
                timeout=300.0,
            )

    def open_case(self, fields: dict[str, Any]) -> dict[str, Any]:
        body = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in fields.items()
            if v is not None
        }
        return self._call("POST", "/cases", json=body)

    def list_cases(self) -> list[dict[str, Any]]:
        return self._call("GET", "/cases")

    def get_case(self, case_id: str) -> dict[str, Any]:
        return self._call("GET", f"/cases/{quote(case_id, safe='')}")

    def attach_run(self, case_id: str, run_id: str) -> dict[str, Any]:
        return self._call("POST", f"/cases/{quote(case_id, safe='')}/runs", json={"run_id": run_id})

    def verify_case(self, case_id: str, verdict: str, run_id: str) -> dict[str, Any]:
        return self._call(
            "POST",
            f"/cases/{quote(case_id, safe='')}/verification",
            json={"verdict": verdict, "run_id": run_id},
        )

    def add_lab(self, name: str, public_key: str, signature: str | None = None) -> dict[str, Any]:
        body = {"name": name, "public_key": public_key, "signature": signature or ""}
        return self._call("POST", "/labs", json=body)

    def list_runs(self) -> list[dict[str, Any]]:
        return self._call("GET", "/runs")

    def audit_entries(self, limit: int = 1000) -> list[dict[str, Any]]:
        return self._call("GET", "/audit", params={"limit": limit})

    def list_labs(self) -> list[dict[str, Any]]:
        return self._call("GET", "/labs")

    def create_token_record(
        self, role: str, label: str, lab: str | None = None, expires_in_days: int | None = None
    ) -> dict[str, Any]:
        body = {"role": role, "label": label, "lab": lab, "expires_in_days": expires_in_days}
        return self._call("POST", "/tokens", json=body)

    def list_tokens(self) -> list[dict[str, Any]]:
        return self._call("GET", "/tokens")

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        return self._call("POST", f"/tokens/{token_id}/revoke")

    def rotate_token(self, token_id: int, expires_in_days: int | None = None) -> dict[str, Any]:
        return self._call(
            "POST", f"/tokens/{token_id}/rotate", json={"expires_in_days": expires_in_days}
        )
