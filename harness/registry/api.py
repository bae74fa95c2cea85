"""The registry's HTTP API (FastAPI; OpenAPI at /openapi.json) and its read-only web page.

Every request is one store call, hence one transaction: a request either
happened completely or not at all. Errors come back as one paragraph in
`detail`, naming the field, with the status the store's error carries.
"""

# No `from __future__ import annotations`: FastAPI must resolve the role aliases defined in create_app.
from collections.abc import Callable
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Depends, FastAPI, File, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field

from harness import __version__
from harness.errors import InfraError, UserError
from harness.registry.eligibility import Device
from harness.registry.errors import Forbidden, Invalid, RegistryError, Unauthorized
from harness.registry.gate import Gate
from harness.registry.interface import Record
from harness.registry.local import LocalRegistry
from harness.registry.rules import (
    EXPIRY_DAYS,
    MAX_ROW_ID,
    NAME_MAX,
    REASON_MAX,
    REVISION_MAX,
    SUMMARY_MAX,
    TEXT_MAX,
    CaseVerdict,
    Role,
    Severity,
    board_spec,
)
from harness.registry.store import Principal, Store

_bearer = HTTPBearer(auto_error=False)
# Who reads a registry with public reads and no token (reads need no actor).
ANONYMOUS = Principal(role="reader", label="anonymous")
# A repro report holds board output that a customer's case controls: never let it run script.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_templates = Environment(
    loader=FileSystemLoader(FilePath(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabIn(_Body):
    """A lab's enrolment: the output of `harness registry labs self --json` on the lab."""

    name: str = Field(min_length=1, max_length=NAME_MAX)
    public_key: str = Field(min_length=1, max_length=NAME_MAX, description="ed25519:<base64>")
    signature: str = Field(
        min_length=1,
        max_length=NAME_MAX,
        description="base64 ed25519 signature of the name and key by that key (proves the name)",
    )
    fingerprint: str | None = Field(default=None, max_length=NAME_MAX, description="ignored")


class TokenIn(_Body):
    role: Role
    label: str = Field(min_length=1, max_length=NAME_MAX)
    lab: str | None = None
    expires_in_days: int | None = Field(
        default=None, ge=EXPIRY_DAYS[0], le=EXPIRY_DAYS[1], description="default: never"
    )


class RotateIn(_Body):
    expires_in_days: int | None = Field(
        default=None,
        ge=EXPIRY_DAYS[0],
        le=EXPIRY_DAYS[1],
        description="default: the old token's validity period",
    )


class BoardIn(_Body):
    vendor: str = Field(min_length=1, max_length=NAME_MAX)
    model: str = Field(min_length=1, max_length=NAME_MAX)
    soc: str = Field(default="", max_length=NAME_MAX)
    revisions: list[str] = []


class RevokeIn(_Body):
    reason: str = Field(min_length=1, max_length=REASON_MAX)


class KernelBoardIn(_Body):
    vendor: str
    model: str
    revision: str | None = Field(default=None, description="omit for every revision")


class KernelIn(_Body):
    kernel_release: str = Field(min_length=1, max_length=NAME_MAX, description="uname -r")
    kernel_version: str = Field(
        default="", max_length=TEXT_MAX, description="uname -v, if the build must match exactly"
    )
    build_id: str = Field(min_length=1, max_length=NAME_MAX)
    boards: list[KernelBoardIn] = Field(min_length=1)


class CaseIn(_Body):
    case_id: str = Field(min_length=1, max_length=NAME_MAX)
    customer_ref: str = Field(min_length=1, max_length=TEXT_MAX)
    severity: Severity
    subsystem: str = Field(min_length=1, max_length=NAME_MAX)
    summary: str = Field(default="", max_length=SUMMARY_MAX)
    vendor: str = Field(min_length=1, max_length=NAME_MAX)
    model: str = Field(min_length=1, max_length=NAME_MAX)
    revision: str = Field(min_length=1, max_length=REVISION_MAX)
    os_release: str = Field(default="", max_length=NAME_MAX, description="the customer's device")
    kernel_release: str = Field(default="", max_length=NAME_MAX, description="uname -r")
    kernel_version: str = Field(default="", max_length=TEXT_MAX, description="uname -v")
    opened_at: datetime | None = Field(default=None, description="default: now")


class AttachIn(_Body):
    run_id: str = Field(min_length=1, max_length=NAME_MAX)


class VerifyIn(_Body):
    verdict: CaseVerdict
    run_id: str = Field(min_length=1, max_length=NAME_MAX)


# Certificate ids are 63-bit row ids; anything else is refused as a 422 naming the field
# (it used to overflow the database driver: HTTP 500).
CertId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="certificate id")]
TokenId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="token id")]


def _field_error(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    where = ".".join(loc) or "request body"
    return f"field '{where}': {first.get('msg', 'invalid value')}"


def create_app(store: Store, public_reads: bool = True) -> FastAPI:
    """The registry app over `store`. With `public_reads` off, reads need a reader (or higher) token."""
    app = FastAPI(
        title="Board certification registry",
        version=__version__,
        description="Certificates, vendor kernels, customer cases and eligibility answers backed by signed evidence.",
    )

    def role_of(token: str) -> str | None:
        principal = store.authenticate(token)
        return principal.role if principal else None

    app.add_middleware(Gate, authenticate=role_of)

    @app.exception_handler(RegistryError)
    async def _registry_error(_: Request, exc: RegistryError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.http_status, headers=headers)

    @app.exception_handler(UserError)
    async def _user_error(_: Request, exc: UserError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(InfraError)
    async def _infra_error(_: Request, exc: InfraError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _field_error(exc)}, status_code=422)

    def principal_of(credentials: HTTPAuthorizationCredentials | None) -> Principal | None:
        if credentials is None:
            return None
        principal = store.authenticate(credentials.credentials)
        if principal is None:
            raise Unauthorized("the bearer token is not valid")
        return principal

    def require(*roles: str) -> Callable[..., Principal]:
        def dependency(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        ) -> Principal:
            principal = principal_of(credentials)
            if principal is None:
                raise Unauthorized("this request needs a bearer token")
            if principal.role not in roles:
                raise Forbidden(
                    f"a {principal.role} token cannot do this (needs: {', '.join(roles)})"
                )
            return principal

        return dependency

    def reader(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal | None:
        principal = principal_of(credentials)
        if principal is None and not public_reads:
            raise Unauthorized("this registry needs a bearer token for reads")
        return principal

    def calls_as(who: Callable[..., Principal | None]) -> Callable[..., LocalRegistry]:
        """The registry interface bound to the request's caller: each route is one call on it,
        so the HTTP API answers exactly what a `LocalRegistry` answers (harness/registry/local.py)."""

        def bind(principal: Annotated[Principal | None, Depends(who)]) -> LocalRegistry:
            return LocalRegistry(store, principal or ANONYMOUS)

        return bind

    Admin = Annotated[LocalRegistry, Depends(calls_as(require("admin")))]
    Lab = Annotated[LocalRegistry, Depends(calls_as(require("lab")))]
    LabOrAdmin = Annotated[LocalRegistry, Depends(calls_as(require("lab", "admin")))]
    Reader = Annotated[LocalRegistry, Depends(calls_as(reader))]

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok", "database": store.dialect}

    # -- labs and tokens (admin)
    @app.post("/labs", status_code=201, tags=["admin"])
    def add_lab(body: LabIn, registry: Admin) -> Record:
        """Register a lab from its signed enrolment; the answer holds its submit token (shown once)."""
        return registry.add_lab(body.name, body.public_key, body.signature)

    @app.get("/labs", tags=["admin"])
    def list_labs(registry: Admin) -> list[Record]:
        return registry.list_labs()

    @app.post("/tokens", status_code=201, tags=["admin"])
    def add_token(body: TokenIn, registry: Admin) -> Record:
        """A new token; the answer holds the secret (shown once) and the token's record."""
        return registry.create_token(body.role, body.label, body.lab, body.expires_in_days)

    @app.get("/tokens", tags=["admin"])
    def list_tokens(registry: Admin) -> list[Record]:
        """Every token (never its secret): role, holder, expiry, last use, state."""
        return registry.list_tokens()

    @app.post("/tokens/{token_id}/revoke", tags=["admin"])
    def revoke_token(token_id: TokenId, registry: Admin) -> Record:
        return registry.revoke_token(token_id)

    @app.post("/tokens/{token_id}/rotate", status_code=201, tags=["admin"])
    def rotate_token(token_id: TokenId, registry: Admin, body: RotateIn | None = None) -> Record:
        """Revoke the token and issue its replacement; the answer holds the new secret."""
        return registry.rotate_token(token_id, body.expires_in_days if body is not None else None)

    @app.get("/audit", tags=["admin"])
    def audit(registry: Admin, limit: int = Query(1000, ge=1, le=100000)) -> list[Record]:
        return registry.audit_entries(limit)

    # -- evidence (lab)
    @app.post("/submissions", tags=["lab"])
    def submit(registry: Lab, response: Response, bundle: UploadFile = File(...)) -> Record:
        """Upload an evidence bundle; a certified run becomes a certificate. Same run twice = stored once."""
        # The upload is already spooled to a temporary file (past the gate's size limit for
        # this route); the store verifies and stores it from there in pieces.
        result = registry.submit_bundle(bundle.file)
        response.status_code = 201 if result["status"] == "stored" else 200
        return result

    @app.get("/runs", tags=["read"])
    def list_runs(registry: Reader) -> list[Record]:
        return registry.list_runs()

    @app.get("/runs/{run_id:path}/report", tags=["read"], response_class=HTMLResponse)
    def get_report(run_id: str, _: Reader) -> Response:
        """The HTML report of a stored repro run, from its signed bundle; no script may run."""
        return Response(
            store.run_report(run_id),
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Security-Policy": REPORT_CSP,
                "X-Content-Type-Options": "nosniff",
            },
        )

    @app.get("/runs/{run_id:path}/bundle", tags=["read"], response_class=Response)
    def get_bundle(
        run_id: str,
        _: Reader,
        lab: str | None = Query(None, description="the lab, when labs used the same run id"),
    ) -> Response:
        """The bundle as it was uploaded, streamed in pieces."""
        run_pk, size = store.bundle_info(run_id, lab)
        return StreamingResponse(
            store.iter_bundle(run_pk),
            media_type="application/x-tar",
            headers={"Content-Length": str(size)},
        )

    # -- boards and certificates
    @app.post("/boards", status_code=201, tags=["admin"])
    def register_board(body: BoardIn, registry: Admin) -> Record:
        return registry.register_board(body.vendor, body.model, body.soc, body.revisions)

    @app.get("/boards", tags=["read"])
    def list_boards(registry: Reader) -> list[Record]:
        return registry.list_boards()

    @app.get("/certificates", tags=["read"])
    def list_certificates(
        registry: Reader,
        vendor: str | None = None,
        model: str | None = None,
        revision: str | None = None,
        os_release: str | None = None,
    ) -> list[Record]:
        return registry.list_certificates(vendor, model, revision, os_release)

    @app.get("/certificates/{cert_id}", tags=["read"])
    def get_certificate(cert_id: CertId, registry: Reader) -> Record:
        return registry.get_certificate(cert_id)

    @app.post("/certificates/{cert_id}/revoke", tags=["admin"])
    def revoke(cert_id: CertId, body: RevokeIn, registry: Admin) -> Record:
        return registry.revoke_certificate(cert_id, body.reason)

    # -- vendor kernels
    @app.post("/kernels", status_code=201, tags=["admin"])
    def register_kernel(body: KernelIn, registry: Admin) -> Record:
        boards = [b.model_dump() for b in body.boards]
        return registry.register_kernel(
            body.kernel_release, body.kernel_version, body.build_id, boards
        )

    @app.post("/kernels/artifact", status_code=201, tags=["admin"])
    async def register_kernel_artifact(
        request: Request,
        registry: Admin,
        board: list[str] = Query(min_length=1, description="VENDOR/MODEL[@REVISION], repeatable"),
        name: str = Query("upload", min_length=1, max_length=TEXT_MAX, description="file name"),
        kernel_release: str = Query("", max_length=NAME_MAX, description="must match the artifact"),
        kernel_version: str = Query("", max_length=TEXT_MAX),
    ) -> Record:
        """Register a vendor kernel from its build artifact (body: the raw .deb, bzImage,
        Image[.gz] or vmlinux). The registry extracts the build id; a malformed, truncated or
        hostile artifact is 422. The body is read only after the token is checked."""
        from harness.kernelid.artifact import MAX_ARTIFACT_BYTES

        boards = [board_spec(spec, f"board.{i}") for i, spec in enumerate(board)]
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_ARTIFACT_BYTES):
            raise Invalid(f"field 'body': a kernel artifact is at most {MAX_ARTIFACT_BYTES} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_ARTIFACT_BYTES:
                raise Invalid(
                    f"field 'body': a kernel artifact is at most {MAX_ARTIFACT_BYTES} bytes"
                )
        if not body:
            raise Invalid("field 'body': the kernel artifact is empty")
        return await run_in_threadpool(
            registry.register_kernel_artifact,
            bytes(body),
            boards,
            name=name,
            kernel_release=kernel_release,
            kernel_version=kernel_version,
        )

    @app.get("/kernels", tags=["read"])
    def list_kernels(registry: Reader) -> list[Record]:
        return registry.list_kernels()

    # -- customer cases
    @app.post("/cases", status_code=201, tags=["admin"])
    def open_case(body: CaseIn, registry: Admin) -> Record:
        """Open a case; its initial response target (12 business hours) is computed and stored."""
        return registry.open_case(body.model_dump())

    @app.get("/cases", tags=["read"])
    def list_cases(registry: Reader) -> list[Record]:
        return registry.list_cases()

    @app.post("/cases/{case_id:path}/runs", tags=["lab"])
    def attach(case_id: str, body: AttachIn, registry: LabOrAdmin) -> Record:
        return registry.attach_run(case_id, body.run_id)

    @app.post("/cases/{case_id:path}/verification", tags=["lab"])
    def verify(case_id: str, body: VerifyIn, registry: LabOrAdmin) -> Record:
        return registry.verify_case(case_id, body.verdict, body.run_id)

    @app.get("/cases/{case_id:path}", tags=["read"])
    def get_case(case_id: str, registry: Reader) -> Record:
        return registry.get_case(case_id)

    # -- eligibility
    @app.get("/eligibility", tags=["read"])
    def eligibility(
        registry: Reader,
        vendor: str = Query(min_length=1),
        model: str = Query(min_length=1),
        revision: str = Query(min_length=1),
        os_release: str = Query(min_length=1),
        kernel_release: str = Query(min_length=1),
        kernel_version: str = "",
        kernel_build_id: str = Query(
            "", max_length=NAME_MAX, description="GNU build id of the running kernel (hex)"
        ),
    ) -> Record:
        device = Device(
            vendor, model, revision, os_release, kernel_release, kernel_version, kernel_build_id
        )
        return registry.eligibility(device)

    # -- read-only web page
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def boards_page(registry: Reader) -> str:
        return _templates.get_template("boards.html").render(
            boards=registry.list_boards(), version=__version__
        )

    @app.get("/ui/cases", response_class=HTMLResponse, include_in_schema=False)
    def cases_page(registry: Reader) -> str:
        return _templates.get_template("cases.html").render(
            cases=registry.list_cases(), version=__version__
        )

    @app.get("/ui/eligibility", response_class=HTMLResponse, include_in_schema=False)
    def eligibility_page(
        registry: Reader,
        vendor: str = "",
        model: str = "",
        revision: str = "",
        os_release: str = "",
        kernel_release: str = "",
        kernel_build_id: str = Query("", max_length=NAME_MAX),
    ) -> str:
        form = {
            "vendor": vendor,
            "model": model,
            "revision": revision,
            "os_release": os_release,
            "kernel_release": kernel_release,
        }
        answer, missing = None, [k for k, v in form.items() if not v.strip()]
        if not missing:
            answer = registry.eligibility(
                Device(
                    vendor,
                    model,
                    revision,
                    os_release,
                    kernel_release,
                    kernel_build_id=kernel_build_id,
                )
            )
        form["kernel_build_id"] = kernel_build_id
        asked = any(form.values())
        return _templates.get_template("eligibility.html").render(
            form=form, answer=answer, missing=missing if asked else [], version=__version__
        )

    return app
