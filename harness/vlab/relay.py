"""The bench's USB-serial adapter: a board's console on a TCP port that outlives the board.

Upstream is whatever carries the board's UART: QEMU's console socket, or the
pty of a simulated board. It comes and goes with power; the TCP client does
not notice beyond silence, exactly as with a real adapter whose board is
switched off. QEMU's socket chardev serves a single reader, and two readers
of one UART would each see half the bytes, so a second client is refused
with a message instead of being silently starved.

Everything read from upstream (and any injected noise) is appended to the
console log, so the log is what a client would have seen.

With a `trace` file (the bench passes `console.trace` when HARNESS_CONSOLE_TRACE=1), the
relay also records when each chunk passed it, in either direction, as a line
`<CLOCK_MONOTONIC ns> <b|c> <hex bytes>` (b: from the board, c: from the client). That
is the host-side truth the boot benchmark (bench/boot.py) measures the harness against:
when a login prompt reached the host, and when the harness answered it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# A real UART drops bytes it cannot deliver; we keep at most this much queued towards a board
# that does not read (hung, powered off mid-write) instead of blocking the bench.
MAX_PENDING = 1 << 20


class ConsoleRelay:
    def __init__(self, name: str, log_path: Path, port: int = 0, trace: Path | None = None):
        self.name = name
        self.log_path = log_path
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self._client: asyncio.StreamWriter | None = None
        self._client_peer = ""
        self._up_fd: int | None = None
        self._pending = bytearray()
        self._on_lost: Callable[[], None] | None = None
        self._log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the relay
        self._trace: BinaryIO | None = (
            open(trace, "ab", buffering=0) if trace is not None else None  # noqa: SIM115
        )
        self.bytes_from_board = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._serve_client, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        self.detach()
        if self._client is not None:
            self._client.close()
        if self._server is not None:
            self._server.close()
        self._log.close()
        if self._trace is not None:
            self._trace.close()

    def _record(self, direction: bytes, data: bytes) -> None:
        if self._trace is not None:
            self._trace.write(b"%d %s %s\n" % (time.monotonic_ns(), direction, data.hex().encode()))

    # -- upstream (the board side) ----------------------------------------------------------

    def attach(self, fd: int, on_lost: Callable[[], None] | None = None) -> None:
        """Start relaying a board's UART; `on_lost` runs once when the board side closes."""
        self.detach()
        os.set_blocking(fd, False)
        self._up_fd = fd
        self._on_lost = on_lost
        asyncio.get_running_loop().add_reader(fd, self._read_board)

    def detach(self) -> None:
        if self._up_fd is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._up_fd)
        loop.remove_writer(self._up_fd)
        self._up_fd = None
        self._pending.clear()

    def _read_board(self) -> None:
        assert self._up_fd is not None
        try:
            data = os.read(self._up_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the pty's last holder went away
        if not data:
            callback = self._on_lost
            self.detach()
            if callback is not None:
                callback()
            return
        self.bytes_from_board += len(data)
        self._record(b"b", data)
        self._to_client(data)

    def _to_client(self, data: bytes) -> None:
        self._log.write(data)
        if self._client is not None and not self._client.is_closing():
            self._client.write(data)

    def _to_board(self, data: bytes) -> None:
        if self._up_fd is None:
            return  # board unpowered: keystrokes go nowhere
        if len(self._pending) + len(data) > MAX_PENDING:
            return
        self._pending += data
        self._flush_board()

    def _flush_board(self) -> None:
        fd = self._up_fd
        if fd is None:
            return
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                sent = os.write(fd, self._pending)
                del self._pending[:sent]
        except BlockingIOError:
            loop.add_writer(fd, self._flush_board)
            return
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EPIPE, errno.ECONNRESET):
                raise
            self._pending.clear()
        loop.remove_writer(fd)

    # -- faults -----------------------------------------------------------------------------

    def inject_noise(self, count: int) -> bytes:
        """Line noise: random bytes towards the client, as a flaky cable or a ground loop makes."""
        noise = os.urandom(count)
        self._to_client(noise)
        return noise

    # -- the TCP client (the person or harness at the serial adapter) -----------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._client is not None:
            writer.write(
                f"harness: the console of virtual board '{self.name}' is already in use by "
                f"{self._client_peer}; only one console client at a time.\r\n".encode()
            )
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            return
        self._client, self._client_peer = writer, peer_text
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self._record(b"c", data)
                self._to_board(data)
        except (ConnectionError, OSError):
            pass
        finally:
            if self._client is writer:
                self._client = None
                self._client_peer = ""
            writer.close()
