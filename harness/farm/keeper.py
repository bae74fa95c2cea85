"""The keeper: one small process that holds one place for one harness process.

`python -m harness.farm.keeper` is started by `harness run --place/--reserve`
(harness/farm/hold.py). It reserves (labgrid's reservations, so places are
handed out in labgrid's order and never twice), acquires, renews the place's
lease, watches the place, and always gives it back:

* when its owner asks (a JSON line on stdin, with the run's outcome, which
  feeds the board's health), or closes stdin;
* when its owner dies, however (SIGKILL included): it watches the owner's
  pidfd, so the place is released within a second;
* on SIGTERM or SIGHUP (a CI job cancelled). SIGINT is left to the owner,
  which stops its run first and then asks for the release.

If the keeper itself is killed too, the lease it stops renewing lets the
reaper release the place (harness/farm/lease.py).

It is a separate process because grpc's asyncio layer supports one event
loop per process, and the run's own labgrid `RemotePlace` needs that loop.
Events go to stdout as JSON lines: waiting, acquired, lost, failed, released.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from importlib import import_module
from typing import Any

from harness.errors import InfraError
from harness.farm.client import FarmClient, PlaceInfo, allocated_place
from harness.farm.health import History, farm_dir, is_bad, mark_bad, record_run
from harness.farm.lease import DEFAULT_TTL, lease_value
from harness.farm.tags import HELD_PREFIX, LEASE, parse_filter
from harness.vlab.lifeline import watch_process

POLL = 1.0  # reservation polls: labgrid expires an unpolled waiting reservation after 60 s


class Failed(Exception):
    """The place could not be had: kind is user (exit 2), taken, timeout or infra (exit 3)."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class Keeper:
    def __init__(self, client: FarmClient, args: argparse.Namespace):
        self.client = client
        self.args = args
        self.me = client.me
        self.ttl = max(4, int(args.lease))
        self.stop = asyncio.Event()
        self.result: dict[str, Any] | None = None
        self.history = History(farm_dir(args.farm_dir))
        self.token: str | None = None
        self.name: str | None = None
        self.borrowed = False
        self.lost: str | None = None
        self.serial = 0

    # ---- lifetime ---------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stop.set)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        watch_process(self.args.owner, self.stop.set)
        reader = asyncio.create_task(self._read_commands())
        try:
            try:
                name = await self._obtain()
            except Failed as exc:
                emit("failed", kind=exc.kind, message=str(exc))
                return 0
            if name is not None:
                place = self.client.place(name)
                emit(
                    "acquired",
                    place=name,
                    tags=place.tags if place else {},
                    resources=[list(p) for p in (place.acquired_resources if place else [])],
                    borrowed=self.borrowed,
                    holder=self.me,
                )
                await self._watch(name)
        finally:
            reader.cancel()
            await self._give_back()
        return 0

    async def _read_commands(self) -> None:
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), sys.stdin)
        while True:
            line = await stream.readline()
            if not line:
                break
            with contextlib.suppress(ValueError):
                command = json.loads(line)
                if isinstance(command, dict) and command.get("cmd") == "release":
                    result = command.get("result")
                    self.result = result if isinstance(result, dict) else None
                    break
        self.stop.set()

    async def _pause(self, seconds: float) -> None:
        """Until a stop request or any change on the coordinator, at most `seconds`."""
        stopped = asyncio.create_task(self.stop.wait())
        changed = asyncio.create_task(self.client.wait_change(seconds))
        await asyncio.wait({stopped, changed}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stopped, changed):
            task.cancel()

    # ---- getting a place ---------------------------------------------------------------------

    async def _obtain(self) -> str | None:
        """The acquired place's name, or None if told to stop while waiting."""
        while True:
            if self.args.place:
                wanted = {"name": self.args.place}
                place = self._named_place(self.args.place)
                if place.acquired == self.me:
                    self.borrowed = True  # acquired by the user beforehand: theirs to release
                    self.name = place.name
                    return place.name
                if self.args.wait:
                    name = await self._by_reservation(wanted, [place])
                elif not place.acquired and not place.reservation:
                    name = await self._acquire(place.name, direct=True)
                else:
                    raise Failed("taken", await self._busy_message([place]))
            else:
                wanted = self.args.filters
                name = await self._by_reservation(wanted, self._candidates(wanted))
            if name is None:
                return None
            problem = await self._pre_job_check(name)
            if problem is None:
                return name
            check = "health check" if self.args.health_check else "pre-job check"
            place = self.client.place(name)
            if place is not None:
                await mark_bad(self.client, place, f"{check} failed: {problem}", self.history)
            await self._release_held()
            if self.args.place:
                raise Failed("infra", f"place {name} failed its {check}: {problem}")
            emit(
                "waiting",
                message=f"place {name} failed its pre-job check ({problem}); it is "
                "now marked bad; looking for another",
            )

    def _named_place(self, name: str) -> PlaceInfo:
        place = self.client.place(name)
        if place is None:
            known = ", ".join(self.client.places()) or "none"
            raise Failed(
                "user",
                f"no place named {name!r} on the coordinator at {self.client.address} "
                f"(places: {known})",
            )
        if is_bad(place) and not self.args.health_check:
            raise Failed(
                "infra",
                f"place {name} is marked bad: {place.comment or 'no reason given'}",
            )
        return place

    def _candidates(self, wanted: dict[str, str]) -> list[PlaceInfo]:
        places = self.client.places().values()
        found = [p for p in places if all(p.tags.get(k) == v for k, v in wanted.items())]
        if found:
            return found
        bad = [
            p for p in places if all(p.tags.get(HELD_PREFIX + k) == v for k, v in wanted.items())
        ]
        shown = " ".join(f"{k}={v}" for k, v in wanted.items())
        if bad:
            reasons = "; ".join(f"{p.name}: {p.comment}" for p in bad)
            raise Failed("infra", f"every place with {shown} is out of service ({reasons})")
        raise Failed(
            "user",
            f"no place on the coordinator at {self.client.address} has the tags {shown} "
            "(`harness farm status` lists places and their tags)",
        )

    async def _by_reservation(self, wanted: dict[str, str], places: list[PlaceInfo]) -> str | None:
        reservation = await self.client.reserve(wanted)
        self.token = reservation.token
        shown = " ".join(f"{k}={v}" for k, v in wanted.items())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.args.wait_timeout if self.args.wait_timeout else None
        announced = False
        while True:
            reservation = await self.client.poll(reservation.token)
            name = allocated_place(reservation)
            if name is not None:
                return await self._acquire(name, direct=False)
            if not self.args.wait:
                await self._cancel()
                raise Failed("taken", await self._busy_message(places))
            if not announced:
                emit(
                    "waiting",
                    message=f"waiting for a place with {shown} (reservation "
                    f"{reservation.token}); {await self._busy_message(places)}",
                )
                announced = True
            if deadline is not None and loop.time() > deadline:
                await self._cancel()
                raise Failed(
                    "timeout",
                    f"no place with {shown} became free within "
                    f"{self.args.wait_timeout:g} s; {await self._busy_message(places)}",
                )
            await self._pause(POLL)
            if self.stop.is_set():
                return None

    async def _acquire(self, name: str, *, direct: bool) -> str:
        """Lease first, then acquire: a keeper killed in between leaves a lease the reaper ends."""
        self.name = name
        await self._renew()
        try:
            await self.client.acquire(name)
        except InfraError as exc:
            await self.client.set_tags(name, {LEASE: ""})
            self.name = None
            place = self.client.place(name)
            if direct and place is not None:
                raise Failed("taken", await self._busy_message([place])) from None
            raise Failed("infra", f"cannot acquire place {name}: {exc}") from None
        return name

    async def _busy_message(self, places: list[PlaceInfo]) -> str:
        owners = {r.token: r.owner for r in await self.client.reservations()}
        parts = []
        for listed in places:
            place = self.client.place(listed.name) or listed
            if place.acquired:
                parts.append(f"place {place.name} is acquired by {place.acquired}")
            elif place.reservation:
                owner = owners.get(place.reservation, "another user")
                parts.append(f"place {place.name} is reserved for {owner}")
            else:
                parts.append(f"place {place.name} is free")
        hint = "" if self.args.wait else " (give --wait to queue for it)"
        return "; ".join(parts) + hint

    async def _pre_job_check(self, name: str) -> str | None:
        """Short and harmless: every resource is served and available, the power switch answers."""
        place = self.client.place(name)
        served = self.client.resources()
        if place is None or not place.acquired_resources:
            return "the place has no resources (is its exporter running?)"
        for path in place.acquired_resources:
            data = served.get(tuple(path))  # type: ignore[arg-type]
            if data is None:
                return f"resource {'/'.join(path)} is not served (exporter {path[0]} gone?)"
            if not data.get("avail", True):
                return f"resource {'/'.join(path)} is not available"
            if path[2] == "NetworkPowerPort":
                problem = await asyncio.get_running_loop().run_in_executor(
                    None, _power_answers, data.get("params") or {}
                )
                if problem:
                    return problem
        return None

    # ---- holding it ---------------------------------------------------------------------------

    async def _renew(self) -> None:
        assert self.name is not None
        self.serial += 1
        await self.client.set_tags(self.name, {LEASE: lease_value(self.me, self.ttl, self.serial)})

    async def _watch(self, name: str) -> None:
        place = self.client.place(name)
        paths = {tuple(path) for path in (place.acquired_resources if place else [])}
        loop = asyncio.get_running_loop()
        next_renewal = loop.time() + self.ttl / 4
        while not self.stop.is_set():
            if self.lost is None:
                self.lost = self._loss(name, paths)
                if self.lost is not None:
                    emit("lost", place=name, reason=self.lost)
            if self.lost is None and not self.borrowed and loop.time() >= next_renewal:
                try:
                    await self._renew()
                except InfraError as exc:
                    self.lost = f"cannot renew the lease on {name}: {exc}"
                    emit("lost", place=name, reason=self.lost)
                next_renewal = loop.time() + self.ttl / 4
            await self._pause(max(0.05, min(self.ttl / 4, next_renewal - loop.time())))

    def _loss(self, name: str, paths: set[tuple[str, ...]]) -> str | None:
        if not self.client.connected:
            return f"the connection to the coordinator at {self.client.address} was lost"
        place = self.client.place(name)
        if place is None:
            return f"place {name} was deleted"
        if place.acquired != self.me:
            if place.acquired:
                return f"place {name} was taken over by {place.acquired}"
            return f"place {name} was released by someone else"
        served = self.client.resources()
        for path in sorted(paths):
            if path not in served:
                return f"resource {'/'.join(path)} is gone: exporter {path[0]} disconnected"
        return None

    # ---- giving it back ---------------------------------------------------------------------

    async def _give_back(self) -> None:
        name = self.name
        try:
            if name is not None and not self.borrowed and self.client.connected:
                if self.result is not None:
                    with contextlib.suppress(InfraError):
                        await record_run(self.client, name, self.result, self.history)
                await self._release_held()
            await self._cancel()
        finally:
            emit("released", place=name, borrowed=self.borrowed)

    async def _release_held(self) -> None:
        name = self.name
        if name is None:
            return
        place = self.client.place(name)
        with contextlib.suppress(InfraError):
            if place is not None and place.acquired == self.me:
                await self.client.release(name, from_user=self.me)
            if place is not None and (place.tags.get(LEASE) or "").startswith(self.me + ","):
                await self.client.set_tags(name, {LEASE: ""})
        self.name = None

    async def _cancel(self) -> None:
        if self.token is not None:
            with contextlib.suppress(InfraError):
                await self.client.cancel(self.token)
            self.token = None


def _power_answers(params: dict[str, Any]) -> str | None:
    """Ask a NetworkPowerPort for its state with labgrid's own backend for its model."""
    model = str(params.get("model", ""))
    try:
        backend = import_module(f"labgrid.driver.power.{model}")
        backend.power_get(params.get("host"), getattr(backend, "PORT", None), params.get("index"))
    except Exception as exc:  # a backend reports a dead switch with many exception types
        return f"power switch ({model} {params.get('host')}) does not answer: {exc}"
    return None


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.farm.keeper")
    parser.add_argument("--coordinator", required=True)
    parser.add_argument("--owner", type=int, required=True)
    parser.add_argument("--place")
    parser.add_argument("--reserve", default=None)
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--wait-timeout", type=float, default=None)
    parser.add_argument(
        "--lease", type=int, default=int(os.environ.get("HARNESS_FARM_LEASE", DEFAULT_TTL))
    )
    parser.add_argument("--farm-dir", default=None)
    parser.add_argument("--health-check", action="store_true")
    args = parser.parse_args(argv)
    args.filters = parse_filter(args.reserve, "--reserve") if args.reserve else None
    if (args.place is None) == (args.filters is None):
        parser.error("give --place or --reserve")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        client = FarmClient(args.coordinator)
    except InfraError as exc:
        emit("failed", kind="infra", message=str(exc))
        return 0
    try:
        return client.run(Keeper(client, args).run(), timeout=None)
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
