"""The lab host as a network peer: one TCP connection that sends or receives a payload.

A board's network test needs something on the other end of the link. iperf3 is not on every
image, but busybox `nc` is, so the harness itself is the peer: it listens on the lab host
(the profile's `fixtures.network_peer.bind`), the board connects to the address it knows the
lab host by, and the bytes are checked by sha256 on both ends. The standard library's
socketserver would add a thread per server for one connection; a plain socket is enough.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Transfer:
    """What the peer saw of one connection: bytes, their sha256, seconds from accept to end."""

    size: int = 0
    sha256: str = ""
    seconds: float = 0.0
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Peer:
    """Listen once on `bind`; `send(payload)` or `receive(size)` runs in a thread until done."""

    def __init__(self, bind: str, timeout: float = 120.0):
        self._listener = socket.create_server((bind, 0))
        self._listener.settimeout(timeout)
        self.port = int(self._listener.getsockname()[1])
        self.transfer = Transfer()

    def send(self, payload: bytes) -> Transfer:
        threading.Thread(target=self._serve, args=(payload, None), daemon=True).start()
        return self.transfer

    def receive(self, size: int) -> Transfer:
        threading.Thread(target=self._serve, args=(None, size), daemon=True).start()
        return self.transfer

    def _serve(self, payload: bytes | None, size: int | None) -> None:
        digest = hashlib.sha256()
        try:
            conn, _ = self._listener.accept()
            with conn:
                started = time.monotonic()
                if payload is not None:
                    conn.sendall(payload)
                    digest.update(payload)
                    self.transfer.size = len(payload)
                else:
                    assert size is not None
                    while self.transfer.size < size:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        digest.update(chunk)
                        self.transfer.size += len(chunk)
                self.transfer.seconds = time.monotonic() - started
        except OSError as exc:
            self.transfer.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.transfer.sha256 = digest.hexdigest()
            self._listener.close()
            self.transfer.done.set()

    def close(self) -> None:
        self._listener.close()
