"""Where running virtual boards are recorded, and how a dead one is told from a live one.

Each running board has a folder `<lab dir>/<name>/` holding `bench.json` (written by
its bench once it is ready), the control socket, the console log and the labgrid
environment file. The bench process is the only source of truth for "running": an
entry whose bench pid is gone is stale and is removed the moment anyone looks, so
`harness lab list` never shows a board that cannot answer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.durable import write_atomic
from harness.errors import Location, UserError

STATE_FILE = "bench.json"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def lab_dir(override: str | Path | None = None) -> Path:
    """`$HARNESS_LAB_DIR`, else `$XDG_RUNTIME_DIR/harness-lab`, else `~/.cache/harness/running`.

    The runtime dir is preferred because it is wiped at logout, like the benches
    that live in it; the cache fallback exists for root shells without one.
    """
    if override:
        return Path(override)
    if os.environ.get("HARNESS_LAB_DIR"):
        return Path(os.environ["HARNESS_LAB_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "harness-lab"
    return Path.home() / ".cache" / "harness" / "running"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"invalid board name {name!r}: use lower-case letters, digits, '.', '_' or '-' "
            "(at most 63, starting with a letter or digit)",
            Location(field="name"),
        )
    return name


@dataclass
class BenchState:
    """What a bench publishes about itself; the env file and `lab list` are built from it."""

    name: str
    board: str
    kind: str  # "qemu" or "sim"
    profile: str
    pid: int
    owner: int
    console_port: int
    ssh_port: int
    control: str
    env_file: str
    console_log: str
    state_dir: str
    power: str = "off"  # on | off
    paused: bool = False
    boot_count: int = 0
    boot_id: str | None = None
    ssh_host_key: str | None = None
    machine_pid: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def save(self) -> None:
        """Atomic: a reader sees the previous or the new state, never half a file."""
        write_atomic(
            Path(self.state_dir) / STATE_FILE, json.dumps(asdict(self), indent=2), durable=False
        )

    @classmethod
    def load(cls, state_dir: Path) -> BenchState:
        data = json.loads((state_dir / STATE_FILE).read_text())
        return cls(**data)


@dataclass
class BoardFacts:
    """What a bench needs from a board profile, handed over as JSON.

    The bench process reads this instead of the profile so that it does not
    have to import the schema machinery: that import is most of a simulated
    board's start-up time. The launcher validated the profile already.
    """

    name: str
    kind: str  # "qemu" or "sim"
    board: str
    profile: str
    baud: int
    console_password: str | None
    ssh_username: str
    ssh_password: str | None
    # Debian kernel package to boot instead of the recipe's (a "build" in A/B and bisection).
    kernel_package: str | None = None

    @classmethod
    def of(cls, name: str, kind: str, profile: Any) -> BoardFacts:
        """From a BoardProfile (duck-typed: this module must not import pydantic)."""
        return cls(
            name=name,
            kind=kind,
            board=profile.name,
            profile=str(profile.source),
            baud=profile.console.baud,
            console_password=profile.console.password,
            ssh_username=profile.ssh.username,
            ssh_password=profile.ssh.password,
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> BoardFacts:
        return cls(**json.loads(path.read_text()))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is as dead as a board can be.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def is_bench(pid: int) -> bool:
    """A live bench process; a pid reused by something else (after a reboot) is not one."""
    if not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"harness.vlab.boardhost_process" in cmdline.read()
    except OSError:
        return False


def running(base: Path) -> list[BenchState]:
    """Live benches under `base`, sorted by name; stale folders are removed on the way."""
    found: list[BenchState] = []
    if not base.is_dir():
        return found
    for entry in sorted(base.iterdir()):
        if not entry.is_dir():
            continue
        state = _load_live(entry)
        if state is not None:
            found.append(state)
    return found


def _load_live(entry: Path) -> BenchState | None:
    """The entry's state if its bench is alive; a dead bench's folder is removed.

    Only folders marked as a bench's (`bench.pid`, written the moment a folder
    is claimed) are ever removed: the lab folder may be one a user shares with
    other files, and cleaning up must never delete what the harness did not make.
    """
    pid = _read_pid(entry)
    if pid is None:
        return None
    try:
        state = BenchState.load(entry)
    except FileNotFoundError:
        # Still starting: the pid is the launcher's, then the bench's.
        if not pid_alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
        return None
    except (ValueError, TypeError):
        state = None
    if state is None or not is_bench(state.pid):
        if not pid_alive(pid) or state is not None:
            shutil.rmtree(entry, ignore_errors=True)
        return None
    return state


def _read_pid(entry: Path) -> int | None:
    try:
        return int((entry / "bench.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def find(base: Path, name: str) -> BenchState:
    """The live bench called `name`, or a UserError listing the ones that exist."""
    for state in running(base):
        if state.name == name:
            return state
    names = ", ".join(s.name for s in running(base)) or "none"
    raise UserError(
        f"no running virtual board named {name!r} in {base} (running: {names})",
        Location(field="name"),
    )


def claim(base: Path, name: str) -> Path:
    """Create and mark the folder for a new bench; refuse a name that is in use."""
    check_name(name)
    base.mkdir(parents=True, exist_ok=True)
    entry = base / name
    if entry.exists():
        _load_live(entry)  # removes it if it is a dead bench's
        if entry.exists():
            live = _read_pid(entry)
            reason = (
                "is already running (see `harness lab list`)"
                if live is not None
                else f"cannot be used: {entry} exists and is not a bench's folder"
            )
            raise UserError(
                f"a virtual board named {name!r} {reason}",
                Location(field="name"),
                hint="pick another --name or `harness lab down` it first",
            )
    try:
        entry.mkdir(mode=0o700)
    except FileExistsError:
        raise UserError(
            f"a virtual board named {name!r} is being started by someone else right now",
            Location(field="name"),
        ) from None
    write_pid(entry, os.getpid())
    return entry


def write_pid(entry: Path, pid: int) -> None:
    write_atomic(entry / "bench.pid", f"{pid}\n", durable=False)
