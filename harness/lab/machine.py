"""The board state machine: drive a board to the wanted state from wherever it is.

Certification, reproduction and farm CI put a board through hundreds of
power cycles, bootloaders, reboots and logins unattended, on lab hosts that
are busy. Under load a board does not follow a script: keystrokes sent while
the kernel boots are lost, an Enter that lands in U-Boot's countdown stops
the autoboot, U-Boot can swallow the first character typed after its
countdown, a login prompt gets buried under late kernel messages. So the
machine never runs a fixed sequence. It loops:

1. *observe* (states.py): what the console shows decides the state -
   off, bootloader, booting, login, shell, crashed or unknown;
2. *act* for that state only, from the table in `_act`: a bootloader prompt
   gets the boot command, a login prompt the user name, a booting board
   nothing at all;
3. log the change in console.log (`# state: bootloader -> booting (kernel)`).

Typing is checked: every line typed at a bootloader or login prompt is
verified by its echo before Enter is pressed, and typed again (after the
line is discarded) when the echo shows a lost character. The password, which
has no echo, is only typed at a password prompt that follows our own user
name.

Silence is the only thing judged by time, and it only ever leads to a poke
(Enter, or the shell's resync probe), never to typing credentials or
commands: a poke at a busy board is harmless, and a poke at a quiet one
brings its prompt back. When the board shows nothing usable for a whole boot
timeout, or crashed, or is off, the power switch (if any) restarts it, at
most `max_power_cycles` times before the machine gives up with the list of
states it went through.

Counts of transitions, pokes, retyped lines and power cycles are kept in
`stats`, so a stress test (and an engineer reading a run) can see how hard
the board was to drive.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from harness.errors import InfraError
from harness.lab.errors import (
    BoardCrashed,
    BootFailed,
    LoginFailed,
    LoginTimeout,
    PowerFault,
    ShellUnresponsive,
)
from harness.lab.prompt import LOGIN_REFUSED
from harness.lab.states import BoardState, Observation

if TYPE_CHECKING:
    from harness.lab.console import ConsoleSession

# Quiet this long before a poke, by what the board showed last.
QUIET_BEFORE_POKE = {
    "unknown": 1.5,
    "userspace": 3.0,  # a login prompt buried under late kernel messages
    "bootloader": 10.0,  # a bootloader prompt hidden by line noise
    "booting": 20.0,  # never poke a kernel that is merely slow
}
# A poke waits this long for the shell's resync answer.
PROBE_WAIT = 5.0
# Typed text: wait this long for its whole echo; a partial echo quiet this long is final.
ECHO_WAIT = 15.0
ECHO_QUIET = 2.0
MAX_TYPE_TRIES = 4
# Same state acted on this many times without leaving it: the board is stuck. A board that
# answers neither Enter nor the shell's probe twice is hung (a power cycle is due).
MAX_ACTIONS_PER_STATE = 8
MAX_POKES_UNKNOWN = 4
# The key that discards a typed login line (the terminal's VKILL).
LOGIN_KILL = "\x15"
READ_SLICE = 0.25


class PowerSwitch(Protocol):
    """What the machine needs of a power switch (the Board's labgrid PowerProtocol)."""

    def on(self) -> None: ...
    def off(self) -> None: ...


@dataclass
class MachineStats:
    """How hard the board was to drive: a stress test and a run's notes read these."""

    transitions: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    # "a -> b": how many actions state a needed before the board moved to b, per occurrence.
    attempts: dict[str, list[int]] = field(default_factory=dict)
    retyped: int = 0
    power_cycles: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "transitions": dict(self.transitions),
            "actions": dict(self.actions),
            "attempts": {name: list(values) for name, values in self.attempts.items()},
            "retyped": self.retyped,
            "power_cycles": self.power_cycles,
        }


class BoardMachine:
    """Drives one board's console (and power switch, if it has one) between states."""

    def __init__(
        self,
        console: ConsoleSession,
        power: PowerSwitch | None = None,
        *,
        boot_timeout: float = 180.0,
        max_power_cycles: int = 2,
        stats: MachineStats | None = None,
    ):
        self.console = console
        self.evidence = console.evidence
        self.loader = console.evidence.loader
        self.power = power
        self.boot_timeout = boot_timeout
        self.max_power_cycles = max_power_cycles
        self.stats = stats or MachineStats()
        self.log = console.log
        self._last: Observation | None = None
        self._actions_here = 0
        self._typed: str | None = None
        self._typed_in_boot = 0
        self._pokes = 0
        self._poked_at = 0.0
        # Called after every power-off: links that cannot survive it (SSH) are dropped.
        self.on_power_off: list[Callable[[], None]] = []

    # --- observing ---------------------------------------------------------------------
    def where(self) -> Observation:
        """The board's state now, from the console alone (reads what is pending, types
        nothing). A logged-in machine shell counts as `shell` only while the console
        session has it ready; `Board.ensure_shell()` confirms it with a probe."""
        self._read(0.0)
        if self.console.ready:
            return Observation(BoardState.SHELL, "ready", "machine shell answers")
        return self.evidence.observe()

    @property
    def state(self) -> BoardState:
        """The last state observed, without reading the console."""
        if self.console.ready:
            return BoardState.SHELL
        return self.evidence.observe().state

    def _read(self, timeout: float) -> bytes:
        try:
            return self.console.pump(timeout)
        except BoardCrashed:  # pragma: no cover - pump never raises it; kept for clarity
            return b""

    def _note_change(self, seen: Observation) -> None:
        last = self._last
        if last is not None and (last.state, last.detail) == (seen.state, seen.detail):
            return
        before = "start" if last is None else last.state.value
        if last is not None:
            name = f"{last.state.value} -> {seen.state.value}"
            if last.state is not seen.state:
                self.stats.transitions[name] += 1
                self.stats.attempts.setdefault(name, []).append(self._actions_here)
                self._actions_here = 0
                self._pokes = 0
        text = f"state: {before} -> {seen.state.value} ({seen.detail})"
        if seen.evidence:
            text += f": {seen.evidence[:120]!r}"
        self.log.note(text)
        self._last = seen

    # --- power -------------------------------------------------------------------------
    def power_off(self) -> None:
        self._switch("off")
        self.console.ready = False
        self.evidence.set_phase(BoardState.OFF, "powered off", "")
        for callback in self.on_power_off:
            callback()

    def power_on(self) -> None:
        """Switch on, expecting a boot: its banners are not an unexpected reset."""
        self.console.watch.expect_boot()
        self.console.acknowledge_crashes()
        self._switch("on")
        self.evidence.forget_tail()
        self.evidence.set_phase(BoardState.BOOTING, "powered on", "")

    def power_cycle(self) -> None:
        self.stats.power_cycles += 1
        self.stats.actions["power cycle"] += 1
        self.power_off()
        # Whatever the old boot still had in flight (the tail of a panic) belongs to it.
        self.console.drain(quiet=0.2)
        self.power_on()

    def _switch(self, action: str) -> None:
        if self.power is None:
            raise PowerFault("this board has no power switch (labgrid PowerProtocol)")
        self.log.note(f"power {action}")
        try:
            getattr(self.power, action)()
        except Exception as exc:
            raise PowerFault(f"power {action} failed: {exc}") from exc

    # --- driving -----------------------------------------------------------------------
    def drive(self, target: BoardState, timeout: float | None = None) -> Observation:
        """Bring the board to `target` (SHELL: a logged-in machine shell; BOOTLOADER: its
        prompt; OFF: switched off) from whatever state it is in.

        Raises LoginFailed when the board refuses the credentials (a power cycle would not
        help), BootFailed when it cannot be brought there even with the power switch, and
        LoginTimeout when it has no switch and showed nothing usable within `timeout`.
        """
        if target is BoardState.OFF:
            self.power_off()
            return self._observed()
        per_boot = self.boot_timeout if timeout is None else timeout
        self._typed = None
        deadline = time.monotonic() + per_boot
        cycles = 0
        trail: list[str] = []
        while True:
            seen = self._observed()
            if not trail or trail[-1] != str(seen):
                trail.append(str(seen))
            if self._reached(seen, target):
                self.console.acknowledge_crashes()
                return seen
            if seen.state is BoardState.OFF and seen.detail == "powered off":
                if self.power is None:
                    raise BootFailed("the board is switched off and has no power switch")
                self._count("power on")
                self.power_on()
                continue
            stuck = self._actions_here >= (
                MAX_POKES_UNKNOWN if seen.state is BoardState.UNKNOWN else MAX_ACTIONS_PER_STATE
            )
            dead = seen.state in (BoardState.CRASHED, BoardState.OFF)
            if time.monotonic() >= deadline or stuck or dead:
                if self.power is None or cycles >= self.max_power_cycles:
                    raise self._gave_up(target, seen, trail, per_boot, stuck)
                cycles += 1
                why = seen.detail if dead else "stuck" if stuck else "out of time"
                self.log.note(f"board {why} in state {seen}: power-cycling")
                self._actions_here = 0
                self._typed = None
                self.power_cycle()
                deadline = time.monotonic() + per_boot
                continue
            try:
                self._act(seen, target, deadline)
            except BoardCrashed:
                # A crash or reset while driving is evidence for the next observation.
                continue
            except ShellUnresponsive:
                self._actions_here += 1

    def _observed(self) -> Observation:
        seen = self.where()
        self._note_change(seen)
        return seen

    @staticmethod
    def _reached(seen: Observation, target: BoardState) -> bool:
        if target is BoardState.SHELL:
            return seen.state is BoardState.SHELL and seen.detail == "ready"
        if target is BoardState.BOOTLOADER:
            return seen.state is BoardState.BOOTLOADER and seen.detail == "prompt"
        return seen.state is target

    def _gave_up(
        self, target: BoardState, seen: Observation, trail: list[str], timeout: float, stuck: bool
    ) -> InfraError:
        path = " -> ".join(trail[-12:])
        how = "made no progress" if stuck else f"did not get there within {timeout:g} s"
        text = f"could not bring the board to {target.value}: it {how}; last state {seen} (states seen: {path})"
        self.log.note(text)
        if (
            self.power is None
            and target is BoardState.SHELL
            and seen.state is not BoardState.CRASHED
        ):
            return LoginTimeout(text)
        return BootFailed(text)

    # --- one action per state ----------------------------------------------------------
    def _act(self, seen: Observation, target: BoardState, deadline: float) -> None:
        state, detail = seen.state, seen.detail
        if target is BoardState.BOOTLOADER and state in (
            BoardState.SHELL,
            BoardState.LOGIN,
        ):
            self._count("power cycle to reach the bootloader")
            self.power_cycle()
            return
        if state is BoardState.BOOTLOADER:
            self._at_bootloader(detail, target)
        elif state is BoardState.LOGIN and detail in ("login", "password"):
            self._at_login(detail)
        elif state is BoardState.SHELL:
            self._count("start machine shell")
            self.console.setup_shell()
        elif state is BoardState.BOOTING:
            if target is BoardState.BOOTLOADER and detail in ("kernel", "userspace"):
                self._count("power cycle to reach the bootloader")
                self.power_cycle()
                return
            self._wait_or_poke("userspace" if detail == "userspace" else "booting", deadline)
        else:  # UNKNOWN, or LOGIN while login(1) answers what was typed
            self._wait_or_poke("unknown", deadline)

    def _count(self, action: str) -> None:
        self.stats.actions[action] += 1
        self._actions_here += 1

    def _at_bootloader(self, detail: str, target: BoardState) -> None:
        loader = self.loader
        assert loader is not None  # BOOTLOADER is only observed with a bootloader configured
        wants_prompt = target is BoardState.BOOTLOADER
        if detail == "prompt":
            self._count("type boot command")
            prompt = re.compile(f"(?:{loader.prompt})")
            self._type_verified(loader.boot_command, prompt, loader.kill_line)
            self.evidence.forget_tail()
            self.evidence.set_phase(BoardState.BOOTING, "boot command typed", loader.boot_command)
            return
        if detail == "menu" and not wants_prompt:
            self._count("start menu entry")
            self.evidence.forget_tail()
            self.console.type(loader.menu_key, "<menu: start entry>")
            return
        if wants_prompt or (detail == "autoboot" and loader.on_autoboot == "interrupt"):
            # A key that arrives before the countdown starts stops it too: send one per
            # chunk of new output until the prompt shows.
            # Only keys sent after a long silence count towards "stuck": a bootloader that
            # prints its banners slowly (a loaded host, a network probe) is still making
            # progress, and the boot deadline bounds it anyway.
            self.stats.actions["stop autoboot"] += 1
            self.evidence.forget_tail()
            self.console.type(loader.interrupt, "<stop autoboot>")
            self._read(READ_SLICE)
            if time.monotonic() - self.evidence.last_output >= QUIET_BEFORE_POKE["bootloader"]:
                self._actions_here += 1
            return
        self._wait_or_poke("bootloader", time.monotonic() + READ_SLICE)

    def _at_login(self, detail: str) -> None:
        settings = self.console.settings
        if self._typed_in_boot != self.evidence.boots_seen:
            self._typed = None  # the board restarted since: what was typed went with it
        refused = LOGIN_REFUSED.search(self.evidence.screen(300))
        if self._typed == "password" and refused:
            raise LoginFailed(
                f"the board refused the console login as {settings.username!r}: it said "
                f"{refused.group(0)!r} (check console.username/password in the board profile)"
            )
        if detail == "password":
            if self._typed == "user":
                if settings.password is None:
                    raise LoginFailed(
                        "the board asks for a console password but the board profile gives "
                        "none (console.password)"
                    )
                self._count("type password")
                self.evidence.forget_tail()
                self.console.type(settings.password + "\n", "******")
                self._typed = "password"
                self._typed_in_boot = self.evidence.boots_seen
                self.evidence.set_phase(BoardState.LOGIN, "password typed", "")
                self._settle_after_password()
            else:
                self._count("discard a password prompt")
                self.evidence.forget_tail()
                self.console.type("\n", "<Enter>")
                self._typed = None
            return
        if self._typed == "password":
            raise LoginFailed(
                f"the board refused the console login as {settings.username!r}: "
                "it asked for the login again (check console.username/password)"
            )
        self._count("type user name")
        self._type_verified(settings.username, re.compile(settings.login_prompt), LOGIN_KILL)
        self.evidence.forget_tail()
        self._typed = "user"
        self._typed_in_boot = self.evidence.boots_seen
        self.evidence.set_phase(BoardState.LOGIN, "user name typed", settings.username)

    def _settle_after_password(self) -> None:
        """login(1) takes a while to check a password: wait for its answer, typing nothing."""
        deadline = time.monotonic() + 10.0
        boots = self.evidence.boots_seen
        while time.monotonic() < deadline and self.evidence.boots_seen == boots:
            if self._read(READ_SLICE):
                seen = self.evidence.observe()
                if seen.state is BoardState.SHELL or seen.detail in ("login", "password"):
                    return
            if LOGIN_REFUSED.search(self.evidence.screen(300)):
                return

    def _wait_or_poke(self, kind: str, deadline: float) -> None:
        """Read for a moment; after enough silence, poke: Enter, then the shell's probe."""
        self._read(min(READ_SLICE, max(deadline - time.monotonic(), 0.0)))
        # Silence counts from the board's last output or our last poke, whichever is later,
        # so a board that stays silent is poked at that pace, not in a burst.
        silent = time.monotonic() - max(self.evidence.last_output, self._poked_at)
        if silent < QUIET_BEFORE_POKE[kind]:
            return
        self._poked_at = time.monotonic()
        self._pokes += 1
        self.evidence.forget_tail()
        if self._pokes % 2 == 1:
            self._count("poke: Enter")
            self.console.type("\n", "<Enter: poke>")
            self._read(READ_SLICE)
        else:
            self._count("poke: resync probe")
            self.console.resync(PROBE_WAIT)

    # --- typing ------------------------------------------------------------------------
    def _type_verified(self, text: str, line_start: re.Pattern[str], kill: str) -> None:
        """Type `text`, check its echo after the prompt, press Enter; retype on a lost key."""
        for attempt in range(MAX_TYPE_TRIES):
            self.console.type(text, text)
            seen = self._await_echo(text, line_start)
            if seen == text:
                self.console.type("\n", "<Enter>")
                return
            self.stats.retyped += 1
            self.log.note(
                f"echo showed {seen!r} instead of {text!r} (try {attempt + 1}): discarding the line"
            )
            self.console.type(kill, "<discard line>")
            self._await_cleared(line_start)
        raise ShellUnresponsive(
            f"the board did not echo {text!r} correctly in {MAX_TYPE_TRIES} tries"
        )

    def _await_cleared(self, line_start: re.Pattern[str]) -> None:
        """After the kill key: wait for a fresh prompt (or the line erased), or silence."""
        deadline = time.monotonic() + ECHO_WAIT
        while time.monotonic() < deadline:
            if self.evidence.typed_line(line_start) == "":
                return
            if not self._read(READ_SLICE) and self.evidence.quiet_for >= ECHO_QUIET:
                return

    def _await_echo(self, text: str, line_start: re.Pattern[str]) -> str | None:
        """What the board echoed after the prompt, once it equals `text`, cannot become
        `text` any more, or stopped growing."""
        deadline = time.monotonic() + ECHO_WAIT
        while True:
            typed = self.evidence.typed_line(line_start)
            if typed is not None:
                typed = typed.rstrip("\r")
                if typed == text:
                    return typed
                if "\n" in typed or not text.startswith(typed):
                    return typed
            if time.monotonic() >= deadline:
                return typed
            if not self._read(READ_SLICE) and self.evidence.quiet_for >= ECHO_QUIET:
                return typed
