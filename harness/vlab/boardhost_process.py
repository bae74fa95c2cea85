"""The bench process itself: serves one virtual board until told to stop or its owner dies.

Started by `harness.vlab.boardhost.start_bench` as `python -m harness.vlab.boardhost_process`.
It imports no schema machinery (pydantic) unless it runs a QEMU board: for a
simulated board, interpreter start-up is most of the time to a login prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from harness.errors import InfraError, UserError
from harness.vlab import state as lab_state
from harness.vlab.envfile import write_env_file
from harness.vlab.faults import Machine, apply_fault, apply_power
from harness.vlab.lifeline import watch_process
from harness.vlab.ports import free_port
from harness.vlab.relay import ConsoleRelay
from harness.vlab.simboard import SimMachine
from harness.vlab.state import BenchState, BoardFacts

FACTS_FILE = "board.json"
TRACE_ENV = "HARNESS_CONSOLE_TRACE"


class Bench:
    """One board's serial adapter (relay), power switch and buttons (machine), behind a socket.

    Power and fault requests are served one at a time, as a person at a real
    bench has one pair of hands; a status request waits for a power-on in
    progress rather than reporting a half-started board.
    """

    def __init__(self, facts: BoardFacts, state_dir: Path, lab_dir: Path, owner: int):
        self.facts = facts
        self.name = facts.name
        self.kind = facts.kind
        self.dir = state_dir
        self.lab_dir = lab_dir
        self.owner = owner
        self.stop = asyncio.Event()
        # HARNESS_CONSOLE_TRACE=1: time every console chunk (relay.py), for bench/boot.py.
        trace = state_dir / "console.trace" if os.environ.get(TRACE_ENV) == "1" else None
        self.relay = ConsoleRelay(facts.name, state_dir / "console.log", trace=trace)
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
            write_env_file(self.snapshot(), self.facts, self.lab_dir)
            await self.machine.power_on()
            self.snapshot().save()
            await self.stop.wait()
        finally:
            server.close()
            await self.machine.close()
            await self.relay.close()

    def _make_machine(self) -> Machine:
        if self.kind == "sim":
            password = self.facts.console_password
            return SimMachine(self.name, password, self.dir, self.relay, self.ssh_port)
        from harness.model.board import load_board
        from harness.vlab.build import build_lab
        from harness.vlab.qemu_machine import QemuMachine

        profile = load_board(self.facts.profile)
        arch = profile.identity.arch
        overrides = {"kernel": self.facts.kernel_package} if self.facts.kernel_package else {}
        artifacts = build_lab([arch], overrides=overrides)[arch]
        image = None
        if self.facts.os_image:
            from harness.vlab.osimage import deploy

            image = deploy(Path(self.facts.os_image), profile.boot.flow, self.dir / "image")
        return QemuMachine(
            self.name, profile, artifacts, self.dir, self.relay, self.ssh_port, image=image
        )

    def snapshot(self) -> BenchState:
        machine = self.machine
        assert machine is not None
        status = machine.status()
        return BenchState(
            name=self.name,
            board=self.facts.board,
            kind=self.kind,
            profile=self.facts.profile,
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
    parser = argparse.ArgumentParser(prog="python -m harness.vlab.boardhost_process")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--lab-dir", required=True)
    parser.add_argument("--owner", type=int, required=True)
    args = parser.parse_args(argv)
    state_dir = Path(args.state_dir)
    try:
        facts = BoardFacts.load(state_dir / FACTS_FILE)
        asyncio.run(Bench(facts, state_dir, Path(args.lab_dir), args.owner).run())
    except Exception as exc:
        print(f"bench in {state_dir}: {exc}", file=sys.stderr, flush=True)
        if not isinstance(exc, (InfraError, UserError)):
            traceback.print_exc()
        return 1
    finally:
        # A bench that is gone leaves nothing that could be mistaken for a running board.
        with contextlib.suppress(FileNotFoundError):
            (state_dir / lab_state.STATE_FILE).unlink()
    shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
