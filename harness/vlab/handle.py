"""A running virtual board as a test or a script holds it: ports, env file, power and faults.

It is a thin view of a bench (which owns the real state), so a handle can be
created for any board in `harness lab list`, and several handles agree.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from harness.errors import InfraError
from harness.model.board import BoardProfile, load_board
from harness.vlab import state as lab_state
from harness.vlab.boardhost import start_bench, stop_bench, wait_for_console
from harness.vlab.control import request
from harness.vlab.state import BenchState

# How many boot timeouts `wait_until_up` allows before it calls the board hung.
UP_BOUND_FACTOR = 2
SSH_AFTER_PROMPT_BOUND = 120.0


class RunningBoard:
    def __init__(self, state: BenchState):
        self._state = state
        self.profile: BoardProfile = load_board(state.profile)

    @classmethod
    def start(
        cls,
        profile: BoardProfile,
        name: str,
        *,
        lab_dir: Path,
        owner: int | None = None,
        wait: bool = True,
    ) -> RunningBoard:
        """Start a bench for `profile`; with `wait`, return once login and SSH are possible."""
        board = cls(start_bench(profile, name, lab_dir=lab_dir, owner=owner or os.getpid()))
        if wait:
            try:
                board.wait_until_up()
            except BaseException:
                board.stop()
                raise
        return board

    # -- facts --------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._state.name

    @property
    def kind(self) -> str:
        return self._state.kind

    @property
    def env_file(self) -> Path:
        return Path(self._state.env_file)

    @property
    def console_port(self) -> int:
        return self._state.console_port

    @property
    def ssh_port(self) -> int:
        return self._state.ssh_port

    @property
    def console_log(self) -> Path:
        return Path(self._state.console_log)

    @property
    def bench_pid(self) -> int:
        return self._state.pid

    def state(self) -> BenchState:
        """Fresh state from the bench (power, pause, boot count, boot id, QEMU pid)."""
        self._state = BenchState(**_known_fields(request(self._state.control, {"cmd": "status"})))
        return self._state

    def console_mark(self) -> int:
        """Current end of the console log, to wait for output that comes after it."""
        try:
            return self.console_log.stat().st_size
        except FileNotFoundError:
            return 0

    # -- actions ------------------------------------------------------------------------------

    def power(self, action: str) -> BenchState:
        reply = request(self._state.control, {"cmd": "power", "action": action})
        self._state = BenchState(**_known_fields(reply))
        return self._state

    def fault(self, kind: str, **options: Any) -> dict[str, Any]:
        """Inject a fault (see harness.vlab.faults); returns the bench's reply facts."""
        reply = request(self._state.control, {"cmd": "fault", "kind": kind, **options})
        self._state = BenchState(**_known_fields(reply))
        return reply

    def wait_until_up(self, since: int = 0, timeout: float | None = None) -> None:
        """Login prompt on the console, then an SSH server answering with its banner.

        QEMU's user networking accepts TCP on the forwarded port even while
        the guest is still booting, so only the SSH banner proves sshd is up.
        """
        # Bounds guard against a hung board only: a loaded lab host boots TCG guests slowly.
        timeout = timeout or UP_BOUND_FACTOR * self.profile.boot.timeout
        try:
            wait_for_console(self.console_log, self.profile.console.login_prompt, timeout, since)
        except InfraError as exc:
            reason = self.state().extra.get("error")
            raise InfraError(f"{exc}; the bench says: {reason}" if reason else str(exc)) from None
        # dropbear listens before the prompt shows; the forwarded port may still lag behind.
        deadline = time.monotonic() + SSH_AFTER_PROMPT_BOUND
        while not _ssh_banner(self.ssh_port):
            if time.monotonic() > deadline:
                raise InfraError(f"SSH on port {self.ssh_port} of '{self.name}' never answered")
            time.sleep(0.05)

    def stop(self) -> None:
        stop_bench(self._state)

    def __repr__(self) -> str:
        return f"<RunningBoard {self.name} ({self.kind}) console={self.console_port} ssh={self.ssh_port}>"


def _known_fields(data: dict[str, Any]) -> dict[str, Any]:
    names = BenchState.__dataclass_fields__
    return {key: value for key, value in data.items() if key in names}


def _ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.settimeout(2)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def find_running(name: str, lab_dir: Path | None = None) -> RunningBoard:
    return RunningBoard(lab_state.find(lab_state.lab_dir(lab_dir), name))
