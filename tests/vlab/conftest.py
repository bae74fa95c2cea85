"""Helpers for the bench, simulated-board, fault and `harness lab` CLI tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest


def _eventually(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll until `condition()` is truthy; fail naming `what` if it never is.

    The timeout is a deadlock guard, not a speed requirement: speed is measured in bench/.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def eventually() -> Callable[[Callable[[], object], float, str], object]:
    """`eventually(condition, timeout, what)`: poll a condition with a deadlock guard."""
    return _eventually


class ConsoleClient:
    """A raw TCP client of a board's console, as a person at a serial adapter would use it."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(0.2)
        self.seen = b""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def read_until(self, marker: bytes, timeout: float = 120.0) -> bytes:
        """Everything up to and including `marker`; keeps the rest for the next call."""
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            if time.monotonic() > deadline:
                pytest.fail(f"console never showed {marker!r}; last bytes: {self.seen[-300:]!r}")
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                pytest.fail(f"console connection closed before {marker!r}")
            self.seen += chunk
        head, _, tail = self.seen.partition(marker)
        self.seen = tail
        return head + marker

    def read_for(self, seconds: float) -> bytes:
        """Whatever arrives within `seconds` (to show silence, or to collect noise)."""
        end = time.monotonic() + seconds
        data, self.seen = self.seen, b""
        while time.monotonic() < end:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def console_client() -> Iterator[Callable[[int], ConsoleClient]]:
    clients: list[ConsoleClient] = []

    def connect(port: int) -> ConsoleClient:
        client = ConsoleClient(port)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
