"""The console.log of a run: everything the board printed, and what the harness typed.

The session turns the board's echo off (so a command costs one round trip),
which means the board no longer shows what was sent; the log writes those
lines itself, marked `>`, so a reader can still follow the conversation.
Each line carries the UTC time its first byte was read. The file is
line-buffered and flushed on every line, so a harness that is killed loses at
most the partial line it was reading.

Line format (one per line, parsed back by `parse_line` for `harness scan`):
    2026-11-28T07:06:28.123Z | text the board printed
    2026-11-28T07:06:28.124Z > line the harness sent
    2026-11-28T07:06:28.125Z # note from the harness (power on, login, ...)
"""

from __future__ import annotations

import codecs
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from harness.lab.terminal import printable

BOARD, SENT, NOTE = "|", ">", "#"
_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ([|>#]) ?(.*)$")


def _stamp(when: float) -> str:
    moment = datetime.fromtimestamp(when, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_line(line: str) -> tuple[str | None, str, str]:
    """(timestamp, kind, text) of a console.log line; (None, BOARD, line) for foreign logs."""
    match = _LINE.match(line)
    if match is None:
        return None, BOARD, line
    return match.group(1), match.group(2), match.group(3)


class ConsoleLog:
    """Appends timestamped console traffic to a file (or keeps it only in memory when path is None)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self._file: TextIO | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
        self._partial = ""
        self._partial_since = 0.0
        self._stamped = (-1.0, "")  # the last time formatted: lines of one chunk share it

    def board(self, data: bytes, when: float | None = None) -> None:
        """Record bytes read from the board; complete lines are written at once."""
        when = time.time() if when is None else when
        text = self._decoder.decode(data)
        if not text:
            return
        if not self._partial:
            self._partial_since = when
        text = self._partial + text
        *lines, self._partial = text.split("\n")
        if lines:
            # The first line began with the partial one; the rest arrived now: one write each.
            self._write(self._partial_since, BOARD, lines[0])
            if len(lines) > 1:
                self._write(when, BOARD, "\n".join(lines[1:]))
            self._partial_since = when
        if self._partial and len(self._partial) > 4096:
            self.flush_partial()

    def sent(self, line: str, when: float | None = None) -> None:
        """Record a line the harness sent (the board does not echo it)."""
        self.flush_partial()
        self._write(time.time() if when is None else when, SENT, line.rstrip("\n"))

    def note(self, text: str) -> None:
        """Record what the harness did that is not console traffic (power, login, recovery)."""
        self.flush_partial()
        self._write(time.time(), NOTE, text)

    def flush_partial(self) -> None:
        """Write a line the board has not finished yet (a prompt), so the order stays true."""
        if self._partial:
            self._write(self._partial_since, BOARD, self._partial)
            self._partial = ""

    def close(self) -> None:
        self.flush_partial()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, when: float, kind: str, text: str) -> None:
        if self._file is None:
            return
        if self._stamped[0] != when:
            self._stamped = (when, _stamp(when))
        head = f"{self._stamped[1]} {kind} "
        # One write per call (the file is line-buffered: one flush, not one per line).
        self._file.write("".join(f"{head}{part}\n" for part in printable(text).split("\n")))
