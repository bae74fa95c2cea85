"""The registry over HTTP: the `Registry` interface (harness/registry/interface.py) as a client
of the registry's HTTP API, acting as the holder of its bearer token.

HTTP errors become the same RegistryError kinds the store raises; an unreachable
registry is an InfraError (exit 3), never a silent success.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from harness.registry.interface import Record

_BY_STATUS: dict[int, type[RegistryError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


class HttpRegistry:
    """`Registry` over the HTTP API at `url`, with bearer `token` ("" for public reads)."""

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

    # ---- labs and tokens -----------------------------------------------------------------

    def add_lab(self, name: str, public_key: str, signature: str | None = None) -> Record:
        body = {"name": name, "public_key": public_key, "signature": signature or ""}
        return self._call("POST", "/labs", json=body)

    def list_labs(self) -> list[Record]:
        return self._call("GET", "/labs")

    def create_token(
        self, role: str, label: str, lab: str | None = None, expires_in_days: int | None = None
    ) -> Record:
        body = {"role": role, "label": label, "lab": lab, "expires_in_days": expires_in_days}
        return self._call("POST", "/tokens", json=body)

    def list_tokens(self) -> list[Record]:
        return self._call("GET", "/tokens")

    def revoke_token(self, token_id: int) -> Record:
        return self._call("POST", f"/tokens/{token_id}/revoke")

    def rotate_token(self, token_id: int, expires_in_days: int | None = None) -> Record:
        return self._call(
            "POST", f"/tokens/{token_id}/rotate", json={"expires_in_days": expires_in_days}
        )

    # ---- boards and vendor kernels -------------------------------------------------------

    def register_board(
        self, vendor: str, model: str, soc: str = "", revisions: list[str] | None = None
    ) -> Record:
        body = {"vendor": vendor, "model": model, "soc": soc, "revisions": revisions or []}
        return self._call("POST", "/boards", json=body)

    def list_boards(self) -> list[Record]:
        return self._call("GET", "/boards")

    def register_kernel(
        self,
        kernel_release: str,
        kernel_version: str,
        build_id: str,
        boards: list[dict[str, str]],
    ) -> Record:
        body = {
            "kernel_release": kernel_release,
            "kernel_version": kernel_version,
            "build_id": build_id,
            "boards": boards,
        }
        return self._call("POST", "/kernels", json=body)

    def register_kernel_artifact(
        self,
        source: Path | bytes,
        boards: list[dict[str, str]],
        *,
        name: str | None = None,
        kernel_release: str = "",
        kernel_version: str = "",
    ) -> Record:
        """Upload a kernel artifact (streamed from a file); the registry extracts its build id."""
        params: list[tuple[str, str]] = [
            (
                "board",
                f"{b['vendor']}/{b['model']}" + (f"@{b['revision']}" if b.get("revision") else ""),
            )
            for b in boards
        ]
        params += [("name", name or (source.name if isinstance(source, Path) else "upload"))]
        if kernel_release:
            params.append(("kernel_release", kernel_release))
        if kernel_version:
            params.append(("kernel_version", kernel_version))
        if isinstance(source, bytes):
            return self._upload_artifact(params, source, len(source))
        with source.open("rb") as handle:
            return self._upload_artifact(params, handle, source.stat().st_size)

    def _upload_artifact(
        self, params: list[tuple[str, str]], content: bytes | BinaryIO, size: int
    ) -> Record:
        return self._call(
            "POST",
            "/kernels/artifact",
            params=params,
            content=content,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            timeout=300.0,
        )

    def list_kernels(self) -> list[Record]:
        return self._call("GET", "/kernels")

    # ---- runs ----------------------------------------------------------------------------

    def submit_bundle(self, data: bytes | BinaryIO) -> Record:
        """Upload a bundle (bytes or an open file, which httpx streams)."""
        return self._call(
            "POST", "/submissions", files={"bundle": ("bundle.tar", data, "application/x-tar")}
        )

    def list_runs(self) -> list[Record]:
        return self._call("GET", "/runs")

    def get_bundle(self, run_id: str, lab: str | None = None) -> bytes:
        params = {"lab": lab} if lab is not None else {}
        return self._call("GET", f"/runs/{quote(run_id, safe='')}/bundle", params=params)

    # ---- certificates and eligibility ----------------------------------------------------

    def list_certificates(
        self,
        vendor: str | None = None,
        model: str | None = None,
        revision: str | None = None,
        os_release: str | None = None,
    ) -> list[Record]:
        filters = {"vendor": vendor, "model": model, "revision": revision, "os_release": os_release}
        return self._call(
            "GET", "/certificates", params={k: v for k, v in filters.items() if v is not None}
        )

    def get_certificate(self, cert_id: int) -> Record:
        return self._call("GET", f"/certificates/{cert_id}")

    def revoke_certificate(self, cert_id: int, reason: str) -> Record:
        return self._call("POST", f"/certificates/{cert_id}/revoke", json={"reason": reason})

    def eligibility(self, device: Device) -> Record:
        return self._call("GET", "/eligibility", params=device.__dict__)

    # ---- customer cases ------------------------------------------------------------------

    def open_case(self, fields: Mapping[str, Any]) -> Record:
        body = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in fields.items()
            if v is not None
        }
        return self._call("POST", "/cases", json=body)

    def list_cases(self) -> list[Record]:
        return self._call("GET", "/cases")

    def get_case(self, case_id: str) -> Record:
        return self._call("GET", f"/cases/{quote(case_id, safe='')}")

    def attach_run(self, case_id: str, run_id: str) -> Record:
        return self._call("POST", f"/cases/{quote(case_id, safe='')}/runs", json={"run_id": run_id})

    def verify_case(self, case_id: str, verdict: str, run_id: str) -> Record:
        return self._call(
            "POST",
            f"/cases/{quote(case_id, safe='')}/verification",
            json={"verdict": verdict, "run_id": run_id},
        )

    # ---- audit ---------------------------------------------------------------------------

    def audit_entries(self, limit: int = 1000) -> list[Record]:
        return self._call("GET", "/audit", params={"limit": limit})
