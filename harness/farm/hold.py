"""Holding a place for one run: the harness side of the keeper process (keeper.py).

`hold_place()` starts the keeper, shows what it waits for, and returns once
the place is acquired; on the way out, however the run ended (finished,
Ctrl-C, SIGTERM, an exception), it asks the keeper to release and waits for
the release to be confirmed. The `PlaceHold` it yields is also the run's
lab guard: when the keeper reports the place lost (taken over, exporter
gone, coordinator gone), the test under way and the run end as an
infrastructure error, never a pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click

from harness.errors import InfraError, LabLost, Location, UserError
from harness.farm.address import coordinator_address
from harness.farm.tags import parse_filter

RELEASE_GUARD = 60.0  # a bound for a hang only: a release takes well under a second
# Sent by the keeper's reader thread to the main thread when the place is lost mid-test.
LOST_SIGNAL = signal.SIGUSR1


@dataclass
class HoldRequest:
    """What to hold: a place by name, or any place with these tags; wait for it or not."""

    place: str | None = None
    reserve: str | None = None
    wait: bool = False
    wait_timeout: float | None = None
    health_check: bool = False
    coordinator: str | None = None

    def __post_init__(self) -> None:
        if (self.place is None) == (self.reserve is None):
            raise UserError("give --place or --reserve, not both", Location(field="--reserve"))
        if self.reserve is not None:
            parse_filter(self.reserve, "--reserve")  # exit 2 before anything starts

    def argv(self) -> list[str]:
        argv = ["--coordinator", coordinator_address(self.coordinator)]
        argv += ["--place", self.place] if self.place else ["--reserve", str(self.reserve)]
        if self.wait:
            argv.append("--wait")
        if self.wait_timeout:
            argv += ["--wait-timeout", str(self.wait_timeout)]
        if self.health_check:
            argv.append("--health-check")
        return argv


@dataclass(eq=False)  # a pytest plugin object: hashed by identity
class PlaceHold:
    """A place the keeper holds for this process; `lab_lost()` is the run's lab guard."""

    name: str
    tags: dict[str, str]
    resources: list[list[str]]
    borrowed: bool
    holder: str
    result: dict[str, Any] | None = None
    _lost: list[str] = field(default_factory=list)
    _gate: bool = False
    _main: int = field(default_factory=lambda: threading.main_thread().ident or 0)

    def lab_lost(self) -> str | None:
        return self._lost[0] if self._lost else None

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """While inside, a lost place raises LabLost in the main thread at once.

        The reader thread signals the main thread (LOST_SIGNAL); the handler runs
        there, between two bytecodes or out of a blocking call, and raises only
        while the gate is open, so no code outside a test is ever interrupted.
        """
        if self._lost:
            raise LabLost(self._lost[0])
        self._gate = True
        try:
            yield
        finally:
            self._gate = False

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._gate and self._lost:
            self._gate = False  # once
            raise LabLost(self._lost[0])

    def _notify_lost(self, reason: str) -> None:
        """From the reader thread: remember why, and stop the test under way."""
        self._lost.append(reason)
        if self._gate:
            signal.pthread_kill(self._main, LOST_SIGNAL)

    def resource_classes(self) -> set[str]:
        return {path[2] for path in self.resources if len(path) == 4}


class _Keeper:
    """The keeper process and a thread that turns its stdout into a queue of events."""

    def __init__(self, request: HoldRequest):
        fd, name = tempfile.mkstemp(prefix="harness-keeper-", suffix=".log")
        os.close(fd)
        self.log = Path(name)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "harness.farm.keeper",
                    "--owner",
                    str(os.getpid()),
                    *request.argv(),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.hold: PlaceHold | None = None
        self.released = threading.Event()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        for raw in stream:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if event.get("event") == "lost" and self.hold is not None:
                self.hold._notify_lost(str(event.get("reason")))
            if event.get("event") == "released":
                self.released.set()
            self.events.put(event)
        if self.hold is not None and not self.released.is_set() and not self.hold._lost:
            self.hold._notify_lost(f"the keeper of place {self.hold.name} died: {self.tail()}")
        self.released.set()
        self.events.put(None)

    def tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return " | ".join(text[-3:]) or f"exit code {self.proc.poll()}"

    def release(self, result: dict[str, Any] | None) -> None:
        """Ask for the release and wait for it; a keeper that hangs is killed (its lease then ends)."""
        stdin = self.proc.stdin
        if stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                stdin.write((json.dumps({"cmd": "release", "result": result}) + "\n").encode())
                stdin.flush()
            with contextlib.suppress(OSError):
                stdin.close()
        if not self.released.wait(RELEASE_GUARD):
            click.echo(
                "harness: the place keeper did not confirm the release; stopping it", err=True
            )
            self.proc.kill()
        try:
            self.proc.wait(timeout=RELEASE_GUARD)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            self.log.unlink()


def _raise(event: dict[str, Any], request: HoldRequest) -> None:
    message = str(event.get("message"))
    if event.get("kind") == "user":
        field_name = "--place" if request.place else "--reserve"
        raise UserError(message, Location(field=field_name))
    raise InfraError(message)


@contextlib.contextmanager
def hold_place(request: HoldRequest) -> Iterator[PlaceHold]:
    """Hold a place for the `with` block; released on every way out of it."""
    keeper = _Keeper(request)
    previous = signal.getsignal(LOST_SIGNAL)
    try:
        started = time.monotonic()
        while True:
            event = keeper.events.get()
            if event is None:
                raise InfraError(
                    f"the place keeper stopped before holding a place: {keeper.tail()}"
                )
            kind = event.get("event")
            if kind == "waiting":
                click.echo(f"harness: {event.get('message')}", err=True)
            elif kind == "failed":
                _raise(event, request)
            elif kind == "acquired":
                keeper.hold = PlaceHold(
                    name=str(event["place"]),
                    tags=dict(event.get("tags") or {}),
                    resources=list(event.get("resources") or []),
                    borrowed=bool(event.get("borrowed")),
                    holder=str(event.get("holder")),
                )
                signal.signal(LOST_SIGNAL, keeper.hold._on_signal)
                how = "already held by you" if keeper.hold.borrowed else "acquired"
                click.echo(
                    f"harness: place {keeper.hold.name} {how} as {keeper.hold.holder} "
                    f"(after {time.monotonic() - started:.1f} s)",
                    err=True,
                )
                break
        yield keeper.hold
    finally:
        if keeper.hold is not None:
            keeper.hold._gate = False
        signal.signal(LOST_SIGNAL, previous)
        keeper.release(keeper.hold.result if keeper.hold is not None else None)
        if keeper.hold is not None and not keeper.hold.borrowed:
            click.echo(f"harness: place {keeper.hold.name} released", err=True)


def run_outcome(folder: Path, health_check: bool) -> dict[str, Any] | None:
    """What the board's health record needs from a finished run; None if it did not finish."""
    from harness.report.runfolder import RunFolder

    try:
        run = RunFolder(folder).read_run()
    except (OSError, ValueError, UserError):  # no run folder: the run did not start
        return None
    if run.status != "finished":
        return None
    reason = ""
    with contextlib.suppress(OSError, ValueError):
        for record in RunFolder(folder).read_results():
            if record.outcome.value not in ("pass", "skip", "waived"):
                reason = f"{record.id}: {record.outcome.value}: {record.reason}"
                break
    return {
        "run_id": run.run_id,
        "verdict": str(run.verdict),
        "error_class": str(run.error_class) if run.error_class else None,
        "reason": reason[:300],
        "health_check": health_check,
    }
