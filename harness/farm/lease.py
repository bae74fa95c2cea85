"""Leases on places, and the reaper that ends the lease of a holder that died.

labgrid keeps a place acquired until someone releases it, even when the
client that acquired it is long gone. A harness holding a place writes a
lease tag, `lease=<holder>,<ttl>s,<n>`, and renews it (a new n) every
ttl/4 seconds. The reaper (`harness farm reaper`, also run by `harness lab
export` next to the coordinator it starts) releases a place whose lease has
not changed for ttl seconds *by the reaper's own clock*, so no two hosts'
clocks need to agree. It releases only if the lease's holder still holds the
place (labgrid's atomic release-from), cancels the dead holder's
reservation, and removes the tag. A place acquired without a lease (by a
person with `labgrid-client acquire`) is never touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.farm.client import FarmClient
from harness.farm.health import History
from harness.farm.tags import LEASE

DEFAULT_TTL = 60


def lease_value(holder: str, ttl: int, serial: int) -> str:
    return f"{holder},{ttl}s,{serial}"


def parse_lease(value: str) -> tuple[str, int] | None:
    """(holder, ttl) of a lease tag, or None for a value that is not one of ours."""
    parts = value.rsplit(",", 2)
    if len(parts) != 3 or not parts[1].endswith("s"):
        return None
    try:
        ttl = int(parts[1][:-1])
    except ValueError:
        return None
    return (parts[0], ttl) if ttl > 0 else None


@dataclass
class _Seen:
    value: str
    since: float


class Reaper:
    """Call `step()` every second or so; it returns what it did, one line per action."""

    def __init__(self, client: FarmClient, history: History):
        self.client = client
        self.history = history
        self.seen: dict[str, _Seen] = {}

    async def step(self) -> list[str]:
        done: list[str] = []
        now = time.monotonic()
        places = self.client.places()
        for name in list(self.seen):
            if name not in places:
                del self.seen[name]
        for name, place in places.items():
            value = place.tags.get(LEASE)
            seen = self.seen.get(name)
            if not value:
                self.seen.pop(name, None)
                continue
            if seen is None or seen.value != value:
                self.seen[name] = _Seen(value, now)
                continue
            parsed = parse_lease(value)
            holder, ttl = parsed if parsed is not None else ("?", DEFAULT_TTL)
            if now - seen.since < ttl:
                continue
            if place.acquired == holder:
                await self.client.release(name, from_user=holder)
                for reservation in await self.client.reservations():
                    if reservation.owner == holder and name in (
                        reservation.allocations.get("main") or []
                    ):
                        await self.client.cancel(reservation.token)
                why = f"lease of {holder} not renewed for {ttl} s: the holder died"
                self.history.add(name, "reaped", why, holder=holder)
                done.append(f"{name}: released ({why})")
            await self.client.set_tags(name, {LEASE: ""})
            del self.seen[name]
        return done
