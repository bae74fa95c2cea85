"""Place tags: the ones a board profile gives a place, the ones users filter on, and ours.

labgrid schedules reservations by tags (a reservation's `key=value` filters
must all be among a place's tags). A place made from a board profile gets
`board=`, `arch=` and `soc=`. The harness keeps its own bookkeeping in tags
too, because tags live on the coordinator (shared by every lab host and CI
runner) and every labgrid user sees them with `labgrid-client places -v`:

    health=bad          the board is out of service (health.py)
    bad_<key>=<value>   a scheduling tag held back while the board is bad,
                        so no reservation by that tag can pick it
    infra_errors=N      runs in a row that ended with an infrastructure error
    lease=HOLDER,Ns,K   the holder's lease on the place (lease.py)
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from harness.errors import Location, UserError

HEALTH = "health"
HELD_PREFIX = "bad_"
STREAK = "infra_errors"
LEASE = "lease"
OURS = frozenset({HEALTH, STREAK, LEASE})
# labgrid's own rule for tag keys (labgrid/remote/common.py TAG_KEY), as a full match.
KEY = re.compile(r"^[a-z][a-z0-9_]+$")
VALUE = re.compile(r"^[A-Za-z0-9._:+*?\[\]/-]+$")


def _value(text: str) -> str:
    """A profile field as a tag value: lower case, no spaces or '=' (labgrid-client splits on '=')."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-") or "unknown"


def profile_tags(profile: Any) -> dict[str, str]:
    """`board=`, `arch=` and `soc=` of a board profile."""
    identity = profile.identity
    return {
        "board": _value(profile.name),
        "arch": _value(identity.arch),
        "soc": _value(identity.soc),
    }


def scheduling_tags(tags: dict[str, str]) -> dict[str, str]:
    """The tags reservations select on: all but the harness's bookkeeping."""
    return {k: v for k, v in tags.items() if k not in OURS and not k.startswith(HELD_PREFIX)}


def parse_filter(text: str, option: str) -> dict[str, str]:
    """`board=qemu-x86_64 arch=x86_64` (spaces or commas between pairs) as a dict; exit 2 if malformed."""
    pairs = [part for part in re.split(r"[\s,]+", text.strip()) if part]
    if not pairs:
        raise UserError(
            "give at least one KEY=VALUE pair, e.g. board=qemu-x86_64", Location(field=option)
        )
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not KEY.match(key) or not value or not VALUE.match(value):
            raise UserError(
                f"{pair!r} is not a tag filter: use KEY=VALUE with a lower-case key of at least "
                "two letters, digits or '_' (labgrid's rule), e.g. board=qemu-x86_64",
                Location(field=option),
            )
        result[key] = value
    return result


def matches(tags: dict[str, str], name: str, wanted: dict[str, str]) -> bool:
    """Every wanted tag is there with a value matching its glob (`name` matches the place name)."""
    for key, pattern in wanted.items():
        value = name if key == "name" else tags.get(key)
        if value is None or not fnmatch.fnmatchcase(value, pattern):
            return False
    return True


def has_glob(wanted: dict[str, str]) -> bool:
    return any(any(ch in value for ch in "*?[") for value in wanted.values())
