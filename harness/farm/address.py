"""Who and where, as labgrid's own client decides them (kept free of grpc imports)."""

from __future__ import annotations

import getpass
import os
import socket

DEFAULT_COORDINATOR = "127.0.0.1:20408"


def coordinator_address(given: str | None = None) -> str:
    """The address to use: given, else $LG_COORDINATOR, else labgrid's default."""
    return given or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def identity() -> str:
    """`host/user` as the coordinator records a holder (labgrid honours LG_HOSTNAME/LG_USERNAME)."""
    host = os.environ.get("LG_HOSTNAME", socket.gethostname())
    user = os.environ.get("LG_USERNAME", getpass.getuser())
    return f"{host}/{user}"
