"""Watching a console stream for kernel crashes and unexpected resets.

The watch is fed every byte the console session reads, not just during boot,
because the crash that matters is usually the one in the middle of a test. It
works on whole lines (escapes stripped), keeps a few lines before each match
and collects the configured number of lines after it, so an event's excerpt
shows the panic message together with its call trace.

Resets have no message of their own: the sign is a bootloader or kernel banner
where none was expected. The watch therefore tracks the boot stage: after
`expect_boot()` one boot sequence (bootloader banners, each variant once, then
one kernel banner) is normal; any further banner is an `unexpected-reset`.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.lab.crash_patterns import (
    CONTEXT_BEFORE,
    PATTERNS,
    SEVERITY_RANK,
    UNEXPECTED_RESET,
    CrashPattern,
)
from harness.lab.literals import Needles, required_literals
from harness.lab.terminal import strip_escapes

# A "line" without a newline is cut here so binary junk cannot grow the buffer forever.
MAX_LINE = 4096
_NAMED_GROUP = re.compile(r"\(\?P<\w+>")
# The console session's command markers (raw, or as console.log writes them): not evidence.
_MARKER = re.compile(r"^(?:\x1e|\\x1e)[SERXL][0-9a-f]+(?::[0-9a-f]*)?(?:\x1e|\\x1e)$")


@dataclass
class CrashEvent:
    """One crash or reset seen on the console; `excerpt` grows until its context is complete."""

    kind: str
    severity: str
    description: str
    line: str
    line_number: int
    excerpt_lines: list[str] = field(default_factory=list)
    missing_after: int = 0

    @property
    def excerpt(self) -> str:
        return "\n".join(self.excerpt_lines)

    @property
    def complete(self) -> bool:
        return self.missing_after <= 0

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "description": self.description,
            "line": self.line,
            "line_number": self.line_number,
            "excerpt": self.excerpt,
        }


def most_severe(events: Iterable[CrashEvent]) -> CrashEvent | None:
    """The first event of the highest severity: the one a report should lead with."""
    best: CrashEvent | None = None
    for event in events:
        if best is None or SEVERITY_RANK[event.severity] > SEVERITY_RANK[best.severity]:
            best = event
    return best


@functools.cache
def _prefilter(
    patterns: tuple[CrashPattern, ...],
) -> tuple[re.Pattern[str], list[Needles] | None]:
    """The pre-filter regex and per-row fixed texts of a pattern set, worked out once per set.

    Working them out parses every row's regex (about 30 ms for the built-in rows); a watch is
    made per board, per console log scanned and per repro iteration, always from the same
    few sets, and the result depends on the patterns alone (CrashPattern is frozen).
    """
    # One pre-filter over all rows (named groups dropped: rows may share names).
    any_row = re.compile(
        "|".join(f"(?:{_NAMED_GROUP.sub('(?:', p.regex.pattern)})" for p in patterns)
    )
    # Fixed texts per row: a chunk containing none of them has no line worth matching.
    needles = [required_literals(p.regex) for p in patterns]
    return any_row, (None if any(n is None for n in needles) else needles)  # type: ignore[misc]


class CrashWatch:
    """Feed it console bytes; it appends `CrashEvent`s to `events` as it recognises them."""

    def __init__(
        self, patterns: Iterable[CrashPattern] = PATTERNS, extra: Iterable[CrashPattern] = ()
    ):
        self.patterns = (*extra, *patterns)
        self._any, self._needles = _prefilter(self.patterns)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""
        self._before: deque[str] = deque(maxlen=CONTEXT_BEFORE)
        self._open: list[CrashEvent] = []
        self._line_number = 0
        self.events: list[CrashEvent] = []
        self.expect_boot()

    # --- boot stage -------------------------------------------------------------------
    def expect_boot(self) -> None:
        """A boot is about to happen on purpose (power on, reboot): its banners are not a reset."""
        self._stage: str | None = None
        self._bootloader_variants: set[str] = set()

    def arm(self) -> None:
        """The board is up: from now on any boot banner means it reset on its own."""
        if self._stage is None:
            self._stage = "kernel"

    @property
    def booting(self) -> bool:
        return self._stage != "kernel"

    @property
    def stage(self) -> str | None:
        """None before any banner, then "bootloader" or "kernel": what started last."""
        return self._stage

    # --- feeding ----------------------------------------------------------------------
    def feed(self, data: bytes) -> list[CrashEvent]:
        """Process raw console bytes; returns the events that started in them."""
        return self._feed_text(self._decoder.decode(data))

    def feed_text(self, text: str) -> list[CrashEvent]:
        return self._feed_text(text)

    def flush(self) -> list[CrashEvent]:
        """End of stream: treat a trailing partial line as a line."""
        found: list[CrashEvent] = []
        if self._partial:
            found += self._line(self._partial)
            self._partial = ""
        for event in self._open:
            event.missing_after = 0
        self._open.clear()
        return found

    def _feed_text(self, text: str) -> list[CrashEvent]:
        found: list[CrashEvent] = []
        text = self._partial + text
        if self._quiet(text):
            self._skip_lines(text)
        else:
            *lines, self._partial = text.split("\n")
            for raw in lines:
                found += self._line(raw)
        while len(self._partial) > MAX_LINE:
            found += self._line(self._partial[:MAX_LINE])
            self._partial = self._partial[MAX_LINE:]
        return found

    def _quiet(self, text: str) -> bool:
        """True when no line of `text` can start or extend an event (the fast path of a
        burst of output): no event collects context and no row's fixed text occurs."""
        if self._open or self._needles is None or "\x1b]" in text:
            return False  # an OSC escape may span lines: strip line by line instead
        visible = strip_escapes(text)
        lowered = visible.lower() if any(n.folded for n in self._needles) else None
        return not any(n.found_in(visible, lowered) for n in self._needles)

    def _skip_lines(self, text: str) -> None:
        """What `_line` would do with lines that match nothing: count them, and keep the
        last few (markers excepted) as context for a later event."""
        head, newline, self._partial = text.rpartition("\n")
        if not newline:
            return
        self._line_number += head.count("\n") + 1
        recent = head.rsplit("\n", 2 * CONTEXT_BEFORE)[-2 * CONTEXT_BEFORE :]
        kept = [strip_escapes(r) for r in recent if not _MARKER.match(r.rstrip("\r"))]
        self._before.extend(kept[-CONTEXT_BEFORE:])

    def _line(self, raw: str) -> list[CrashEvent]:
        self._line_number += 1
        if _MARKER.match(raw.rstrip("\r")):
            return []
        line = strip_escapes(raw)
        for event in self._open:
            event.excerpt_lines.append(line)
            event.missing_after -= 1
        self._open = [e for e in self._open if not e.complete]
        found: list[CrashEvent] = []
        if self._any.search(line):
            for pattern in self.patterns:
                match = pattern.regex.search(line)
                if match:
                    event = self._classify(pattern, match, line)
                    if event is not None:
                        found.append(event)
                    break
        self._before.append(line)
        return found

    def _classify(
        self, pattern: CrashPattern, match: re.Match[str], line: str
    ) -> CrashEvent | None:
        kind, description = pattern.kind, pattern.description
        if pattern.boot_marker is not None:
            if not self._is_unexpected_boot(pattern.boot_marker, _stage_of(pattern, match)):
                return None
            kind = UNEXPECTED_RESET
            description = f"the board restarted unexpectedly ({pattern.description} again)"
        event = CrashEvent(
            kind=kind,
            severity=pattern.severity,
            description=description,
            line=line,
            line_number=self._line_number,
            excerpt_lines=[*self._before, line],
            missing_after=pattern.context_after,
        )
        self.events.append(event)
        if not event.complete:
            self._open.append(event)
        return event

    def _is_unexpected_boot(self, marker: str, variant: str) -> bool:
        if marker == "bootloader":
            unexpected = self._stage == "kernel" or variant in self._bootloader_variants
            if unexpected:
                self._bootloader_variants = set()
            self._stage = "bootloader"
            self._bootloader_variants.add(variant)
            return unexpected
        unexpected = self._stage == "kernel"
        self._stage = "kernel"
        self._bootloader_variants = set()
        return unexpected


def _stage_of(pattern: CrashPattern, match: re.Match[str]) -> str:
    """Which stage of a multi-stage firmware printed a banner (TF-A BL2, U-Boot SPL...):
    each stage shows once per boot, so only a repeated stage means the board restarted."""
    stage = match.groupdict().get("stage")
    if not stage:
        text = match.string
        stage = "SPL" if " SPL " in text else "TPL" if " TPL " in text else "main"
    return f"{pattern.description}:{stage.strip()}"
