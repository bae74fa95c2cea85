"""The bench's control channel: one JSON object per line over a UNIX socket.

A UNIX socket in the board's state folder is reachable only by users who can
reach that folder, needs no port, and disappears with the bench. Requests:
`{"cmd": "status"}`, `{"cmd": "power", "action": "on|off|cycle"}`,
`{"cmd": "fault", "kind": "<fault kind>", "bytes": N}`, `{"cmd": "shutdown"}`.
Replies: `{"ok": true, "state": {...}}` or `{"ok": false, "error": "..."}`.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from harness.errors import InfraError


class BenchUnreachable(InfraError):
    """The bench process is gone or not answering: the lab, not the board, failed."""


class BenchRefused(InfraError):
    """The bench answered but could not do what was asked (e.g. hang a board that is off)."""


def request(control: str | Path, message: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """Send one request and return the bench's `state` from a successful reply."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(control))
        sock.sendall(json.dumps(message).encode() + b"\n")
        buffer = b""
        while not buffer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
    except OSError as exc:
        raise BenchUnreachable(f"bench control socket {control} is not answering: {exc}") from None
    finally:
        sock.close()
    if not buffer:
        raise BenchUnreachable(f"bench at {control} closed the connection without answering")
    reply = json.loads(buffer)
    if not reply.get("ok"):
        raise BenchRefused(str(reply.get("error", "bench refused the request")))
    return dict(reply.get("state", {}))
