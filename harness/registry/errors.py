"""Registry errors, each with the HTTP status the API answers with.

They are UserErrors so the CLI prints one paragraph and exits 2; the API turns
the same object into `{"detail": ...}` with its status, so both front ends say
the same thing in the same words.
"""

from __future__ import annotations

from harness.errors import UserError


class RegistryError(UserError):
    http_status = 400


class Unauthorized(RegistryError):
    http_status = 401


class Forbidden(RegistryError):
    http_status = 403


class NotFound(RegistryError):
    http_status = 404


class Conflict(RegistryError):
    http_status = 409


class Invalid(RegistryError):
    """Well-formed request the registry will not accept (bad signature, bad field): 422."""

    http_status = 422
