"""A small synchronous QMP client: the bench's hand on QEMU's "hardware" buttons.

QMP is JSON objects over a UNIX socket: a greeting, `qmp_capabilities`, then
one reply per command, with asynchronous events interleaved. The bench only
needs a handful of commands (stop, cont, system_reset, query-status), each
answered in milliseconds, so a blocking client with a deadline is simpler and
easier to reason about than an event loop integration.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from harness.errors import InfraError


class QMPError(InfraError):
    """QEMU refused a command or its QMP socket is gone."""


class QMPClient:
    def __init__(self, path: str | Path, timeout: float = 10.0):
        self.path = str(path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""
        self.events: list[dict[str, Any]] = []

    def connect(self, wait: float = 10.0) -> None:
        """Connect, retrying while QEMU is still creating the socket."""
        deadline = time.monotonic() + wait
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise QMPError(f"QMP socket {self.path} did not come up: {exc}") from None
                time.sleep(0.02)
        self._sock = sock
        self._buffer = b""
        greeting = self._read_message()
        if "QMP" not in greeting:
            raise QMPError(f"unexpected QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def execute(self, command: str, **arguments: Any) -> Any:
        if self._sock is None:
            raise QMPError("QMP is not connected")
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
            while True:
                reply = self._read_message()
                if "event" in reply:
                    self.events.append(reply)
                    continue
                break
        except OSError as exc:
            self.close()
            raise QMPError(f"QMP {command} failed: {exc}") from None
        if "error" in reply:
            raise QMPError(f"QMP {command}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def status(self) -> str:
        """QEMU's run state: 'running', 'paused', 'guest-panicked', ..."""
        return str(self.execute("query-status")["status"])

    def _read_message(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise QMPError("QEMU closed the QMP socket")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)
