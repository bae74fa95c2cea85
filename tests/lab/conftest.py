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


@pytest.fixture
def later() -> Iterator[Callable[[float, Callable[[], object]], None]]:
    """`later(delay, action)`: do `action` from another thread while the test waits on the board
    (a fault injected in the middle of a command, as it happens on a real bench)."""
    timers: list[threading.Timer] = []

    def schedule(delay: float, action: Callable[[], object]) -> None:
        timer = threading.Timer(delay, action)
        timer.daemon = True
        timers.append(timer)
        timer.start()

    yield schedule
    for timer in timers:
        timer.join(timeout=30)
