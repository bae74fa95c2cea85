"""`Board`: the one object the run engine uses to reach a unit.

It hides whether the unit is a QEMU board, a simulated one or a physical board
on a lab bench: all three are a labgrid target built from an environment file
with a serial console (`ConsoleProtocol`), a power switch (`PowerProtocol`) and
an SSH service (`NetworkService`).

API (errors in harness/lab/errors.py):
    board = Board.open(profile, env_file, console_log=run_dir / "console.log")
    board.boot()             power off -> on -> (bootloader) -> logged-in shell; boot seconds
    board.ensure_shell()     recover: resync, else the state machine (machine.py) drives the
                             board to a shell from whatever state it is in
    board.state              the state last observed (states.py), without touching the board
    board.machine.drive(BoardState.BOOTLOADER)   any state the machine knows
    board.console.run(cmd)   CommandResult (stdout+stderr merged), see console.py
    board.ssh.run(cmd)       CommandResult (stderr apart), put/get, see ssh.py
    board.reboot()           `reboot` on the console; confirmed by a new boot id; boot seconds
    board.power_cycle()      through the power switch; confirmed likewise; boot seconds
    board.power_on()/power_off()   raw power switch, no waiting
    board.boot_id(), board.software_identity(), board.crash_events, board.close()

`reboot()`, `power_cycle()` and `boot()` raise `BootFailed` when the board did
not come back (no shell, same boot id, SSH never answered) and `PowerFault`
when the switch failed; they never report success on a board that did not
really restart. After each boot the board is "up" only once its devices have
settled (settle.py); `last_settle` says how long that took.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labgrid import Environment
from labgrid.exceptions import NoDriverFoundError, NoResourceFoundError

from harness.errors import HarnessError, InfraError, Location, UserError
from harness.lab.console import ConsoleSession
from harness.lab.consolelog import ConsoleLog
from harness.lab.crash_patterns import CrashPattern
from harness.lab.crashwatch import CrashEvent, CrashWatch
from harness.lab.errors import BoardCrashed, BootFailed, NoRestart, ShellUnresponsive
from harness.lab.hostkeys import HostKeyPolicy
from harness.lab.machine import BoardMachine, MachineStats
from harness.lab.settle import SettleReport, wait_for_devices
from harness.lab.ssh import SSHSession
from harness.lab.states import BoardState
from harness.model.board import BoardProfile

RESTART_SIGNS = (r"reboot: Restarting system", r"Requesting system reboot", r"Restarting system")
KERNEL_BANNER = r"Linux version \d+\.\d+\S* \("
BOOT_ID = "cat /proc/sys/kernel/random/boot_id"
# Crashes or resets tolerated while a boot comes up, before the boot counts as failed.
COME_UP_TRIES = 3
# A logged-in shell gets this long to answer its resync probe before the machine takes over.
RESYNC_WAIT = 2.0


@dataclass(frozen=True)
class SoftwareIdentity:
    """What software the unit runs, as run.json's `software` block records it."""

    kernel_release: str
    kernel_version: str
    os_release: str
    os_version_id: str
    bootloader: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _options(env: Environment, target: str) -> dict[str, Any]:
    """Top-level `options:` of the env file, overridden by the target's own `options:`."""
    merged: dict[str, Any] = dict(env.config.data.get("options") or {})
    target_cfg = (env.config.data.get("targets") or {}).get(target) or {}
    merged.update(target_cfg.get("options") or {})
    # The virtual lab pins its boards' keys under this name (harness/vlab/envfile.py).
    if "ssh_host_key" not in merged and merged.get("harness_ssh_host_key"):
        merged["ssh_host_key"] = merged["harness_ssh_host_key"]
    return merged


class Board:
    """A unit of a board model, reached through a labgrid target."""

    def __init__(
        self,
        profile: BoardProfile,
        target: Any,
        console_log: ConsoleLog,
        host_keys: HostKeyPolicy,
    ):
        self.profile = profile
        self.target = target
        self.log = console_log
        self.host_keys = host_keys
        loader = profile.boot.loader
        extra: list[CrashPattern] = []
        if loader is not None and loader.banner:
            extra.append(
                CrashPattern(
                    "bootloader-banner",
                    re.compile(loader.banner),
                    "fatal",
                    f"the bootloader ({loader.name}) started",
                    2,
                    boot_marker="bootloader",
                )
            )
        self.watch = CrashWatch(extra=extra)
        self.console = ConsoleSession(
            target.get_driver("ConsoleProtocol"),
            profile.console,
            console_log,
            self.watch,
            bootloader=loader,
        )
        self._bootloader_line = re.compile(
            f"(?:{loader.banner})[^\r\n]*" if loader is not None and loader.banner else r"(?!)"
        )
        self.console.on_read.append(self._spot_bootloader)
        self._power = self._optional_driver("PowerProtocol")
        if type(self._power).__name__ == "ManualPowerDriver" and not sys.stdin.isatty():
            # It asks a person to switch the power; an unattended run has nobody to ask.
            console_log.note("ManualPowerDriver ignored: no terminal to ask for a power cycle")
            self._power = None
        self._service = self._optional_resource("NetworkService")
        self._ssh: SSHSession | None = None
        self.bootloader: str | None = None
        self.machine = BoardMachine(self.console, self._power, boot_timeout=profile.boot.timeout)
        self.last_settle: SettleReport | None = None
        self.boot_times: list[float] = []

    @classmethod
    def open(
        cls,
        profile: BoardProfile,
        env_file: str | Path,
        console_log: str | Path | None = None,
        target: str | None = None,
    ) -> Board:
        """Build the labgrid target of `env_file` and attach the console (no login yet)."""
        env_path = Path(env_file)
        name = target or profile.lab.target
        if not env_path.is_file():
            raise UserError("labgrid environment file not found", Location(env_path))
        try:
            env = Environment(str(env_path))
            lg_target = env.get_target(name)
        except HarnessError:
            raise
        except Exception as exc:  # labgrid reports bad env files with many exception types
            raise UserError(
                f"cannot load the labgrid environment: {exc}", Location(env_path)
            ) from exc
        if lg_target is None:
            raise UserError(
                f"no target {name!r} in the labgrid environment",
                Location(env_path, field=f"targets.{name}"),
            )
        log = ConsoleLog(console_log)
        try:
            board = cls(profile, lg_target, log, HostKeyPolicy.from_options(_options(env, name)))
        except NoDriverFoundError as exc:
            log.close()
            raise UserError(
                f"target {name!r} has no serial console driver (SerialDriver): {exc}",
                Location(env_path, field=f"targets.{name}.drivers"),
            ) from exc
        except Exception as exc:
            log.close()
            raise InfraError(
                f"cannot open the console of target {name!r} in {env_path}: {exc}"
            ) from exc
        log.note(f"board {profile.name} opened from {env_path}")
        return board

    def _optional_driver(self, protocol: str) -> Any:
        try:
            return self.target.get_driver(protocol)
        except NoDriverFoundError:
            return None

    def _optional_resource(self, cls: str) -> Any:
        try:
            return self.target.get_resource(cls)
        except NoResourceFoundError:
            return None

    def _spot_bootloader(self, data: bytes) -> None:
        match = self._bootloader_line.search(data.decode("utf-8", "replace"))
        if match:
            self.bootloader = match.group(0).strip()

    # --- SSH ----------------------------------------------------------------------------
    @property
    def ssh(self) -> SSHSession:
        """The SSH session, created on first use from the target's NetworkService."""
        if self._ssh is None:
            if self._service is None:
                raise InfraError("this board's labgrid target has no NetworkService: no SSH access")
            self._ssh = SSHSession.from_network_service(
                self._service, self.host_keys, key_file=self.profile.ssh.key_file, log=self.log
            )
            if self.profile.ssh.password is not None and self._ssh.password is None:
                self._ssh.password = self.profile.ssh.password
        return self._ssh

    @property
    def has_ssh(self) -> bool:
        return self._service is not None

    # --- power --------------------------------------------------------------------------
    def power_on(self) -> None:
        """Switch on, expecting a boot (no waiting)."""
        self.machine.power_on()

    def power_off(self) -> None:
        """Cut power. The shell and SSH link die with it."""
        self.machine.power_off()

    def _drop_ssh(self) -> None:
        if self._ssh is not None:
            self._ssh.close()

    @property
    def state(self) -> BoardState:
        """The state last observed on the console (states.py), without touching the board."""
        return self.machine.state

    # --- boot ---------------------------------------------------------------------------
    def boot(self) -> float:
        """From power-off to a logged-in shell (and SSH answering); seconds from power on."""
        self.power_off()
        self.console.drain(quiet=0.2)
        started = time.monotonic()
        self.power_on()
        return self._come_up(started, previous_boot_id=None)

    def power_cycle(self) -> float:
        """Power-cycle through the switch and confirm a new boot; seconds from the cycle."""
        previous = self._current_boot_id()
        started = time.monotonic()
        self.machine.power_cycle()
        return self._come_up(started, previous)

    def reboot(self, command: str = "reboot", restart_within: float | None = None) -> float:
        """`reboot` (or another command that resets the board, e.g. arming a watchdog) on the
        console shell; confirmed by a new boot id; seconds until back.

        With `restart_within`, a board that shows no sign of restarting in that many seconds
        raises NoRestart (a board fault: the command did not reset it) instead of BootFailed.
        """
        previous = self.boot_id()
        self.console.drain()
        self.watch.expect_boot()
        self.console.acknowledge_crashes()
        if self._ssh is not None:
            self._ssh.close()
        started = time.monotonic()
        self.log.note(f"reboot requested: {command}")
        self.console.send(command + "\n")
        self.console.ready = False
        # Wait for a sign of the restart before driving the board, so the old shell, still
        # alive for a moment, cannot answer a probe and pass for the new one.
        signs = [KERNEL_BANNER, *RESTART_SIGNS]
        if self.profile.boot.loader is not None and self.profile.boot.loader.banner:
            signs.append(self.profile.boot.loader.banner)
        try:
            self.console.expect(signs, restart_within or self.profile.boot.timeout)
        except ShellUnresponsive as exc:
            if restart_within is not None:
                self.watch.arm()  # no boot came: a banner from now on is a reset again
                raise NoRestart(
                    f"board {self.profile.name} did not restart within {restart_within:g} s "
                    f"of {command!r}"
                ) from exc
            raise BootFailed(
                f"board {self.profile.name} showed no sign of rebooting: {exc}"
            ) from exc
        self.console.evidence.set_phase(BoardState.BOOTING, "restarting", "reboot")
        return self._come_up(started, previous)

    def _come_up(self, started: float, previous_boot_id: str | None) -> float:
        """Shell, a new boot id, SSH, settled devices: the board is back only when all hold."""
        for attempt in range(1, COME_UP_TRIES + 1):
            try:
                self.machine.drive(BoardState.SHELL)
                current = self.boot_id()
                if previous_boot_id is not None and current == previous_boot_id:
                    raise BootFailed(
                        f"board {self.profile.name} answered but did not restart "
                        f"(boot id unchanged: {current})"
                    )
                up_at = time.monotonic()
                self.settle()
                break
            except BoardCrashed as crash:
                # It restarted or crashed again before it was up: still part of this boot.
                self.log.note(f"board {crash.kind} while coming up (try {attempt}): driving on")
                if attempt == COME_UP_TRIES:
                    raise BootFailed(
                        f"board {self.profile.name} kept failing while coming up: {crash}"
                    ) from crash
        elapsed = up_at - started
        self.boot_times.append(elapsed)
        self.log.note(f"board up after {elapsed:.2f} s (boot id {current})")
        if self.has_ssh:
            self.ssh.close()
            self.ssh.wait_ready(max(started + self.profile.boot.timeout - time.monotonic(), 5.0))
        return elapsed

    def settle(self) -> SettleReport:
        """Wait (bounded) until the device set is complete and stable; see settle.py."""
        report = wait_for_devices(
            self.console, self.profile.inventory, self.profile.boot.settle_timeout
        )
        self.last_settle = report
        if report.settled:
            self.log.note(f"devices settled after {report.seconds:.2f} s ({report.looks} looks)")
        else:
            self.log.note(
                f"devices still not settled after {report.seconds:.2f} s; missing: "
                + (", ".join(report.missing) or "nothing, but the set kept changing")
            )
        return report

    # --- recovery -----------------------------------------------------------------------
    def ensure_shell(self) -> None:
        """Make the console shell usable again: a resync if it is logged in, else the state
        machine drives the board to a shell from wherever it is (waiting out a boot,
        logging in, power-cycling a crashed or stuck board).

        Raises LoginFailed (wrong credentials: a cycle would not help) or BootFailed.
        """
        if self.console.ready and self.console.resync(RESYNC_WAIT):
            return
        self.console.ready = False
        # The shell was lost, often because the board reset or crashed: an SSH link opened
        # before may point at a machine that no longer exists (a user-mode network keeps the
        # host's end open), so the next SSH command reconnects instead of dying on it.
        self._drop_ssh()
        self.machine.drive(BoardState.SHELL)

    # --- facts --------------------------------------------------------------------------
    def boot_id(self) -> str:
        """The kernel's random boot id: changes on every boot, so it proves a restart."""
        result = self.console.run(BOOT_ID, timeout=10)
        boot_id = result.stdout.strip()
        if result.exit_status != 0 or not boot_id:
            raise InfraError(f"cannot read the boot id: {result.stdout.strip()!r}")
        return boot_id

    def _current_boot_id(self) -> str | None:
        if not self.console.ready:
            return None
        try:
            return self.boot_id()
        except HarnessError:
            return None

    def software_identity(self) -> SoftwareIdentity:
        """Kernel release/version, OS PRETTY_NAME/VERSION_ID, and the bootloader banner if seen."""
        result = self.console.run(
            "uname -r; uname -v; (. /etc/os-release 2>/dev/null; "
            'echo "${PRETTY_NAME:-}"; echo "${VERSION_ID:-}")',
            timeout=10,
        )
        lines = [*result.stdout.splitlines(), "", "", "", ""]
        return SoftwareIdentity(
            kernel_release=lines[0].strip(),
            kernel_version=lines[1].strip(),
            os_release=lines[2].strip(),
            os_version_id=lines[3].strip(),
            bootloader=self.bootloader,
        )

    @property
    def machine_stats(self) -> MachineStats:
        """How hard the board was to drive (transitions, pokes, retyped lines, power cycles)."""
        return self.machine.stats

    @property
    def crash_events(self) -> list[CrashEvent]:
        """Every crash/reset the watch saw on this board's console so far (all severities)."""
        return list(self.watch.events)

    def close(self) -> None:
        """Log the console out (echo back on, login prompt), close SSH and the console log."""
        try:
            if self.console.ready:
                self.console.logout()
        except HarnessError:
            pass
        if self._ssh is not None:
            self._ssh.close()
        self.target.deactivate_all_drivers()
        self.log.close()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
