"""Hostile and oversized HTTP uploads to a real `harness registry serve`, and what they cost it.

Requests are written on a raw socket, so a test controls what a client library would
not let it: a declared Content-Length with no body, a chunked body with no length at all,
a body streamed from a generator while the answer is already being read. Memory is the
server process's own peak RSS (VmHWM in /proc/PID/status, reset through
/proc/PID/clear_refs before each scenario); bytes read and written by the server come
from /proc/PID/io. Every number is printed so a run (`pytest -s`) reports what it measured.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from harness.labkey import load_or_create_identity
from harness.registry.store import Store

KIB = 1 << 10
MIB = 1 << 20
READ_BOUND = 120  # seconds: a bound for a hang, never an expected duration


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _io(pid: int) -> dict[str, int]:
    pairs = (line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return {key: int(value) for key, value in pairs}


class Meter:
    """Peak RSS and I/O of one process across a scenario."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> Meter:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        self.rss_before = _status_kib(self.pid, "VmRSS") / 1024
        self.io_before = _io(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = _status_kib(self.pid, "VmHWM") / 1024
        self.rss_after = _status_kib(self.pid, "VmRSS") / 1024
        io_after = _io(self.pid)
        self.read = (io_after["rchar"] - self.io_before["rchar"]) / MIB
        self.written = (io_after["wchar"] - self.io_before["wchar"]) / MIB

    @property
    def growth(self) -> float:
        return self.peak - self.rss_before

    def report(self, what: str) -> str:
        line = (
            f"{what}: RSS {self.rss_before:.0f} MiB before, peak {self.peak:.0f} MiB "
            f"(+{self.growth:.0f}), {self.rss_after:.0f} MiB after; server read "
            f"{self.read:.1f} MiB, wrote {self.written:.1f} MiB"
        )
        print(line)
        return line


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


class Answer(NamedTuple):
    status: int
    detail: str
    sent: int  # body bytes the client got onto the connection before it was closed


def raw_post(
    port: int,
    path: str,
    headers: dict[str, str],
    body: Iterable[bytes] = (),
    *,
    until_closed: bool = False,
) -> Answer:
    """POST with the body streamed from another thread while the answer is read.

    The server may answer (and close) before the body is sent; a send that fails then
    is expected, and the answer is what the client sees. With `until_closed` the
    connection is then read to its end, so `sent` counts what the client could send
    before the server closed it (a server that drains the whole body lets all of it
    through; one that keeps the connection open fails the read at READ_BOUND).
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=READ_BOUND)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    sent = 0

    def pump() -> None:
        nonlocal sent
        try:
            for chunk in body:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    try:
        status, _, payload = _response(sock)
        if until_closed:
            try:
                while sock.recv(65536):  # until the server's end is closed
                    pass
            except ConnectionResetError:
                pass  # closed with our unread body in flight: the reset is the close
    finally:
        sock.close()
        sender.join(READ_BOUND)
    return Answer(status, json.loads(payload)["detail"] if payload else "", sent)


def zeros(total: int, chunk: int = MIB) -> Iterator[bytes]:
    """`total` bytes of ASCII zeros, `chunk` at a time (the last piece may be shorter)."""
    block = b"0" * chunk
    for _ in range(total // chunk):
        yield block
    if total % chunk:
        yield block[: total % chunk]


def chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The pieces in HTTP/1.1 chunked transfer coding: a body without a Content-Length."""
    for piece in pieces:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def open_files_under(pid: int, folder: Path) -> list[str]:
    """Files below `folder` the process holds open (deleted ones included): a spooled upload
    the server never closed keeps its disk space until the process ends."""
    held = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed while we looked
        if target.startswith(str(folder) + "/"):
            held.append(target)
    return held


@pytest.fixture
def server(start_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A registry server on SQLite with a lab token and an admin token; it spools uploads
    into `server.spool` (its TMPDIR), so a test can see what it keeps on disk."""
    db_url = f"sqlite:///{tmp_path / 'registry.db'}"
    store = Store(db_url)
    identity = load_or_create_identity()
    lab_token = store.add_lab(identity.name, identity.public_key_text)
    admin = store.create_token("admin", "ops")
    store.close()
    spool = tmp_path / "server-tmp"
    spool.mkdir()
    with monkeypatch.context() as env:
        env.setenv("TMPDIR", str(spool))
        running = start_server(db_url)
    running.tokens = {"lab": lab_token, "admin": admin}
    running.spool = spool
    return running
