"""Fixtures for the lab-access tests: a `Board` opened on a virtual board from harness/vlab.

`lab` opens a Board on a fresh simulated board (fast; real busybox shell, real
login, real dropbear). QEMU tests open their Board on `qemu_board(...)`
themselves, one per module, because a console serves one client at a time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.lab.board import Board
from harness.vlab.fixtures import wait_for_console


@contextlib.contextmanager
def opened_board(vm: Any, console_log: Path, *, login: bool = True) -> Iterator[Board]:
    """A Board on a running virtual board, closed (console logged out) afterwards."""
    board = Board.open(vm.profile, vm.env_file, console_log=console_log)
    try:
        if login:
            board.console.login()
        yield board
    finally:
        board.close()


@pytest.fixture
def lab(sim_board, tmp_path: Path) -> Iterator[Board]:
    """A logged-in Board on a fresh simulated board; its console.log is in tmp_path."""
    with opened_board(sim_board, tmp_path / "console.log") as board:
        yield board


# Deadlock guard for a marker to reach the console: a bound for a hang, not a speed requirement.
MARKER_GUARD = 120.0


def began(name: str) -> tuple[str, str]:
    """A shell fragment that prints `<name>-began`, and the regex that matches that output only.

    The console echoes what is typed, so the marker's text must not appear in the command
    itself: printf assembles it on the board.
    """
    return f"printf '%s-%s\\n' {name} began", rf"{name}-began"


class ConsoleTriggers:
    """Faults injected the moment a board's console shows a marker, from another thread.

    A fault meant to hit "in the middle of a command" must not be timed: on a loaded host
    the command may not have started after any fixed delay. The command prints a marker
    and then blocks; the fault is injected once the bench's console log shows it.
    """

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def __call__(self, vm: Any, regex: str, action: Callable[[], object]) -> None:
        """Once `vm`'s console shows `regex` (output after this call), do `action`."""
        since = vm.console_mark()

        def fire() -> None:
            try:
                wait_for_console(vm, regex, MARKER_GUARD, since=since)
                action()
            except BaseException as exc:  # reported by the fixture's teardown
                self.errors.append(exc)

        thread = threading.Thread(target=fire, daemon=True)
        self.threads.append(thread)
        thread.start()

    def finish(self) -> None:
        for thread in self.threads:
            thread.join(timeout=MARKER_GUARD + 60)
        alive = [t for t in self.threads if t.is_alive()]
        assert not alive, "a console trigger never finished"
        if self.errors:
            first = self.errors[0]
            raise AssertionError(f"a console trigger failed: {first!r}") from first


@pytest.fixture
def on_console() -> Iterator[ConsoleTriggers]:
    """`on_console(vm, regex, action)`: do `action` (a fault) once the board printed `regex`."""
    triggers = ConsoleTriggers()
    yield triggers
    triggers.finish()
