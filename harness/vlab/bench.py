"""The bench: one process per running virtual board, like a lab bench with a serial adapter and a power switch.

A separate process (not a thread of the test run) because the board must
behave like hardware that exists on its own: the console TCP connection
survives power cycles, power can be switched from another process (labgrid's
ExternalPowerDriver runs `harness lab power ...`), and `harness lab up` can
leave a board running for an engineer's shell. It still cannot leak: QEMU
dies with the bench (PDEATHSIG), and the bench dies with its owner (pidfd).

`start_bench()` launches one and waits until it is serving; `python -m
harness.vlab.bench ...` is the process itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from harness.errors import InfraError, Location, UserError
from harness.model.board import BoardProfile, load_board
from harness.vlab import state as lab_state
from harness.vlab.envfile import write_env_file
from harness.vlab.faults import Machine, apply_fault, apply_power
from harness.vlab.lifeline import watch_process
from harness.vlab.qemu_machine import QemuMachine, free_port
from harness.vlab.relay import ConsoleRelay
from harness.vlab.simboard import SimMachine, realize_profile
from harness.vlab.state import BenchState

SIM_PROFILE = Path(__file__).with_name("sim-board.yaml")
# Benches this process started, kept so they can be reaped (they are detached, not waited on).
_children: dict[int, subprocess.Popen[bytes]] = {}
START_TIMEOUT = 120.0  # includes a first-time image build in the bench


def board_kind(profile: BoardProfile) -> str:
    virtual = profile.lab.virtual
    if virtual is None:
        raise UserError(
            f"board '{profile.name}' is not a virtual board (its lab is an env file or a place)",
            Location(profile.source, None, "lab"),
        )
    return "sim" if virtual.machine == "sim" else "qemu"


def resolve_board(ref: str, boards_dir: Path | None = None) -> BoardProfile:
    """A profile path, a name in boards/, or `sim` for the built-in simulated board."""
    from harness.model.board import find_board

    if ref == "sim" and not (boards_dir or Path.cwd() / "boards").joinpath("sim.yaml").exists():
        return load_board(SIM_PROFILE)
    return find_board(ref, boards_dir)


# ---------------------------------------------------------------------------------------------
# The bench process


class Bench:
    def __init__(
        self, name: str, profile: BoardProfile, state_dir: Path, lab_dir: Path, owner: int
    ):
        self.name = name
        self.kind = board_kind(profile)
        if self.kind == "sim" and profile.source is not None:
            profile = realize_profile(profile.source, state_dir)
        self.profile = profile
        self.dir = state_dir
        self.lab_dir = lab_dir
        self.owner = owner
        self.stop = asyncio.Event()
        self.relay = ConsoleRelay(name, state_dir / "console.log")
        self.machine: Machine | None = None
        self.ssh_port = 0
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stop.set)
        watch_process(self.owner, self.stop.set)
        await self.relay.start()
        self.ssh_port = free_port()
        self.machine = self._make_machine()
        server = await asyncio.start_unix_server(self._serve, path=str(self.dir / "control.sock"))
        try:
            write_env_file(self.snapshot(), self.profile, self.lab_dir)
            await self.machine.power_on()
            self.snapshot().save()
            await self.stop.wait()
        finally:
            server.close()
            await self.machine.close()
            await self.relay.close()

    def _make_machine(self) -> Machine:
        if self.kind == "sim":
            return SimMachine(self.name, self.profile, self.dir, self.relay, self.ssh_port)
        from harness.vlab.build import build_lab

        arch = self.profile.identity.arch
        artifacts = build_lab([arch])[arch]
        return QemuMachine(self.name, self.profile, artifacts, self.dir, self.relay, self.ssh_port)

    def snapshot(self) -> BenchState:
        machine = self.machine
        assert machine is not None
        status = machine.status()
        return BenchState(
            name=self.name,
            board=self.profile.name,
            kind=self.kind,
            profile=str(self.profile.source),
            pid=os.getpid(),
            owner=self.owner,
            console_port=self.relay.port,
            ssh_port=self.ssh_port,
            control=str(self.dir / "control.sock"),
            env_file=str(self.dir / "env.yaml"),
            console_log=str(self.dir / "console.log"),
            state_dir=str(self.dir),
            power="on" if machine.powered else "off",
            paused=status.get("run_state") in ("paused", "prelaunch", "debug", "suspended"),
            boot_count=machine.boot_count,
            boot_id=machine.boot_id,
            ssh_host_key=machine.ssh_host_key or None,
            machine_pid=machine.machine_pid,
            extra={k: str(v) for k, v in status.items()},
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            reply = await self._handle(line)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object")
        except ValueError as exc:
            return {"ok": False, "error": f"malformed request: {exc}"}
        machine = self.machine
        assert machine is not None
        facts: dict[str, Any] = {}
        async with self._lock:  # one power/fault action at a time, as with one pair of hands
            try:
                cmd = request.get("cmd")
                if cmd == "power":
                    await apply_power(machine, str(request.get("action")))
                elif cmd == "fault":
                    facts = await apply_fault(
                        machine, self.relay, str(request.get("kind")), bytes=request.get("bytes")
                    )
                elif cmd == "shutdown":
                    self.stop.set()
                elif cmd != "status":
                    return {"ok": False, "error": f"unknown command {cmd!r}"}
            except InfraError as exc:
                return {"ok": False, "error": str(exc)}
            snapshot = self.snapshot()
            snapshot.save()
        return {"ok": True, "state": {**snapshot.__dict__, **facts}}


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.vlab.bench")
    parser.add_argument("--name", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--lab-dir", required=True)
    parser.add_argument("--owner", type=int, required=True)
    args = parser.parse_args(argv)
    state_dir = Path(args.state_dir)
    try:
        bench = Bench(
            args.name, load_board(args.profile), state_dir, Path(args.lab_dir), args.owner
        )
        asyncio.run(bench.run())
    except Exception as exc:
        print(f"bench {args.name}: {exc}", file=sys.stderr, flush=True)
        if not isinstance(exc, (InfraError, UserError)):
            traceback.print_exc()
        return 1
    finally:
        # A bench that is gone leaves nothing that could be mistaken for a running board.
        with contextlib.suppress(FileNotFoundError):
            (state_dir / lab_state.STATE_FILE).unlink()
    shutil.rmtree(state_dir, ignore_errors=True)
    return 0


# ---------------------------------------------------------------------------------------------
# Launching and stopping benches (used by the CLI and the pytest fixtures)


def start_bench(
    profile: BoardProfile,
    name: str,
    *,
    lab_dir: Path,
    owner: int,
    timeout: float = START_TIMEOUT,
) -> BenchState:
    """Start a detached bench for `profile` and return its state once it serves the board.

    The bench gets its own session, so a Ctrl-C meant for the caller does not
    take the board down; its lifetime is bound to `owner` instead.
    """
    board_kind(profile)
    state_dir = lab_state.claim(lab_dir, name)
    log = open(state_dir / "bench.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.vlab.bench",
                "--name",
                name,
                "--profile",
                str(profile.source),
                "--state-dir",
                str(state_dir),
                "--lab-dir",
                str(lab_dir),
                "--owner",
                str(owner),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()
    (state_dir / "bench.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            detail = _tail(state_dir / "bench.log")
            shutil.rmtree(state_dir, ignore_errors=True)
            raise InfraError(f"bench for '{name}' exited during start-up (code {code}): {detail}")
        try:
            state = BenchState.load(state_dir)
            break
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            shutil.rmtree(state_dir, ignore_errors=True)
            raise InfraError(f"bench for '{name}' did not come up within {timeout:.0f} s")
        time.sleep(0.005)
    _children[proc.pid] = proc
    return state


def stop_bench(state: BenchState, timeout: float = 15.0) -> None:
    """Ask the bench to power down and exit; kill it if it does not. Idempotent."""
    from harness.vlab.control import BenchUnreachable, request

    with contextlib.suppress(BenchUnreachable, InfraError):
        request(state.control, {"cmd": "shutdown"}, timeout=timeout)
    deadline = time.monotonic() + timeout
    while lab_state.pid_alive(state.pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    _reap(state.pid)
    shutil.rmtree(state.state_dir, ignore_errors=True)


def _reap(pid: int) -> None:
    """Collect the bench's exit status if it was our child, so no zombie remains."""
    proc = _children.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def wait_for_console(
    log_path: str | Path, pattern: str, timeout: float, start: int = 0
) -> re.Match[str]:
    """Wait until the console log (from byte `start`) matches `pattern`; InfraError on timeout."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    text = ""
    while True:
        try:
            with open(log_path, "rb") as log:
                log.seek(start)
                text = log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        match = regex.search(text)
        if match:
            return match
        if time.monotonic() > deadline:
            tail = text[-300:].replace("\r", "")
            raise InfraError(
                f"console {log_path} did not show /{pattern}/ within {timeout:.0f} s; last output: {tail!r}"
            )
        time.sleep(0.02)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "no output"


if __name__ == "__main__":
    sys.exit(_main())
