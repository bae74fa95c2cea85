"""A synchronous handle on a labgrid coordinator, built on labgrid's own client session.

labgrid's `ClientSession` speaks the coordinator's gRPC protocol and keeps a
live copy of every place and resource (the coordinator streams each change).
We use it rather than running `labgrid-client` per action: one connection
instead of a Python start-up per call, and changes arrive as events, so a
lost place is seen the moment the coordinator says so, not at the next poll.

grpc's asyncio layer supports one event loop per process: a process that
uses this class must not also build a labgrid `RemotePlace` (that is why a
run's place is held by a separate keeper process, harness/farm/keeper.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")  # fan-out forks while grpc threads live

import grpc
from labgrid.remote.client import ClientSession
from labgrid.remote.common import Reservation, ReservationState
from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

from harness.errors import InfraError
from harness.farm.address import coordinator_address, identity

T = TypeVar("T")
CONNECT_TIMEOUT = 60.0  # a bound for a hang only: a loaded coordinator answers in well under 1 s


@dataclass
class PlaceInfo:
    """What the coordinator knows about a place, copied out of labgrid's live object."""

    name: str
    tags: dict[str, str]
    comment: str
    acquired: str | None
    reservation: str | None
    matches: list[str]
    acquired_resources: list[tuple[str, str, str, str]] = field(default_factory=list)
    changed: float = 0.0


class _Session(ClientSession):
    """labgrid's session, with a hook that is told of every place and resource change."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.on_change: Callable[[], None] | None = None

    async def on_resource_changed(
        self, exporter: str, group: str, name: str, resource: Any
    ) -> None:
        await super().on_resource_changed(exporter, group, name, resource)
        if self.on_change is not None:
            self.on_change()

    async def on_place_changed(self, place_pb2: Any) -> None:
        await super().on_place_changed(place_pb2)
        if self.on_change is not None:
            self.on_change()

    async def on_place_deleted(self, name: str) -> None:
        await super().on_place_deleted(name)
        if self.on_change is not None:
            self.on_change()


class FarmClient:
    """One connection to a coordinator; every call returns once the coordinator has applied it."""

    def __init__(self, address: str | None = None, timeout: float = CONNECT_TIMEOUT):
        self.address = coordinator_address(address)
        self.me = identity()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.changed = asyncio.Event()
        from labgrid.util.proxy import proxymanager

        target = proxymanager.get_grpc_address(self.address, default_port=20408)
        self.session = _Session(address=target, loop=self.loop)
        self.session.on_change = self.changed.set
        try:
            self.run(self.session.start(), timeout)
        except (InfraError, Exception) as exc:
            self.close()
            raise InfraError(
                f"cannot reach the labgrid coordinator at {self.address}: {exc}"
            ) from None

    # ---- plumbing -----------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = CONNECT_TIMEOUT) -> T:
        """Run one coroutine on this client's loop; a coordinator that stopped answering is an InfraError."""
        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))
        except TimeoutError:
            raise InfraError(
                f"the labgrid coordinator at {self.address} did not answer within {timeout:.0f} s"
            ) from None

    async def call(self, method: str, request: Any) -> Any:
        """One RPC, then a sync, so the live copy of places already shows its effect."""
        try:
            reply = await getattr(self.session.stub, method)(request)
        except grpc.aio.AioRpcError as exc:
            raise CoordinatorRefused(exc.details() or str(exc.code())) from None
        await self.session.sync_with_coordinator()
        return reply

    @property
    def connected(self) -> bool:
        return not self.session.stopping.is_set()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(asyncio.wait_for(self.session.stop(), 10))
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(asyncio.wait_for(self.session.close(), 10))
        with contextlib.suppress(Exception):
            self.loop.close()

    def __enter__(self) -> FarmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def wait_change(self, timeout: float) -> None:
        """Until the coordinator reports any change, or `timeout` seconds pass."""
        self.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)

    # ---- reading ------------------------------------------------------------------------

    def places(self) -> dict[str, PlaceInfo]:
        return {name: _info(place) for name, place in sorted(self.session.places.items())}

    def place(self, name: str) -> PlaceInfo | None:
        place = self.session.places.get(name)
        return _info(place) if place is not None else None

    def resources(self) -> dict[tuple[str, str, str, str], dict[str, Any]]:
        """Every resource an exporter serves now, by path (exporter, group, class, name)."""
        found: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for exporter, groups in self.session.resources.items():
            for group, entries in groups.items():
                for name, entry in entries.items():
                    data = entry.data
                    if data.get("cls"):
                        found[(exporter, group, data["cls"], name)] = data
        return found

    def place_resources(self, name: str) -> dict[tuple[str, str, str, str], dict[str, Any]]:
        """The resources that `name`'s match patterns select among those served now."""
        place = self.session.places.get(name)
        if place is None:
            return {}
        return {path: data for path, data in self.resources().items() if place.hasmatch(path)}

    # ---- changing places ----------------------------------------------------------------

    async def create_place(self, name: str) -> None:
        await self.call("AddPlace", pb2.AddPlaceRequest(name=name))

    async def add_match(self, name: str, pattern: str) -> None:
        await self.call("AddPlaceMatch", pb2.AddPlaceMatchRequest(placename=name, pattern=pattern))

    async def set_tags(self, name: str, tags: dict[str, str]) -> None:
        """Set (or, with an empty value, delete) each tag; the others stay as they are."""
        await self.call("SetPlaceTags", pb2.SetPlaceTagsRequest(placename=name, tags=tags))

    async def set_comment(self, name: str, comment: str) -> None:
        await self.call(
            "SetPlaceComment", pb2.SetPlaceCommentRequest(placename=name, comment=comment)
        )

    async def acquire(self, name: str) -> None:
        await self.call("AcquirePlace", pb2.AcquirePlaceRequest(placename=name))

    async def release(self, name: str, from_user: str | None = None) -> None:
        """Release `name`; with `from_user`, only if that holder still has it (atomically)."""
        request = pb2.ReleasePlaceRequest(placename=name)
        if from_user is not None:
            request = pb2.ReleasePlaceRequest(placename=name, fromuser=from_user)
        await self.call("ReleasePlace", request)

    # ---- reservations -------------------------------------------------------------------

    async def reserve(self, tags: dict[str, str]) -> Reservation:
        request = pb2.CreateReservationRequest(
            filters={"main": pb2.Reservation.Filter(filter=tags)}, prio=0.0
        )
        reply = await self.call("CreateReservation", request)
        return Reservation.from_pb2(reply.reservation)

    async def poll(self, token: str) -> Reservation:
        """The reservation's state; polling also keeps an unacquired reservation from expiring."""
        reply = await self.call("PollReservation", pb2.PollReservationRequest(token=token))
        return Reservation.from_pb2(reply.reservation)

    async def cancel(self, token: str) -> None:
        with contextlib.suppress(CoordinatorRefused):  # already gone (expired) is fine
            await self.call("CancelReservation", pb2.CancelReservationRequest(token=token))

    async def reservations(self) -> list[Reservation]:
        reply = await self.call("GetReservations", pb2.GetReservationsRequest())
        return [Reservation.from_pb2(item) for item in reply.reservations]


class CoordinatorRefused(InfraError):
    """The coordinator answered with an error (place taken, no such place, ...)."""


def allocated_place(reservation: Reservation) -> str | None:
    """The place a reservation was given, once it is allocated (or already acquired)."""
    if reservation.state not in (ReservationState.allocated, ReservationState.acquired):
        return None
    names = reservation.allocations.get("main") or []
    return names[0] if names else None


def _info(place: Any) -> PlaceInfo:
    return PlaceInfo(
        name=place.name,
        tags=dict(place.tags),
        comment=place.comment or "",
        acquired=place.acquired,
        reservation=place.reservation,
        matches=[str(match) for match in place.matches],
        acquired_resources=[tuple(path) for path in place.acquired_resources],  # type: ignore[misc]
        changed=float(place.changed or 0.0),
    )
