"""Starting labgrid's own services: a coordinator, and an exporter for one lab host.

They are labgrid's programs, unchanged (`labgrid-coordinator`, `labgrid-exporter`),
so the virtual farm exercises exactly what a physical farm runs. Each is started
with PR_SET_PDEATHSIG, so none outlives the `harness lab export` that started it,
and each is "up" only on evidence: the coordinator once it accepts a TCP
connection, the exporter once the coordinator lists its resources.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InfraError
from harness.vlab.lifeline import die_with_parent

# Bounds for a hang only: a loaded 2-core host starts either in a few seconds.
START_GUARD = 120.0


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise InfraError(f"{name} is not installed (it comes with labgrid: pip install labgrid)")
    return path


def free_address() -> str:
    """`127.0.0.1:PORT` with a port that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def _tail(log: Path, chars: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-chars:].strip() or "no output"
    except OSError:
        return "no log"


@dataclass
class Service:
    """One running labgrid program and the log it writes."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it lingers; always reaped."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)


def _spawn(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    cwd.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            preexec_fn=die_with_parent,
            close_fds=True,
        )


def start_coordinator(folder: Path, address: str) -> Service:
    """A coordinator listening on `address`; its state (places.yaml) lives in `folder`."""
    log = folder / "coordinator.log"
    proc = _spawn([_tool("labgrid-coordinator"), "-l", address], folder, log)
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + START_GUARD
    while True:
        if proc.poll() is not None:
            raise InfraError(f"labgrid-coordinator exited ({proc.returncode}): {_tail(log)}")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            return Service("coordinator", proc, log)
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise InfraError(
                    f"labgrid-coordinator never listened on {address}: {_tail(log)}"
                ) from None
            time.sleep(0.05)


def start_exporter(folder: Path, coordinator: str, name: str, config: Path) -> Service:
    """An exporter called `name` serving `config`; the caller waits for its resources."""
    log = folder / f"exporter-{name}.log"
    argv = [
        _tool("labgrid-exporter"),
        "-c",
        coordinator,
        "--name",
        name,
        "--hostname",
        "127.0.0.1",
        str(config),
    ]
    return Service(f"exporter {name}", _spawn(argv, folder, log), log)
