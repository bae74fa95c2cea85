"""The registry's HTTP API (FastAPI; OpenAPI at /openapi.json) and its read-only web page.

Every request is one store call, hence one transaction: a request either
happened completely or not at all. Errors come back as one paragraph in
`detail`, naming the field, with the status the store's error carries.
"""

# No `from __future__ import annotations`: FastAPI must resolve the role aliases defined in create_app.
from collections.abc import Callable
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

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
from harness.registry.store import Principal, Store

_bearer = HTTPBearer(auto_error=False)
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

    name: str = Field(min_length=1, max_length=200)
    public_key: str = Field(min_length=1, max_length=200, description="ed25519:<base64>")
    signature: str = Field(
        min_length=1,
        max_length=200,
        description="base64 ed25519 signature of the name and key by that key (proves the name)",
    )
    fingerprint: str | None = Field(default=None, max_length=200, description="ignored")


class TokenIn(_Body):
    role: Literal["admin", "lab", "reader"]
    label: str = Field(min_length=1, max_length=200)
    lab: str | None = None
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="default: never")


class RotateIn(_Body):
    expires_in_days: int | None = Field(
        default=None, ge=1, le=3650, description="default: the old token's validity period"
    )


class BoardIn(_Body):
    vendor: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    soc: str = Field(default="", max_length=200)
    revisions: list[str] = []


class RevokeIn(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class KernelBoardIn(_Body):
    vendor: str
    model: str
    revision: str | None = Field(default=None, description="omit for every revision")


class KernelIn(_Body):
    kernel_release: str = Field(min_length=1, max_length=200, description="uname -r")
    kernel_version: str = Field(
        default="", max_length=400, description="uname -v, if the build must match exactly"
    )
    build_id: str = Field(min_length=1, max_length=200)
    boards: list[KernelBoardIn] = Field(min_length=1)


class CaseIn(_Body):
    case_id: str = Field(min_length=1, max_length=200)
    customer_ref: str = Field(min_length=1, max_length=400)
    severity: Literal["critical", "high", "medium", "low"]
    subsystem: str = Field(min_length=1, max_length=200)
    summary: str = Field(default="", max_length=10000)
    vendor: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    revision: str = Field(min_length=1, max_length=100)
    os_release: str = Field(default="", max_length=200, description="the customer's device")
    kernel_release: str = Field(default="", max_length=200, description="uname -r")
    kernel_version: str = Field(default="", max_length=400, description="uname -v")
    opened_at: datetime | None = Field(default=None, description="default: now")


class AttachIn(_Body):
    run_id: str = Field(min_length=1, max_length=200)


class VerifyIn(_Body):
    verdict: Literal["resolved", "not-resolved"]
    run_id: str = Field(min_length=1, max_length=200)


# Certificate ids are 63-bit row ids; anything else is refused as a 422 naming the field
# (it used to overflow the database driver: HTTP 500).
CertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="certificate id")]
TokenId = Annotated[int, Path(ge=1, le=2**63 - 1, description="token id")]


def _kernel_board(spec: str, index: int) -> dict[str, str]:
    """VENDOR/MODEL or VENDOR/MODEL@REVISION (the query form of KernelBoardIn)."""
    head, _, revision = spec.partition("@")
    vendor, sep, model = head.partition("/")
    if not sep or not vendor or not model:
        raise Invalid(
            f"field 'board.{index}': {spec!r} must be VENDOR/MODEL or VENDOR/MODEL@REVISION"
        )
    return {"vendor": vendor, "model": model, "revision": revision}


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

    Admin = Annotated[Principal, Depends(require("admin"))]
    Lab = Annotated[Principal, Depends(require("lab"))]
    LabOrAdmin = Annotated[Principal, Depends(require("lab", "admin"))]
    Reader = Annotated[Principal | None, Depends(reader)]

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok", "database": store.dialect}

    # -- labs and tokens (admin)
    @app.post("/labs", status_code=201, tags=["admin"])
    def add_lab(body: LabIn, who: Admin) -> dict[str, Any]:
        """Register a lab from its signed enrolment; the answer holds its submit token (shown once)."""
        token = store.add_lab(body.name, body.public_key, who, signature=body.signature)
        lab = next(lab for lab in store.list_labs() if lab["name"] == body.name)
        return {**lab, "token": token}

    @app.get("/labs", tags=["admin"])
    def list_labs(_: Admin) -> list[dict[str, Any]]:
        return store.list_labs()

    @app.post("/tokens", status_code=201, tags=["admin"])
    def add_token(body: TokenIn, who: Admin) -> dict[str, Any]:
        """A new token; the answer holds the secret (shown once) and the token's record."""
        return store.create_token_record(
            body.role, body.label, body.lab, who, expires_in_days=body.expires_in_days
        )

    @app.get("/tokens", tags=["admin"])
    def list_tokens(_: Admin) -> list[dict[str, Any]]:
        """Every token (never its secret): role, holder, expiry, last use, state."""
        return store.list_tokens()

    @app.post("/tokens/{token_id}/revoke", tags=["admin"])
    def revoke_token(token_id: TokenId, who: Admin) -> dict[str, Any]:
        return store.revoke_token(token_id, who)

    @app.post("/tokens/{token_id}/rotate", status_code=201, tags=["admin"])
    def rotate_token(token_id: TokenId, who: Admin, body: RotateIn | None = None) -> dict[str, Any]:
        """Revoke the token and issue its replacement; the answer holds the new secret."""
        days = body.expires_in_days if body is not None else None
        return store.rotate_token(token_id, who, expires_in_days=days)

    @app.get("/audit", tags=["admin"])
    def audit(_: Admin, limit: int = Query(1000, ge=1, le=100000)) -> list[dict[str, Any]]:
        return store.audit_entries(limit)

    # -- evidence (lab)
    @app.post("/submissions", tags=["lab"])
    def submit(who: Lab, response: Response, bundle: UploadFile = File(...)) -> dict[str, Any]:
        """Upload an evidence bundle; a certified run becomes a certificate. Same run twice = stored once."""
        # The upload is already spooled to a temporary file (past the gate's size limit for
        # this route); the store verifies and stores it from there in pieces.
        result = store.submit_bundle(bundle.file, who)
        response.status_code = 201 if result["status"] == "stored" else 200
        return result

    @app.get("/runs", tags=["read"])
    def list_runs(_: Reader) -> list[dict[str, Any]]:
        return store.list_runs()

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
    def register_board(body: BoardIn, who: Admin) -> dict[str, Any]:
        return store.register_board(body.vendor, body.model, body.soc, body.revisions, who)

    @app.get("/boards", tags=["read"])
    def list_boards(_: Reader) -> list[dict[str, Any]]:
        return store.list_boards()

    @app.get("/certificates", tags=["read"])
    def list_certificates(
        _: Reader,
        vendor: str | None = None,
        model: str | None = None,
        revision: str | None = None,
        os_release: str | None = None,
    ) -> list[dict[str, Any]]:
        return store.list_certificates(vendor, model, revision, os_release)

    @app.get("/certificates/{cert_id}", tags=["read"])
    def get_certificate(cert_id: CertId, _: Reader) -> dict[str, Any]:
        return store.get_certificate(cert_id)

    @app.post("/certificates/{cert_id}/revoke", tags=["admin"])
    def revoke(cert_id: CertId, body: RevokeIn, who: Admin) -> dict[str, Any]:
        return store.revoke_certificate(cert_id, body.reason, who)

    # -- vendor kernels
    @app.post("/kernels", status_code=201, tags=["admin"])
    def register_kernel(body: KernelIn, who: Admin) -> dict[str, Any]:
        boards = [b.model_dump() for b in body.boards]
        return store.register_kernel(
            body.kernel_release, body.kernel_version, body.build_id, boards, who
        )

    @app.post("/kernels/artifact", status_code=201, tags=["admin"])
    async def register_kernel_artifact(
        request: Request,
        who: Admin,
        board: list[str] = Query(min_length=1, description="VENDOR/MODEL[@REVISION], repeatable"),
        name: str = Query("upload", min_length=1, max_length=400, description="file name"),
        kernel_release: str = Query("", max_length=200, description="must match the artifact"),
        kernel_version: str = Query("", max_length=400),
    ) -> dict[str, Any]:
        """Register a vendor kernel from its build artifact (body: the raw .deb, bzImage,
        Image[.gz] or vmlinux). The registry extracts the build id; a malformed, truncated or
        hostile artifact is 422. The body is read only after the token is checked."""
        from harness.kernelid.artifact import MAX_ARTIFACT_BYTES

        boards = [_kernel_board(spec, i) for i, spec in enumerate(board)]
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
            store.register_kernel_artifact,
            bytes(body),
            boards,
            who,
            name=name,
            kernel_release=kernel_release,
            kernel_version=kernel_version,
        )

    @app.get("/kernels", tags=["read"])
    def list_kernels(_: Reader) -> list[dict[str, Any]]:
        return store.list_kernels()

    # -- customer cases
    @app.post("/cases", status_code=201, tags=["admin"])
    def open_case(body: CaseIn, who: Admin) -> dict[str, Any]:
        """Open a case; its initial response target (12 business hours) is computed and stored."""
        return store.open_case(body.model_dump(), who)

    @app.get("/cases", tags=["read"])
    def list_cases(_: Reader) -> list[dict[str, Any]]:
        return store.list_cases()

    @app.post("/cases/{case_id:path}/runs", tags=["lab"])
    def attach(case_id: str, body: AttachIn, who: LabOrAdmin) -> dict[str, Any]:
        return store.attach_run(case_id, body.run_id, who)

    @app.post("/cases/{case_id:path}/verification", tags=["lab"])
    def verify(case_id: str, body: VerifyIn, who: LabOrAdmin) -> dict[str, Any]:
        return store.verify_case(case_id, body.verdict, body.run_id, who)

    @app.get("/cases/{case_id:path}", tags=["read"])
    def get_case(case_id: str, _: Reader) -> dict[str, Any]:
        return store.get_case(case_id)

    # -- eligibility
    @app.get("/eligibility", tags=["read"])
    def eligibility(
        _: Reader,
        vendor: str = Query(min_length=1),
        model: str = Query(min_length=1),
        revision: str = Query(min_length=1),
        os_release: str = Query(min_length=1),
        kernel_release: str = Query(min_length=1),
        kernel_version: str = "",
        kernel_build_id: str = Query(
            "", max_length=200, description="GNU build id of the running kernel (hex)"
        ),
    ) -> dict[str, Any]:
        device = Device(
            vendor, model, revision, os_release, kernel_release, kernel_version, kernel_build_id
        )
        return store.eligibility(device).as_dict()

    # -- read-only web page
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def boards_page(_: Reader) -> str:
        return _templates.get_template("boards.html").render(
            boards=store.list_boards(), version=__version__
        )

    @app.get("/ui/cases", response_class=HTMLResponse, include_in_schema=False)
    def cases_page(_: Reader) -> str:
        return _templates.get_template("cases.html").render(
            cases=store.list_cases(), version=__version__
        )

    @app.get("/ui/eligibility", response_class=HTMLResponse, include_in_schema=False)
    def eligibility_page(
        _: Reader,
        vendor: str = "",
        model: str = "",
        revision: str = "",
        os_release: str = "",
        kernel_release: str = "",
        kernel_build_id: str = Query("", max_length=200),
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
            answer = store.eligibility(
                Device(
                    vendor,
                    model,
                    revision,
                    os_release,
                    kernel_release,
                    kernel_build_id=kernel_build_id,
                )
            ).as_dict()
        form["kernel_build_id"] = kernel_build_id
        asked = any(form.values())
        return _templates.get_template("eligibility.html").render(
            form=form, answer=answer, missing=missing if asked else [], version=__version__
        )

    return app
