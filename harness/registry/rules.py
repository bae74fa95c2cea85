"""The registry's input rules, in one place: which values a field may take and how long it may be.

The HTTP API's request bodies (api.py), the CLI's options (cli.py) and the store's own
checks (store/) all read them from here, so a limit or an allowed value cannot differ
between the front ends. The store checks every write itself (a local CLI call never goes
through the API), with the same words the API's validation uses: `field 'x' ...`.
Which characters a text field may hold is harness/registry/textrules.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from harness.errors import Location
from harness.registry.business_hours import RESPONSE_TARGET
from harness.registry.errors import Invalid, NotFound
from harness.registry.textrules import check_text

Role = Literal["admin", "lab", "reader"]
Severity = Literal["critical", "high", "medium", "low"]
CaseVerdict = Literal["resolved", "not-resolved"]
ROLES: tuple[str, ...] = get_args(Role)
SEVERITIES: tuple[str, ...] = get_args(Severity)  # a case file's severity N is SEVERITIES[N-1]
CASE_VERDICTS: tuple[str, ...] = get_args(CaseVerdict)

# Lengths in characters.
NAME_MAX = 200  # vendor, model, SoC, case id, subsystem, lab, label, release, build id
REVISION_MAX = 100  # a board revision
TEXT_MAX = 400  # a customer reference, a kernel version (uname -v), an artifact's file name
REASON_MAX = 2000  # why a certificate was revoked
SUMMARY_MAX = 10000  # a case summary
# Free text that may span lines; every other field is a name and must be one printable line.
MULTILINE_FIELDS = frozenset({"summary", "reason"})

EXPIRY_DAYS = (1, 3650)  # a token's validity, in days
MAX_ROW_ID = 2**63 - 1  # certificate and token ids are 63-bit row ids
RESPONSE_BUSINESS_HOURS = RESPONSE_TARGET // timedelta(hours=1)  # a case's initial response
# A case's opening time: wide enough for imported history, narrow enough that the
# response target (12 business hours later) always fits in a datetime.
OPENED_AT_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def text(value: Any, name: str, *, allow_empty: bool = False, limit: int = TEXT_MAX) -> str:
    """Type, emptiness, length and characters (harness.registry.textrules) of a text field."""
    if not isinstance(value, str):
        raise Invalid(f"field '{name}' must be a string", Location(field=name))
    if not allow_empty and not value.strip():
        raise Invalid(f"field '{name}' must not be empty", Location(field=name))
    if len(value) > limit:
        raise Invalid(f"field '{name}' is longer than {limit} characters", Location(field=name))
    problem = check_text(value, multiline=name in MULTILINE_FIELDS)
    if problem:
        raise Invalid(f"field '{name}' {problem}", Location(field=name))
    return value


def one_of(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise Invalid(f"field '{name}' must be one of {', '.join(allowed)}", Location(field=name))
    return str(value)


def row_id(value: int, name: str) -> int:
    """A row id from a URL: anything outside a 63-bit key cannot exist (and would overflow the driver)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ROW_ID:
        raise NotFound(f"{name.replace('_', ' ')} {value} does not exist", Location(field=name))
    return value


def validity(days: int | None) -> timedelta | None:
    """A token's validity period from `expires_in_days` (None: until revoked)."""
    if days is None:
        return None
    low, high = EXPIRY_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
        raise Invalid(
            f"field 'expires_in_days' must be a whole number of days from {low} to {high}",
            Location(field="expires_in_days"),
        )
    return timedelta(days=days)


def opened_at(value: Any) -> datetime:
    """A case's opening time: aware, and inside OPENED_AT_RANGE."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Invalid(
            "field 'opened_at' must be an ISO 8601 time with a time zone",
            Location(field="opened_at"),
        )
    try:
        in_range = OPENED_AT_RANGE[0] <= value.astimezone(UTC) < OPENED_AT_RANGE[1]
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        in_range = False
    if not in_range:
        raise Invalid(
            f"field 'opened_at' must lie between {OPENED_AT_RANGE[0]:%Y-%m-%d} and "
            f"{OPENED_AT_RANGE[1]:%Y-%m-%d} (UTC)",
            Location(field="opened_at"),
        )
    return value


def board_spec(spec: str, name: str) -> dict[str, str]:
    """VENDOR/MODEL or VENDOR/MODEL@REVISION (a board on a command line or in a URL query)."""
    head, _, revision = spec.partition("@")
    vendor, sep, model = head.partition("/")
    if not sep or not vendor or not model:
        raise Invalid(
            f"field '{name}': {spec!r} must be VENDOR/MODEL or VENDOR/MODEL@REVISION",
            Location(field=name),
        )
    return {"vendor": vendor, "model": model, "revision": revision}
