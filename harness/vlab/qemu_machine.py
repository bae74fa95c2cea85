"""A QEMU virtual board as the bench sees it: a power switch, buttons (QMP) and a UART.

Power-on launches QEMU with its CPUs stopped (`-S`), attaches the bench to the
console socket, and only then lets the CPUs run, so not one byte of boot
output is lost to QEMU's "no reader, drop it" console socket. Power-off kills
QEMU outright: a guest gets no chance to shut down, exactly like a pulled
plug. Every launch reuses the same SSH forward port, so a labgrid environment
stays valid across power cycles.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import InfraError
from harness.vlab.faults import ProcessMachine
from harness.vlab.lifeline import die_with_parent, watch_process
from harness.vlab.qmp import QMPClient, QMPError
from harness.vlab.relay import ConsoleRelay

if TYPE_CHECKING:
    from harness.model.board import BoardProfile

SOCKET_WAIT = 30.0  # QEMU creates its sockets within milliseconds; this only covers a loaded host


class QemuMachine(ProcessMachine):
    kind = "qemu"

    def __init__(
        self,
        name: str,
        profile: BoardProfile,
        artifacts: Any,
        state_dir: Path,
        relay: ConsoleRelay,
        ssh_port: int,
    ):
        self.name = name
        self.profile = profile
        self.artifacts = artifacts
        self.dir = state_dir
        self.relay = relay
        self.ssh_port = ssh_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.qmp: QMPClient | None = None
        self.boot_count = 0
        self.boot_id: str | None = None  # the guest's own kernel boot id; read it over SSH/console
        self.ssh_host_key = str(getattr(artifacts, "host_key_line", "") or "")
        self.last_exit: int | None = None
        self._console: socket.socket | None = None
        self._cancel_watch = lambda: None
        self.sockets = {
            "console": state_dir / "console.sock",
            "qmp": state_dir / "qmp.sock",
            "agent": state_dir / "agent.sock",
        }

    def command(self) -> list[str]:
        from harness.vlab.qemu_cmd import qemu_command

        argv = qemu_command(
            self.profile,
            self.artifacts,
            run_dir=self.dir,
            console_socket=self.sockets["console"],
            ssh_port=self.ssh_port,
            qmp_socket=self.sockets["qmp"],
            agent_socket=self.sockets["agent"],
            console_log=self.dir / "qemu-console.log",
        )
        return [*argv, "-S"]

    # -- power --------------------------------------------------------------------------------

    async def power_on(self) -> None:
        if self.powered:
            return
        for path in self.sockets.values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        argv = self.command()
        log = open(self.dir / "qemu.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            # Spawned from the event loop's (main) thread: PDEATHSIG is tied to the forking thread.
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=die_with_parent,
                cwd=self.dir,
            )
        except FileNotFoundError:
            raise InfraError(f"QEMU binary {argv[0]} not found (run scripts/setup.sh)") from None
        finally:
            log.close()
        proc = self.proc
        self._cancel_watch = watch_process(proc.pid, lambda: self._exited(proc))
        try:
            console = await self._connect_unix(self.sockets["console"])
            self._console = console
            self.relay.attach(console.fileno())
            qmp = QMPClient(self.sockets["qmp"])
            await asyncio.to_thread(qmp.connect, SOCKET_WAIT)
            self.qmp = qmp
            await asyncio.to_thread(qmp.execute, "cont")
        except (InfraError, OSError) as exc:
            await self.power_off()
            raise InfraError(
                f"QEMU for '{self.name}' did not start: {exc}; {self._log_tail()}"
            ) from None
        self.boot_count += 1

    async def power_off(self) -> None:
        proc, self.proc = self.proc, None
        self._cancel_watch()
        self._cancel_watch = lambda: None
        self._disconnect()
        if proc is not None and proc.poll() is None:
            proc.kill()
            await asyncio.to_thread(proc.wait)
            self.last_exit = proc.returncode

    async def power_cycle(self) -> None:
        await self.power_off()
        await self.power_on()

    def _exited(self, proc: subprocess.Popen[bytes]) -> None:
        """QEMU ended on its own (crash, or a guest poweroff without -no-shutdown): board is off."""
        if self.proc is not proc:
            return
        self.last_exit = proc.wait()
        self.proc = None
        self._disconnect()

    def _disconnect(self) -> None:
        """Let go of a QEMU that is gone or going: console relay, console socket, QMP."""
        self.relay.detach()
        if self._console is not None:
            self._console.close()
            self._console = None
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None

    # -- buttons ------------------------------------------------------------------------------

    async def hang(self) -> None:
        await self._qmp("stop")

    async def resume(self) -> None:
        await self._qmp("cont")

    async def reset(self) -> None:
        await self._qmp("system_reset")

    async def panic(self) -> None:
        self._require_power("panic")
        try:
            agent = await self._connect_unix(self.sockets["agent"], wait=2.0)
        except InfraError as exc:
            raise InfraError(f"the fault agent of '{self.name}' is not reachable: {exc}") from None
        try:
            agent.sendall(b"panic\n")
            # The agent acknowledges before it acts; wait for that so the request is not lost.
            agent.settimeout(10.0)
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.to_thread(agent.recv, 64)
        finally:
            agent.close()

    def status(self) -> dict[str, object]:
        if not self.powered or self.qmp is None:
            facts: dict[str, object] = {"run_state": "off", "last_exit": self.last_exit}
            if self.last_exit not in (None, 0, -9):  # 0: guest powered off; -9: we did
                facts["error"] = self._log_tail()
            return facts
        try:
            if not self.qmp.connected:
                self.qmp.connect(wait=1.0)
            return {"run_state": self.qmp.status()}
        except QMPError as exc:
            return {"run_state": "unknown", "error": str(exc)}

    async def close(self) -> None:
        await self.power_off()

    # -- helpers ------------------------------------------------------------------------------

    async def _qmp(self, command: str) -> None:
        self._require_power(command)
        assert self.qmp is not None
        if not self.qmp.connected:
            # A timed-out command leaves the QMP stream unusable; QEMU accepts a new client.
            await asyncio.to_thread(self.qmp.connect, SOCKET_WAIT)
        await asyncio.to_thread(self.qmp.execute, command)

    def _require_power(self, what: str) -> None:
        if not self.powered or self.qmp is None:
            raise InfraError(f"cannot {what} virtual board '{self.name}': it is powered off")

    async def _connect_unix(self, path: Path, wait: float = SOCKET_WAIT) -> socket.socket:
        deadline = time.monotonic() + wait
        while True:
            if not self.powered:
                raise InfraError("QEMU exited during start-up")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                return sock
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise InfraError(f"{path.name} did not appear: {exc}") from None
                await asyncio.sleep(0.01)

    def _log_tail(self) -> str:
        try:
            text = (self.dir / "qemu.log").read_text(errors="replace").strip()
        except OSError:
            return "no QEMU output"
        return "QEMU said: " + (" ".join(text.splitlines()[-3:]) or "nothing")
