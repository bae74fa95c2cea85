"""pytest fixtures for tests that need a board: a simulated one (fast) or a QEMU one (real).

Loaded for the whole suite by tests/conftest.py (`pytest_plugins`). Every
board is owned by the test process, so even a test run that is killed leaves
no bench or QEMU behind. QEMU boards cost a core while they boot, so the
factory shares a board within a test module unless a test asks for a fresh
one (after a destructive fault, say), and never runs more than
HARNESS_MAX_QEMU_BOARDS (default 2) at once.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.model.board import load_board
from harness.vlab.boardhost import SIM_PROFILE, resolve_board
from harness.vlab.boardhost import wait_for_console as _wait_for_log
from harness.vlab.handle import RunningBoard

log = logging.getLogger(__name__)

_serial = itertools.count(1)


def _max_qemu() -> int:
    return int(os.environ.get("HARNESS_MAX_QEMU_BOARDS", "2"))


@pytest.fixture(scope="session")
def vlab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab folder of this test session's boards (kept apart from a user's `harness lab up`)."""
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def lab_artifacts() -> dict[str, Any]:
    """Kernel, initramfs and boot disk per architecture, built once and cached across runs."""
    from harness.vlab.build import build_lab

    return build_lab()


@pytest.fixture
def sim_board(vlab_dir: Path) -> Iterator[RunningBoard]:
    """A freshly powered simulated board at its login prompt, with SSH up."""
    board = RunningBoard.start(load_board(SIM_PROFILE), f"sim{next(_serial)}", lab_dir=vlab_dir)
    try:
        yield board
    finally:
        board.stop()


class QemuBoards:
    """The module's QEMU boards, keyed by profile name."""

    def __init__(self, lab_dir: Path):
        self.lab_dir = lab_dir
        self.boards: dict[str, RunningBoard] = {}

    def __call__(self, board: str, *, fresh: bool = False) -> RunningBoard:
        """A booted board of profile `board` (name in boards/ or path); `fresh` forces a new one."""
        current = self.boards.get(board)
        if current is not None and (fresh or not _healthy(current)):
            current.stop()
            del self.boards[board]
            current = None
        if current is not None:
            return current
        while len(self.boards) >= _max_qemu():
            oldest = self.boards.pop(next(iter(self.boards)))
            oldest.stop()
        profile = resolve_board(board)
        name = re.sub(r"[^a-z0-9._-]", "-", f"{profile.name}-{next(_serial)}")
        started = RunningBoard.start(profile, name, lab_dir=self.lab_dir)
        self.boards[board] = started
        return started

    def stop_all(self) -> None:
        while self.boards:
            _, board = self.boards.popitem()
            board.stop()


def _healthy(board: RunningBoard) -> bool:
    try:
        state = board.state()
    except Exception:  # its bench is gone or hung: the caller starts a fresh board
        log.info("board %s did not report its state", board.name, exc_info=True)
        return False
    return state.power == "on" and not state.paused


@pytest.fixture(scope="module")
def qemu_board(vlab_dir: Path, lab_artifacts: dict[str, Any]) -> Iterator[QemuBoards]:
    """Factory: `qemu_board("qemu-x86_64")` -> a booted RunningBoard, shared within the module."""
    boards = QemuBoards(vlab_dir)
    try:
        yield boards
    finally:
        boards.stop_all()


def wait_for_console(board: RunningBoard, regex: str, timeout: float, since: int = 0) -> str:
    """Wait until the board's console log, from byte `since`, matches `regex`; returns the match."""
    return _wait_for_log(board.console_log, regex, timeout, since).group(0)
