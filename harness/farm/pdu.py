"""The virtual farm's network power switch: one outlet per exported virtual board.

labgrid switches it itself, through its `NetworkPowerPort` resource with the
`rest` model (`labgrid/driver/power/rest.py`): `GET <host>` answers `1` or `0`,
`PUT <host>` with `1` or `0` switches. So `labgrid-client power cycle` and the
harness's `NetworkPowerDriver` drive a virtual board through the same code path
as a PDU in a rack. Each outlet switches its board's bench (harness/vlab) over
the bench's control socket.

Like a real PDU's outlet, one can fail: `PUT /outlet/N/fault` with `dead` makes
outlet N answer 503 to everything until `ok` is put there. That is the fault
the farm's health tests inject.

Served with the standard library's threading HTTP server: the protocol is two
verbs on one path, and the server lives in the `harness lab export` process.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.errors import InfraError
from harness.vlab.control import request

PATH = re.compile(r"^/outlet/(\d+)/(value|fault)$")


@dataclass
class Outlet:
    index: int
    board: str  # the bench's name in the lab folder
    control: str  # the bench's control socket
    dead: bool = False


class VirtualPDU:
    """An HTTP power switch on 127.0.0.1 (port chosen by the system) with numbered outlets."""

    def __init__(self) -> None:
        self.outlets: dict[int, Outlet] = {}
        self._lock = threading.Lock()
        pdu = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                pdu._answer(self, "GET")

            def do_PUT(self) -> None:
                pdu._answer(self, "PUT")

            def log_message(self, format: str, *args: Any) -> None:
                return  # one line per switch action would drown the export's own output

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> VirtualPDU:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        """The `host` of a NetworkPowerPort (model `rest`); labgrid fills in `{index}`."""
        return f"http://127.0.0.1:{self.port}/outlet/{{index}}/value"

    def plug(self, board: str, control: str) -> int:
        """Connect a board to the next free outlet; returns the outlet's index."""
        with self._lock:
            index = max(self.outlets, default=0) + 1
            self.outlets[index] = Outlet(index, board, control)
            return index

    # ---- HTTP -------------------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler, verb: str) -> None:
        match = PATH.match(handler.path)
        outlet = self.outlets.get(int(match.group(1))) if match else None
        if match is None or outlet is None:
            self._reply(handler, 404, f"no outlet at {handler.path}\n")
            return
        body = ""
        if verb == "PUT":
            length = int(handler.headers.get("Content-Length") or 0)
            body = handler.rfile.read(min(length, 64)).decode("ascii", "replace").strip()
        if match.group(2) == "fault":
            if verb != "PUT" or body not in ("dead", "ok"):
                self._reply(handler, 400, "PUT 'dead' or 'ok'\n")
                return
            outlet.dead = body == "dead"
            self._reply(handler, 200, body + "\n")
            return
        if outlet.dead:
            self._reply(handler, 503, f"outlet {outlet.index} does not answer\n")
            return
        try:
            if verb == "GET":
                state = request(outlet.control, {"cmd": "status"}, timeout=30)
            elif body in ("0", "1"):
                action = "on" if body == "1" else "off"
                state = request(outlet.control, {"cmd": "power", "action": action})
            else:
                self._reply(handler, 400, "PUT '1' (on) or '0' (off)\n")
                return
        except InfraError as exc:
            self._reply(handler, 502, f"board {outlet.board}: {exc}\n")
            return
        self._reply(handler, 200, "1" if state.get("power") == "on" else "0")

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, code: int, text: str) -> None:
        data = text.encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
