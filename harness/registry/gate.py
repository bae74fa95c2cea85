"""The registry's front gate: authenticate and bound a request before its body is read.

FastAPI resolves a route's dependencies (the bearer token check among them)
only after it has parsed the body, so on its own an anonymous client could
make the server hold a 30 MB JSON body or spool a 300 MB upload to disk before
hearing 401. This pure ASGI middleware runs first and looks at headers only:

- a request that carries a body (POST, PUT, PATCH, DELETE) needs a valid bearer
  token, checked against the store, and for the routes listed in `_ROLES` the
  right role; otherwise it is answered 401/403 without reading a byte of body;
- every request has a body limit for its route; a declared Content-Length above
  it is answered 413 at once, and a body sent without one is counted while it
  streams and cut off at the limit: 413, and the connection is closed.

Hand-written because Starlette and FastAPI (before its recent `max_body_size`)
have no auth-before-body hook; it stays small and only reads headers. Roles are
still enforced by the routes themselves: this gate only refuses earlier.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.errors import HarnessError

KIB = 1 << 10
MIB = 1 << 20
JSON_BODY_LIMIT = 1 * MIB
# A bundle (harness.registry.submission.MAX_BUNDLE_BYTES) plus multipart framing.
SUBMISSION_BODY_LIMIT = 256 * MIB + 64 * KIB
# A vendor's kernel artifact (harness.kernelid.artifact.MAX_ARTIFACT_BYTES), sent raw.
ARTIFACT_BODY_LIMIT = 512 * MIB
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    roles: tuple[str, ...] | None  # None: any valid token here; the route decides the role
    limit: int


# Checked in order; the first match wins. Routes not listed get any-valid-token and JSON_BODY_LIMIT.
_ROLES: tuple[Rule, ...] = (
    Rule(re.compile(r"^/submissions/?$"), ("lab",), SUBMISSION_BODY_LIMIT),
    Rule(re.compile(r"^/cases/.+/(runs|verification)/?$"), ("lab", "admin"), JSON_BODY_LIMIT),
    Rule(re.compile(r"^/kernels/artifact/?$"), ("admin",), ARTIFACT_BODY_LIMIT),
    Rule(
        re.compile(r"^/(labs|tokens|boards|kernels|cases|certificates/[^/]+/revoke)(/.*)?$"),
        ("admin",),
        JSON_BODY_LIMIT,
    ),
)


def rule_for(path: str) -> Rule:
    for rule in _ROLES:
        if rule.pattern.match(path):
            return rule
    return Rule(re.compile(""), None, JSON_BODY_LIMIT)


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes its limit; FastAPI answers 413.

    An HTTPException (not a RegistryError) because FastAPI re-raises HTTPException
    from body parsing as it is, but turns any other error there into a 400. The answer
    says `Connection: close`, so the server closes the connection after it: without
    that, uvicorn keeps it open and reads (and drops) the rest of the body, however long.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"request body is larger than {limit} bytes for this route",
            headers={"Connection": "close"},
        )


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return ""
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class Gate:
    """ASGI middleware; `authenticate(token) -> role or None` is called in a worker thread."""

    def __init__(self, app: ASGIApp, authenticate: Callable[[str], str | None]) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = rule_for(scope.get("path", ""))
        length = _content_length(scope)
        if length is not None and length < 0:
            await _refuse(send, 400, "the Content-Length header is not a number")
            return
        if scope["method"] in _BODY_METHODS:
            refusal = await self._check_token(scope, rule)
            if refusal is not None:
                await _refuse(send, *refusal)
                return
        if length is not None and length > rule.limit:
            await _refuse(
                send, 413, f"request body is larger than {rule.limit} bytes for this route"
            )
            return
        await self.app(scope, _counting(receive, rule.limit), send)

    async def _check_token(self, scope: Scope, rule: Rule) -> tuple[int, str, bool] | None:
        token = _bearer(scope)
        if token is None:
            return 401, "this request needs a bearer token", True
        if not token:
            return 401, "the Authorization header must be 'Bearer <token>'", True
        try:
            role = await anyio.to_thread.run_sync(self.authenticate, token)
        except HarnessError as exc:
            return 503, str(exc), False
        if role is None:
            return 401, "the bearer token is not valid", True
        if rule.roles is not None and role not in rule.roles:
            return 403, f"a {role} token cannot do this (needs: {', '.join(rule.roles)})", False
        return None


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


async def _refuse(send: Send, status: int, detail: str, challenge: bool = False) -> None:
    """Answer without reading the body; `Connection: close` because the body stays unread."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if challenge:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
