"""The faults a bench can inflict on its board, and what each one really does.

Each fault is the virtual counterpart of something that happens on a real
bench, so the harness's reaction to it can be tested without a broken board:

| kind      | QEMU board                         | simulated board                      | real-world cause          |
|-----------|------------------------------------|--------------------------------------|---------------------------|
| hang      | QMP `stop` (CPU frozen)            | SIGSTOP every process of the board   | hard lock-up              |
| resume    | QMP `cont`                         | SIGCONT                              | (lock-up clears)          |
| reset     | QMP `system_reset`                 | power cycle                          | watchdog / brown-out reset|
| panic     | guest agent writes `panic`         | console panic line, then frozen      | kernel oops -> panic      |
| power-off | QEMU killed                        | namespace killed                     | plug pulled               |
| power-on  | QEMU relaunched, same ports        | namespace restarted, new boot id     | plug back in              |
| noise     | N random bytes to the console client (both kinds)                         | bad cable / ground loop   |
"""

from __future__ import annotations

import subprocess
from typing import Any, Protocol

from harness.errors import InfraError
from harness.vlab.relay import ConsoleRelay

FAULT_KINDS = ("hang", "resume", "reset", "panic", "power-off", "power-on", "noise")
POWER_ACTIONS = ("on", "off", "cycle")
MAX_NOISE_BYTES = 1 << 20


class Machine(Protocol):
    """What a bench needs from the thing it powers: a QEMU process or a simulated board."""

    kind: str
    boot_count: int
    boot_id: str | None
    ssh_host_key: str

    @property
    def powered(self) -> bool: ...
    @property
    def machine_pid(self) -> int | None: ...
    async def power_on(self) -> None: ...
    async def power_off(self) -> None: ...
    async def power_cycle(self) -> None: ...
    async def hang(self) -> None: ...
    async def resume(self) -> None: ...
    async def reset(self) -> None: ...
    async def panic(self) -> None: ...
    def status(self) -> dict[str, object]: ...
    async def close(self) -> None: ...


class ProcessMachine:
    """A machine that is one child process while powered (QEMU, or the simulated board's init)."""

    proc: subprocess.Popen[bytes] | None = None

    @property
    def powered(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def machine_pid(self) -> int | None:
        return self.proc.pid if self.powered and self.proc else None


async def apply_power(machine: Machine, action: str) -> None:
    if action not in POWER_ACTIONS:
        raise InfraError(f"unknown power action {action!r} (one of: {', '.join(POWER_ACTIONS)})")
    if action == "on":
        await machine.power_on()
    elif action == "off":
        await machine.power_off()
    else:
        await machine.power_cycle()


async def apply_fault(
    machine: Machine, relay: ConsoleRelay, kind: str, **options: Any
) -> dict[str, Any]:
    """Inflict one fault; returns facts about it for the reply (e.g. the noise bytes sent)."""
    if kind not in FAULT_KINDS:
        raise InfraError(f"unknown fault {kind!r} (one of: {', '.join(FAULT_KINDS)})")
    if kind == "noise":
        count = int(options.get("bytes") or 64)
        if not 0 < count <= MAX_NOISE_BYTES:
            raise InfraError(f"noise must be 1..{MAX_NOISE_BYTES} bytes, got {count}")
        noise = relay.inject_noise(count)
        return {"noise_hex": noise.hex()}
    if kind == "power-off":
        await machine.power_off()
    elif kind == "power-on":
        await machine.power_on()
    elif kind == "hang":
        await machine.hang()
    elif kind == "resume":
        await machine.resume()
    elif kind == "reset":
        await machine.reset()
    elif kind == "panic":
        await machine.panic()
    return {}
