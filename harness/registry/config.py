"""Where the registry side of the harness keeps its state on a lab machine.

Everything lives under one data folder so a lab can move or wipe it as a unit,
and tests can point a whole process at a scratch folder with one variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_DATA_HOME = "HARNESS_DATA_HOME"
ENV_REGISTRY_DB = "HARNESS_REGISTRY_DB"
ENV_REGISTRY_URL = "HARNESS_REGISTRY_URL"
ENV_REGISTRY_TOKEN = "HARNESS_REGISTRY_TOKEN"
ENV_LAB_NAME = "HARNESS_LAB_NAME"


def data_home() -> Path:
    """`$HARNESS_DATA_HOME`, else `$XDG_DATA_HOME/harness`, else ~/.local/share/harness."""
    explicit = os.environ.get(ENV_DATA_HOME)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "harness"


def default_db_url() -> str:
    """The local registry: `$HARNESS_REGISTRY_DB` (a path or a SQLAlchemy URL) or registry.db."""
    explicit = os.environ.get(ENV_REGISTRY_DB)
    if explicit:
        return explicit if "://" in explicit else f"sqlite:///{Path(explicit).absolute()}"
    return f"sqlite:///{data_home() / 'registry.db'}"


def outbox_dir() -> Path:
    return data_home() / "outbox"


@dataclass(frozen=True)
class RemoteRegistry:
    """An HTTP registry the lab delivers to instead of the local file."""

    url: str
    token: str


def remote_registry() -> RemoteRegistry | None:
    """The HTTP registry from the environment, or None for the local SQLite registry."""
    url = os.environ.get(ENV_REGISTRY_URL, "").strip()
    if not url:
        return None
    return RemoteRegistry(url=url.rstrip("/"), token=os.environ.get(ENV_REGISTRY_TOKEN, ""))
