"""The physical floor of a console command: a bare socket that logs in and sends lines.

No markers, no log, no crash watch, no state machine: log in by matching the
prompts, turn the shell's echo off (as the harness does), then per command send
one line and read until its answer. Whatever the harness adds on top of this is
its own cost, which is what the console rows put a ratio on.
"""

from __future__ import annotations

import socket
import time

GUARD = 120.0  # a bound for a hang only


class RawConsole:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.seen = bytearray()

    def recv(self) -> bytes:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("console closed")
        return data

    def until(self, marker: bytes, timeout: float = GUARD) -> bytes:
        """Read until `marker`; returns everything up to and including it (consumed)."""
        deadline = time.monotonic() + timeout
        while (at := self.seen.find(marker)) < 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {marker!r} on the console within {timeout:g} s")
            self.sock.settimeout(remaining)
            self.seen += self.recv()
        end = at + len(marker)
        got = bytes(self.seen[:end])
        del self.seen[:end]
        return got

    def login(self, user: str, password: str) -> None:
        """From a login prompt (poked with Enter) to a root shell with echo off."""
        self.sock.sendall(b"\n")
        self.until(b"login: ")
        self.sock.sendall(user.encode() + b"\n")
        self.until(b"assword: ")
        self.sock.sendall(password.encode() + b"\n")
        self.until(b"# ")  # login(1) flushes what is typed before the shell starts
        self.sock.sendall(b"stty -echo; echo raw-ready-$((40+2))\n")
        self.until(b"raw-ready-42")
        self.seen.clear()

    def command(self, line: bytes, answer: bytes, timeout: float = GUARD) -> bytes:
        """Send one line; read until `answer` shows up."""
        self.sock.sendall(line)
        return self.until(answer, timeout)

    def close(self) -> None:
        """Echo back on and log out, so the next client finds a login prompt."""
        try:
            self.sock.sendall(b"stty echo; exit\n")
            self.until(b"login: ", 30)
        except (OSError, TimeoutError, ConnectionError):
            pass
        self.sock.close()
