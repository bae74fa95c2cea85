"""Who and where, as labgrid's own client decides them (kept free of grpc imports)."""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path

DEFAULT_COORDINATOR = "127.0.0.1:20408"


def coordinator_address(given: str | None = None) -> str:
    """The address to use: given, else $LG_COORDINATOR, else labgrid's default."""
    return given or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def identity() -> str:
    """`host/user` as the coordinator records a holder (labgrid honours LG_HOSTNAME/LG_USERNAME)."""
    host = os.environ.get("LG_HOSTNAME", socket.gethostname())
    user = os.environ.get("LG_USERNAME", getpass.getuser())
    return f"{host}/{user}"


def farm_dir(override: str | Path | None = None) -> Path:
    """The farm folder: given, else $HARNESS_FARM_DIR, else ~/.cache/harness/farm."""
    if override:
        return Path(override)
    if os.environ.get("HARNESS_FARM_DIR"):
        return Path(os.environ["HARNESS_FARM_DIR"])
    return Path.home() / ".cache" / "harness" / "farm"
