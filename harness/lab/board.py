"""`Board`: the one object the run engine uses to reach a unit.

It hides whether the unit is a QEMU board, a simulated one or a physical board
on a lab bench: all three are a labgrid target built from an environment file
with a serial console (`ConsoleProtocol`), a power switch (`PowerProtocol`) and
an SSH service (`NetworkService`).

API (errors in harness/lab/errors.py):
    board = Board.open(profile, env_file, console_log=run_dir / "console.log")
    board.boot()             power off -> on -> (U-Boot) -> logged-in shell; boot seconds
    board.ensure_shell()     recover: resync, re-login, power cycle if the console is dead
    board.console.run(cmd)   CommandResult (stdout+stderr merged), see console.py
    board.ssh.run(cmd)       CommandResult (stderr apart), put/get, see ssh.py
    board.reboot()           `reboot` on the console; confirmed by a new boot id; boot seconds
    board.power_cycle()      through the power switch; confirmed likewise; boot seconds
    board.power_on()/power_off()   raw power switch, no waiting
    board.boot_id(), board.software_identity(), board.crash_events, board.close()

`reboot()`, `power_cycle()` and `boot()` raise `BootFailed` when the board did
not come back (no shell, same boot id, SSH never answered) and `PowerFault`
when the switch failed; they never report success on a board that did not
really restart.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labgrid import Environment
from labgrid.exceptions import NoDriverFoundError, NoResourceFoundError

from harness.errors import HarnessError, InfraError, Location, UserError
from harness.lab.console import ConsoleSession
from harness.lab.consolelog import ConsoleLog
from harness.lab.crash_patterns import UNEXPECTED_RESET, CrashPattern
from harness.lab.crashwatch import CrashEvent, CrashWatch
from harness.lab.errors import (
    BootFailed,
    LoginFailed,
    LoginTimeout,
    PowerFault,
    ShellUnresponsive,
)
from harness.lab.hostkeys import HostKeyPolicy
from harness.lab.ssh import SSHSession
from harness.model.board import BoardProfile

# Crash kinds after which the board cannot answer until it is powered again.
DEAD_AFTER = frozenset({"panic", "no-root-fs", "init-segfault"})
# How long ensure_shell tries a re-login before it power-cycles.
RELOGIN_TIMEOUT = 10.0
KERNEL_BANNER = r"Linux version \d+\.\d+\S* \("
AUTOBOOT = r"(?i)hit any key to stop autoboot|press any key to stop|autoboot in \d+"
# What kernels and init systems print on the way down during a deliberate reboot.
RESTART_SIGNS = (r"reboot: Restarting system", r"Requesting system reboot", r"Restarting system")
BOOT_ID = "cat /proc/sys/kernel/random/boot_id"


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
        banner = CrashPattern(
            "bootloader-banner",
            re.compile(profile.boot.bootloader_banner),
            "fatal",
            "the bootloader started",
            2,
            boot_marker="bootloader",
        )
        self.watch = CrashWatch(extra=[banner] if profile.boot.flow == "u-boot" else [])
        self.console = ConsoleSession(
            target.get_driver("ConsoleProtocol"), profile.console, console_log, self.watch
        )
        self.console.on_read.append(self._spot_bootloader)
        self._power = self._optional_driver("PowerProtocol")
        self._service = self._optional_resource("NetworkService")
        self._ssh: SSHSession | None = None
        self.bootloader: str | None = None
        self._logins_at_event = 0

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
        if b"U-Boot" in data or self.profile.boot.flow == "u-boot":
            match = re.search(
                self.profile.boot.bootloader_banner + r"[^\r\n]*", data.decode("utf-8", "replace")
            )
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
    def _switch(self, action: str) -> None:
        if self._power is None:
            raise PowerFault("this board's labgrid target has no power driver (PowerProtocol)")
        self.log.note(f"power {action}")
        try:
            getattr(self._power, action)()
        except Exception as exc:
            raise PowerFault(f"power {action} failed: {exc}") from exc

    def power_on(self) -> None:
        self._switch("on")

    def power_off(self) -> None:
        """Cut power. The shell and SSH link die with it."""
        self._switch("off")
        self.console.ready = False
        if self._ssh is not None:
            self._ssh.close()

    # --- boot ---------------------------------------------------------------------------
    def boot(self) -> float:
        """From power-off to a logged-in shell (and SSH answering); seconds from power on."""
        self.power_off()
        self.console.drain(quiet=0.2)
        self.watch.expect_boot()
        self.console.acknowledge_crashes()
        started = time.monotonic()
        self.power_on()
        return self._come_up(started, previous_boot_id=None)

    def power_cycle(self) -> float:
        """Power-cycle through the switch and confirm a new boot; seconds from the cycle."""
        previous = self._current_boot_id()
        self.power_off()
        # Whatever the old boot still had in flight (the tail of a panic) belongs to it.
        self.console.drain(quiet=0.2)
        self.watch.expect_boot()
        self.console.acknowledge_crashes()
        started = time.monotonic()
        self.power_on()
        return self._come_up(started, previous)

    def reboot(self) -> float:
        """`reboot` on the console shell; confirmed by a new boot id; seconds until back."""
        previous = self.boot_id()
        self.console.drain()
        self.watch.expect_boot()
        self.console.acknowledge_crashes()
        if self._ssh is not None:
            self._ssh.close()
        started = time.monotonic()
        self.log.note("reboot requested")
        self.console.send("reboot\n")
        self.console.ready = False
        # Wait for a sign of the restart before logging in, so the old shell, still alive
        # for a moment, cannot answer the login probe and pass for the new one.
        signs = [KERNEL_BANNER, self.profile.boot.bootloader_banner, *RESTART_SIGNS]
        try:
            self.console.expect(signs, self.profile.boot.timeout)
        except ShellUnresponsive as exc:
            raise BootFailed(
                f"board {self.profile.name} showed no sign of rebooting: {exc}"
            ) from exc
        return self._come_up(started, previous)

    def _come_up(self, started: float, previous_boot_id: str | None) -> float:
        """Bootloader (if any), login, a new boot id, SSH: the board is back only when all hold."""
        deadline = started + self.profile.boot.timeout
        try:
            if self.profile.boot.flow == "u-boot":
                self._through_bootloader(deadline)
            self._await_login_prompt(deadline)
            self.console.login(timeout=max(deadline - time.monotonic(), 1.0))
        except (LoginTimeout, ShellUnresponsive) as exc:
            raise BootFailed(
                f"board {self.profile.name} did not reach a shell within {self.profile.boot.timeout:g} s: {exc}"
            ) from exc
        self.console.acknowledge_crashes()
        self._logins_at_event = len(self.watch.events)
        elapsed = time.monotonic() - started
        current = self.boot_id()
        if previous_boot_id is not None and current == previous_boot_id:
            raise BootFailed(
                f"board {self.profile.name} answered but did not restart (boot id unchanged: {current})"
            )
        if self.has_ssh:
            self.ssh.close()
            self.ssh.wait_ready(max(deadline - time.monotonic(), 5.0))
        self.log.note(f"board up after {elapsed:.2f} s (boot id {current})")
        return elapsed

    def _await_login_prompt(self, deadline: float) -> None:
        """Keep quiet until the OS offers a login. Keys typed while the kernel boots are at
        best lost; on some UARTs (QEMU's PL011) they jam the console input for good."""
        self.console.await_prompt(max(deadline - time.monotonic(), 1.0))

    def _through_bootloader(self, deadline: float) -> None:
        """Catch U-Boot at its prompt (interrupting autoboot) and start the OS on purpose."""
        boot = self.profile.boot
        patterns = [
            AUTOBOOT,
            boot.bootloader_prompt + r"$",
            KERNEL_BANNER,
            self.profile.console.login_prompt,
        ]
        index, _ = self.console.expect(patterns, max(deadline - time.monotonic(), 1.0))
        if index >= 2:
            return  # booted on its own, without a prompt to stop at
        if index == 0:
            self.console.send("\x03", "<Ctrl-C: stop autoboot>")
            self.console.expect(
                [boot.bootloader_prompt + r"$"], max(deadline - time.monotonic(), 1.0)
            )
        self.console.send((boot.boot_command or "boot") + "\n")

    # --- recovery -----------------------------------------------------------------------
    def ensure_shell(self) -> None:
        """Make the console shell usable again: resync, else re-login, else power-cycle.

        Raises LoginFailed (wrong credentials: a cycle would not help) or BootFailed.
        """
        if self.console.ready and self.console.resync(2.0):
            return
        if not self._dead_since_login():
            # After a reset the board is booting on its own: give it the whole boot time, and
            # steer U-Boot ourselves rather than let a login keystroke stop it at its prompt.
            resetting = self._reset_since_login()
            timeout = self.profile.boot.timeout if resetting else RELOGIN_TIMEOUT
            try:
                if (
                    resetting
                    and self.profile.boot.flow == "u-boot"
                    and self.watch.stage == "bootloader"
                ):
                    self._through_bootloader(time.monotonic() + timeout)
                if resetting:
                    self._await_login_prompt(time.monotonic() + timeout)
                self.console.login(timeout=timeout)
                self.console.acknowledge_crashes()
                self._logins_at_event = len(self.watch.events)
                return
            except LoginFailed as exc:
                if not isinstance(exc, LoginTimeout):
                    raise
            except ShellUnresponsive:
                pass
        self.log.note("console dead: power-cycling the board")
        self.power_cycle()

    def _reset_since_login(self) -> bool:
        return any(e.kind == UNEXPECTED_RESET for e in self.watch.events[self._logins_at_event :])

    def _dead_since_login(self) -> bool:
        return any(e.kind in DEAD_AFTER for e in self.watch.events[self._logins_at_event :])

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
