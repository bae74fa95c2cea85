"""A shell on the board's serial console, driven for a machine rather than a person.

Built on labgrid's `ConsoleProtocol` (`read`/`write` of the serial driver), not
on labgrid's ShellDriver, because a certification run sends thousands of
commands and must know each exact exit status.

After login the session turns the terminal's echo off (newline translation stays on)
and, from the login shell, starts a *machine shell* in a loop:

    while printf '\\036L%s\\036\\n' LOOP; do HARNESS_SHELL=LOOP sh /proc/self/fd/0;
        printf '\\036X%s:%d\\036\\n' LOOP "$?"; done

The machine shell is a non-interactive `sh` reading the console line by line:
no prompt, no line editing, no job notices, no terminal escapes. (An
interactive busybox ash with echo off reads with fgets() and takes the EINTR of
a finished background job for end of input, logging the user out.) It traps
SIGINT, so Ctrl-C stops only the running command and the shell with its cwd
and variables lives on; if a command ends the machine shell (`exit 3`), the
loop reports its status (X marker) and starts a fresh one. Every command is
sent as ONE line:

    printf '\\036S%s\\036\\n' TOKEN; command eval 'COMMAND'; printf '\\n\\036E%s:%d\\036\\n' TOKEN "$?"

so a command costs one round trip, runs in the machine shell itself (cwd and
variables persist; `command eval` keeps a syntax error from killing it), and
its output is exactly what lies between the start and end markers. TOKEN is
fresh for every command, so output that contains old markers, marker-like
text or binary junk cannot end a command early; the markers are built by
printf from octal escapes, so even an echoing terminal would not show them.

Everything read is fed to the console log and to the crash watch as it
arrives; between commands the session drains what the board printed before
sending the next one, so nothing is lost (`drain()` can be called at any time
to keep the log current while idle).

Errors (see errors.py): `CommandTimeout` after a timed-out command whose shell
was recovered (Ctrl-C, then a fresh marker answered); `ShellUnresponsive` when
it could not be; `BoardCrashed` when the crash watch saw a crash or reset
(fatal or error severity) during or before a command; `ConsoleLost` when the
connection closed; `LoginFailed`/`LoginTimeout`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable

import pexpect
import serial
from labgrid.protocol import ConsoleProtocol

from harness.errors import Location, UserError
from harness.lab.consolelog import ConsoleLog
from harness.lab.crash_patterns import UNEXPECTED_RESET
from harness.lab.crashwatch import CrashEvent, CrashWatch, most_severe
from harness.lab.errors import (
    BoardCrashed,
    CommandTimeout,
    ConsoleLost,
    ShellUnresponsive,
)
from harness.lab.prompt import Prompts
from harness.lab.result import CommandResult
from harness.lab.states import BoardState, ConsoleEvidence
from harness.lab.terminal import strip_escapes
from harness.model.board import Console
from harness.model.bootloaders import ResolvedBootloader

# The N_TTY line discipline holds at most 4095 bytes of one canonical line.
MAX_LINE_BYTES = 4000
# How long to wait for a resync marker after Ctrl-C, per attempt.
RESYNC_WAIT = (0.5, 1.0, 2.0)
# After a crash line, keep reading this long for its context (call trace).
CRASH_CONTEXT_WAIT = 2.0
# Run in the login shell: terminal in machine mode, then the machine-shell loop (see above).
OUTER_SETUP = (
    "stty -echo onlcr 2>/dev/null; PS1=''; PS2=''; PROMPT_COMMAND=''; "
    "bind 'set enable-bracketed-paste off' 2>/dev/null; "
    "while printf '\\036L%s\\036\\n' {loop}; do HARNESS_SHELL={loop} sh /proc/self/fd/0; "
    "printf '\\036X%s:%d\\036\\n' {loop} \"$?\"; done\n"
)
# Resync marker; also (re)arms the machine shell's Ctrl-C trap and says which loop answers.
PROBE = "\ntrap : INT; printf '\\036R%s:%s\\036\\n' {token} \"${{HARNESS_SHELL:-}}\"\n"
# Log out: the console ends at a login prompt, with no root shell left open on the bench.
LOGOUT = "stty echo 2>/dev/null; kill -HUP $PPID; exit\n"
RAISE_ON = frozenset({"fatal", "error"})


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# Any end marker; `_end_marker` keeps the one with the token asked for. One pattern compiled
# once: a pattern per command (its token inside) cost a regex compile (~0.1 ms) per command,
# a third of a raw console round trip on a fast board.
_END_MARKERS = re.compile(rb"\x1e([EX])([^:\x1e\r\n]+):(\d+)\x1e")


def _end_marker(
    buffer: bytearray, start: int, wanted: dict[bytes, bytes]
) -> re.Match[bytes] | None:
    """The first end marker from `start` whose kind (E or X) carries the token `wanted` gives it."""
    for match in _END_MARKERS.finditer(buffer, start):
        if wanted.get(match.group(1)) == match.group(2):
            return match
    return None


class ConsoleSession:
    """One logged-in shell on a console. Not thread-safe: one owner reads the console."""

    def __init__(
        self,
        console: ConsoleProtocol,
        settings: Console,
        log: ConsoleLog | None = None,
        watch: CrashWatch | None = None,
        raise_on: frozenset[str] = RAISE_ON,
        bootloader: ResolvedBootloader | None = None,
    ):
        self.console = console
        self.settings = settings
        self.prompts = Prompts.from_console(settings)
        self.log = log or ConsoleLog(None)
        self.watch = watch or CrashWatch()
        self.raise_on = raise_on
        self.ready = False
        self._in_flight: str | None = None
        self._buffer = bytearray()
        self._session = secrets.token_hex(3)
        self._counter = 0
        self._reported = 0
        self._loop = b"-"
        # What the console shows, for the board state machine (machine.py).
        self.evidence = ConsoleEvidence(self.prompts, bootloader)
        self.on_read: list[Callable[[bytes], None]] = []

    # --- reading -----------------------------------------------------------------------
    def _read(self, timeout: float) -> bytes:
        """Wait up to `timeout` for the first byte, then take everything already there."""
        try:
            data = self.console.read(size=1, timeout=max(timeout, 0.0), max_size=1)
        except pexpect.TIMEOUT:
            return b""
        except (serial.SerialException, OSError) as exc:
            raise ConsoleLost(f"console connection lost: {exc}") from exc
        try:
            data += self.console.read(size=65536, timeout=0.0, max_size=65536)
        except pexpect.TIMEOUT:
            pass
        except (serial.SerialException, OSError) as exc:
            self._record(data)
            raise ConsoleLost(f"console connection lost: {exc}") from exc
        self._record(data)
        return data

    def _record(self, data: bytes) -> None:
        if not data:
            return
        self.log.board(data)
        self.watch.feed(data)
        self.evidence.feed(data)
        self._buffer += data
        for callback in self.on_read:
            callback(data)

    def _write(self, data: bytes, shown: str | None) -> None:
        if shown is not None:
            self.log.sent(shown)
        try:
            self.console.write(data)
        except (serial.SerialException, OSError) as exc:
            raise ConsoleLost(f"console connection lost while writing: {exc}") from exc

    def pump(self, timeout: float) -> bytes:
        """Read what arrives within `timeout` (all of it, once the first byte came)."""
        return self._read(timeout)

    def type(self, text: str, shown: str | None = None) -> None:
        """Type `text` as is, keeping what was read so far (the state machine checks the
        echo against it); logged as sent (`shown` in place of a secret)."""
        self._write(text.encode(), text.rstrip("\n") if shown is None else shown)

    def drain(self, quiet: float = 0.0) -> bytes:
        """Read what the board printed since the last command (until `quiet` s of silence)."""
        start = len(self._buffer)
        while self._read(quiet):
            pass
        return bytes(self._buffer[start:])

    # --- crash handling -----------------------------------------------------------------
    def unreported_crashes(self) -> list[CrashEvent]:
        return [e for e in self.watch.events[self._reported :] if e.severity in self.raise_on]

    def acknowledge_crashes(self) -> None:
        """Crashes seen so far are known (reported, or expected during a deliberate reboot)."""
        self._reported = len(self.watch.events)

    def _raise_if_crashed(self, command: str | None) -> None:
        if not self.unreported_crashes():
            return
        deadline = time.monotonic() + CRASH_CONTEXT_WAIT
        while time.monotonic() < deadline and not all(
            e.complete for e in self.unreported_crashes()
        ):
            if not self._read(min(0.5, deadline - time.monotonic())):
                break
        events = self.unreported_crashes()
        self.acknowledge_crashes()
        worst = most_severe(events)
        assert worst is not None
        if worst.severity == "fatal":
            self.ready = False
        raise BoardCrashed(worst, events, command)

    # --- commands -----------------------------------------------------------------------
    def _token(self) -> bytes:
        self._counter += 1
        return f"{self._session}{self._counter:x}".encode()

    def _wait_for(self, pattern: re.Pattern[bytes], timeout: float) -> re.Match[bytes] | None:
        """Read until `pattern` shows up in the buffer (consumed through it); None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self._raise_if_crashed(None)
            match = pattern.search(bytes(self._buffer))  # a copy: the match outlives the buffer
            if match:
                del self._buffer[: match.end()]
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._read(remaining)

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        """Run `command` in the machine shell; exit status and merged output, one round trip.

        Raises CommandTimeout (shell recovered), ShellUnresponsive, BoardCrashed, ConsoleLost,
        UserError (a command longer than a console line).
        """
        if not self.ready:
            raise ShellUnresponsive(
                "the console shell is not logged in (after a crash or failed recovery); "
                "Board.ensure_shell() brings it back"
            )
        token = self._token()
        line = (
            f"printf '\\036S%s\\036\\n' {token.decode()}; command eval {_quote(command)}; "
            f"printf '\\n\\036E%s:%d\\036\\n' {token.decode()} \"$?\"\n"
        ).encode()
        if len(line) > MAX_LINE_BYTES:
            raise UserError(
                f"command is {len(line)} bytes once framed; a console line carries at most "
                f"{MAX_LINE_BYTES}: copy it to the board as a script (SSH put) and run that",
                Location(field="command"),
            )
        self.drain()
        self._raise_if_crashed(None)
        # A marker ends at its closing \x1e: a kernel message may land between it and the
        # newline the shell prints next (seen under load), so the newline is not required.
        start_marker = b"\x1eS" + token + b"\x1e"
        # The end marker (\x1eE<token>:<status>\x1e), or the machine shell's own end
        # (\x1eX<loop>:<status>\x1e) if the command ended it; the newline the end marker's
        # printf puts before it is taken off the body below.
        wanted = {b"E": token, b"X": self._loop}
        crashes_before = len(self.watch.events)
        self._buffer.clear()
        started = time.perf_counter()
        self._write(line, command)
        deadline = time.monotonic() + timeout
        searched = 0
        # Set while the board runs the command: if the harness is stopped (Ctrl-C, SIGTERM)
        # before the end marker, logout() interrupts the command instead of queueing behind it.
        self._in_flight = command
        while True:
            match = _end_marker(self._buffer, max(0, searched - 64), wanted)
            if match:
                break
            searched = len(self._buffer)
            if self.unreported_crashes():
                self._raise_if_crashed(command)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._recover_after_timeout(command, timeout)
            self._read(remaining)
        self._in_flight = None
        duration = time.perf_counter() - started
        shell_ended = match.group(1) == b"X"
        exit_status = int(match.group(3))
        body = bytes(self._buffer[: match.start()]).removesuffix(b"\r\n")
        del self._buffer[: match.end()]
        begin = body.find(start_marker)
        if begin >= 0:
            body = body[begin + len(start_marker) :]
            body = body.removeprefix(b"\r\n")
        # The terminal turns every "\n" into "\r\n" (onlcr); undoing exactly that gives the
        # bytes the command wrote. (Kept on: labgrid's console logger splits on "\r\n".)
        body = body.replace(b"\r\n", b"\n")
        # The shell lived through the command, so banners inside its output were printed by
        # the command (dmesg, cat of an old log), not by a reset.
        for event in self.watch.events[crashes_before:]:
            if event.kind == UNEXPECTED_RESET:
                event.severity = "warning"
        if shell_ended:
            self._restart_machine_shell(command, exit_status)
        self._raise_if_crashed(command)
        return CommandResult(
            command=command,
            exit_status=exit_status,
            stdout=body.decode("utf-8", errors="replace"),
            stderr="",
            duration=duration,
        )

    def _restart_machine_shell(self, command: str, status: int) -> None:
        """The command ended the machine shell (`exit`); the loop starts a new one: arm it."""
        self.log.note(
            f"{command!r} ended the machine shell (status {status}); a fresh one starts "
            "(cwd and variables are reset)"
        )
        if self._wait_for(re.compile(rb"\x1eL" + self._loop + rb"\x1e"), 10.0) is None:
            self.ready = False
            raise ShellUnresponsive(
                "the machine shell ended and the login shell did not restart it"
            )
        if self._probe(10.0) != self._loop.decode():
            self.ready = False
            raise ShellUnresponsive("the restarted machine shell did not answer")

    def _recover_after_timeout(self, command: str, timeout: float) -> None:
        self._in_flight = None  # interrupted here, whatever happens next
        partial = strip_escapes(bytes(self._buffer).decode("utf-8", errors="replace"))
        self.log.note(f"command timed out after {timeout:g} s; interrupting")
        for wait in RESYNC_WAIT:
            self._write(b"\x03", "<Ctrl-C>")
            if self.resync(wait):
                raise CommandTimeout(command, timeout, partial)
            text = strip_escapes(bytes(self._buffer).decode("utf-8", errors="replace"))
            if self.prompts.which(text[-200:]) == "login":
                # The login shell itself ended (logout, kill): log in again.
                self.ready = False
                self.login()
                raise CommandTimeout(command, timeout, partial)
        self.ready = False
        self.log.note("the shell does not answer")
        raise ShellUnresponsive(
            f"the console shell did not answer after {command!r} timed out "
            f"({len(RESYNC_WAIT)} Ctrl-C and resync attempts); the board may be hung",
            output=partial,
        )

    def _probe(self, wait: float) -> str | None:
        """Send a resync marker; the answering loop's id ('' = a plain shell), None = silence."""
        token = self._token()
        self._buffer.clear()
        self._write(PROBE.format(token=token.decode()).encode(), "<resync>")
        match = self._wait_for(re.compile(rb"\x1eR" + token + rb":([0-9a-f]*)\x1e"), wait)
        return None if match is None else match.group(1).decode()

    def resync(self, wait: float) -> bool:
        """Make sure the machine shell answers (restarting it from a plain shell if needed);
        True when it does within `wait` s."""
        loop = self._probe(wait)
        if loop is None:
            return False
        if loop == "":
            self.setup_shell()
        else:
            self._loop = loop.encode()
            self._ready()
        return True

    # --- raw conversation (bootloaders, reboot) -----------------------------------------
    def send(self, text: str, shown: str | None = None) -> None:
        """Type `text` as is (add "\\n" yourself); logged as sent. For bootloader prompts and
        commands whose end the caller waits for itself (reboot)."""
        self._buffer.clear()
        self._write(text.encode(), text.rstrip("\n") if shown is None else shown)

    def expect(self, patterns: list[str], timeout: float) -> tuple[int, re.Match[str]]:
        """Wait until one of `patterns` (regexes over escape-free text) appears in what the
        board prints from now on; (index, match). Everything before it is consumed.
        Raises BoardCrashed on a crash and ShellUnresponsive when nothing matched in time."""
        compiled = [re.compile(p, re.MULTILINE) for p in patterns]
        deadline = time.monotonic() + timeout
        while True:
            self._raise_if_crashed(None)
            text = strip_escapes(bytes(self._buffer).decode("utf-8", errors="replace"))
            found = [(m.start(), i, m) for i, c in enumerate(compiled) if (m := c.search(text))]
            if found:
                _, index, match = min(found, key=lambda item: (item[0], item[1]))
                self._buffer[:] = text[match.end() :].encode()
                return index, match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ShellUnresponsive(
                    f"the console did not show any of {patterns} within {timeout:g} s"
                )
            self._read(remaining)

    # --- login --------------------------------------------------------------------------
    def login(self, timeout: float | None = None) -> None:
        """From whatever the console shows (boot messages, a login prompt, a shell) to a
        shell set up for machine use, through the board state machine with no power switch.
        Raises LoginFailed when the board refuses the credentials, LoginTimeout when it
        shows nothing usable in time."""
        from harness.lab.machine import BoardMachine
        from harness.lab.states import BoardState

        timeout = self.settings.login_timeout if timeout is None else timeout
        self.log.note(f"login as {self.settings.username!r}")
        self.ready = False
        BoardMachine(self, power=None).drive(BoardState.SHELL, timeout)

    def setup_shell(self) -> None:
        """At a plain shell: machine mode for the terminal, then the machine-shell loop."""
        loop = self._token()
        self._buffer.clear()
        self._write(OUTER_SETUP.format(loop=loop.decode()).encode(), "<start machine shell>")
        if self._wait_for(re.compile(rb"\x1eL" + loop + rb"\x1e"), 10.0) is None:
            raise ShellUnresponsive("the console shell did not start the machine shell within 10 s")
        self._loop = loop
        if self._probe(10.0) != loop.decode():
            raise ShellUnresponsive("the machine shell did not answer within 10 s")
        self._ready()

    def _ready(self) -> None:
        self.ready = True
        self._in_flight = None
        self.watch.arm()
        # While the machine shell answers, the session knows the state; should it stop
        # answering, only new console output may say where the board went.
        self.evidence.set_phase(BoardState.UNKNOWN, "machine shell was ready", "")
        self.log.note("shell ready")

    def logout(self) -> None:
        """Leave the console at a login prompt (echo back on), as a careful person would.

        A command the harness stopped waiting for (it was interrupted) is interrupted on the
        board too first; if the shell then does not answer, the board is left as it is.
        """
        if self.ready and self._in_flight is not None:
            self.log.note(
                f"interrupting {self._in_flight!r}, which the harness stopped waiting for"
            )
            self._in_flight = None
            self._write(b"\x03", "<Ctrl-C>")
            if not any(self.resync(wait) for wait in RESYNC_WAIT):
                self.ready = False
        if self.ready:
            self._write(LOGOUT.encode(), "<logout>")
            self.ready = False
