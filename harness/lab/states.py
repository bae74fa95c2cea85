"""Where a board is, told from what its console printed.

The board state machine (machine.py) never assumes a state: before each
action it asks this module, which reads two kinds of evidence from the
console stream:

* *lines* that say a stage began: a firmware or bootloader banner, an
  autoboot countdown, the kernel starting, userspace starting, a restart or
  halt message, a kernel crash that leaves the board dead. The latest such
  line sets the *phase*.
* the *tail*: what the board printed last, with terminal escapes removed and
  backspaces applied (as a person sees the screen). A prompt counts only
  when it is the very last thing shown, because a kernel message printed
  after a prompt hides it.

A prompt at the tail wins over the phase (a login prompt after boot messages
means the boot is over). The phase alone decides while the board is busy:
typing into a board that is booting loses keystrokes at best, and a key
during U-Boot's countdown stops the autoboot, so "booting" means "wait".

    off ──power on──► bootloader ──autoboot / boot command──► booting
     ▲                    ▲                                      │
     │                    └────────── reset (banner again) ◄─────┤
     └── power off / halt                                         ▼
    crashed ◄── panic ── shell ◄── login (user, password) ◄── login prompt
                           ▲
    unknown ── Enter / probe ┘  (only when the console is quiet)
"""

from __future__ import annotations

import codecs
import enum
import re
import time
from dataclasses import dataclass

from harness.lab.crash_patterns import PATTERNS
from harness.lab.literals import Needles, required_literals
from harness.lab.prompt import Prompts
from harness.lab.terminal import strip_escapes, visible_text
from harness.model.bootloaders import ResolvedBootloader

# Crash kinds after which the board cannot answer until it is powered again.
DEAD_AFTER = frozenset({"panic", "no-root-fs", "init-segfault"})
KERNEL_START = r"Starting kernel \.\.\.|Booting Linux on physical CPU|Linux version \d+\.\d+\S* \("
USERSPACE_START = r"Run /\S+ as init process|Freeing unused kernel (?:image )?memory"
# What kernels and init systems print on the way down during a deliberate reboot.
RESTART_SIGNS = r"reboot: Restarting system|Requesting system reboot|Restarting system"
HALT_SIGNS = r"reboot: Power down|reboot: System halted|System halted\."
# How much of the most recent output the tail keeps (a screenful and then some).
TAIL_BYTES = 8192
MAX_LINE = 4096


class BoardState(enum.Enum):
    """The states of a board, in the order a boot passes through them."""

    OFF = "off"
    BOOTLOADER = "bootloader"
    BOOTING = "booting"
    LOGIN = "login"
    SHELL = "shell"
    CRASHED = "crashed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Observation:
    """A state with the detail that decides the next action, and the evidence for it."""

    state: BoardState
    detail: str
    evidence: str

    def __str__(self) -> str:
        return f"{self.state.value} ({self.detail})"


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    state: BoardState
    detail: str


class ConsoleEvidence:
    """Fed every byte the console reads; answers `observe()` without touching the board."""

    def __init__(self, prompts: Prompts, loader: ResolvedBootloader | None):
        self.prompts = prompts
        self.loader = loader
        self._rules = _rules(loader)
        # Fixed texts per rule (harness/lab/literals.py): a chunk with none of them needs no
        # per-line matching, which keeps a burst of command output cheap.
        needles = [required_literals(rule.regex) for rule in self._rules]
        self._needles: list[Needles] | None = (
            None if any(n is None for n in needles) else needles  # type: ignore[misc]
        )
        self._bootloader_prompt = (
            re.compile(f"(?:{loader.prompt})$") if loader and loader.prompt else None
        )
        self._autoboot = re.compile(loader.autoboot) if loader and loader.autoboot else None
        self._menu = re.compile(loader.menu) if loader and loader.menu else None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""
        self._tail = ""
        self.phase = Observation(BoardState.UNKNOWN, "nothing seen yet", "")
        self.phase_number = 0
        # Lines that start a boot (a banner, the kernel starting): typed input older than the
        # latest one went to a board that has since restarted.
        self.boots_seen = 0
        self.last_output = time.monotonic()

    # --- feeding ------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.last_output = time.monotonic()
        text = self._decoder.decode(data)
        self._tail = (self._tail + text)[-TAIL_BYTES:]
        text = self._partial + text
        if self._quiet(text):
            self._partial = text.rpartition("\n")[2]
        else:
            *lines, self._partial = text.split("\n")
            for line in lines:
                self._line(line)
        if len(self._partial) > MAX_LINE:
            self._line(self._partial[:MAX_LINE])
            self._partial = self._partial[MAX_LINE:]

    def _quiet(self, text: str) -> bool:
        """True when no line of `text` can match a rule (no rule's fixed text occurs)."""
        if self._needles is None or "\b" in text or "\x1b]" in text:
            return False  # backspaces and OSC escapes are resolved line by line
        visible = strip_escapes(text)
        lowered = visible.lower() if any(n.folded for n in self._needles) else None
        return not any(n.found_in(visible, lowered) for n in self._needles)

    def _line(self, raw: str) -> None:
        line = visible_text(raw)
        if not line.strip():
            return
        for rule in self._rules:
            if rule.regex.search(line):
                if (rule.state is BoardState.BOOTLOADER and rule.detail != "autoboot") or (
                    rule.state is BoardState.BOOTING and rule.detail in ("kernel", "restarting")
                ):
                    self.boots_seen += 1
                self.set_phase(rule.state, rule.detail, line.strip())
                return

    def set_phase(self, state: BoardState, detail: str, evidence: str) -> None:
        """Record a stage change: from a console line, or from the harness's own action
        (power off, power on, `reboot` sent)."""
        self.phase = Observation(state, detail, evidence[:200])
        self.phase_number += 1

    def forget_tail(self) -> None:
        """What was shown so far is answered (the harness typed at it): only new output counts."""
        self._tail = ""

    # --- reading ------------------------------------------------------------------------
    @property
    def quiet_for(self) -> float:
        return time.monotonic() - self.last_output

    def screen(self, chars: int = 600) -> str:
        """The end of the output as a person would see it."""
        return visible_text(self._tail[-4 * chars :])[-chars:]

    def observe(self) -> Observation:
        tail = self.screen()
        last = tail[-200:]
        if self._bootloader_prompt and self._bootloader_prompt.search(last):
            return Observation(BoardState.BOOTLOADER, "prompt", last.splitlines()[-1:][0])
        lines = [line for line in tail.splitlines() if line.strip()]
        if self._autoboot and lines and self._autoboot.search(lines[-1]):
            return Observation(BoardState.BOOTLOADER, "autoboot", lines[-1])
        if (
            self._menu
            and self.phase.state is BoardState.BOOTLOADER
            and any(self._menu.search(line) for line in lines[-6:])
        ):
            return Observation(BoardState.BOOTLOADER, "menu", lines[-1])
        prompt = self.prompts.which(last)
        if prompt in ("login", "password"):
            return Observation(BoardState.LOGIN, prompt, last.splitlines()[-1:][0])
        if prompt == "shell":
            return Observation(BoardState.SHELL, "prompt", last.splitlines()[-1:][0])
        return self.phase

    def typed_line(self, line_start: re.Pattern[str]) -> str | None:
        """What stands after the last `line_start` (a prompt) on the screen: the echo of what
        was typed there; None when no such prompt is on the screen."""
        tail = self.screen(1200)
        matches = list(line_start.finditer(tail))
        if not matches:
            return None
        return tail[matches[-1].end() :]


def _rules(loader: ResolvedBootloader | None) -> list[_Rule]:
    """Line rules, most specific first; the crash table's rows are reused, not copied."""
    rules: list[_Rule] = []
    for pattern in PATTERNS:
        if pattern.kind in DEAD_AFTER:
            rules.append(_Rule(pattern.regex, BoardState.CRASHED, pattern.kind))
    rules.append(_Rule(re.compile(HALT_SIGNS), BoardState.OFF, "halted"))
    rules.append(_Rule(re.compile(RESTART_SIGNS), BoardState.BOOTING, "restarting"))
    if loader is not None:
        if loader.autoboot:
            rules.append(_Rule(re.compile(loader.autoboot), BoardState.BOOTLOADER, "autoboot"))
        if loader.banner:
            rules.append(_Rule(re.compile(loader.banner), BoardState.BOOTLOADER, "running"))
    for pattern in PATTERNS:
        if pattern.boot_marker == "bootloader":
            rules.append(_Rule(pattern.regex, BoardState.BOOTLOADER, "firmware"))
    rules.append(_Rule(re.compile(KERNEL_START), BoardState.BOOTING, "kernel"))
    rules.append(_Rule(re.compile(USERSPACE_START), BoardState.BOOTING, "userspace"))
    return rules
