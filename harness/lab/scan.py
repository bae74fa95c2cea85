"""Classifying crashes and resets in a console log after the fact.

Support engineers get console logs from customers (raw captures, minicom or
picocom logs, compressed) and from our own runs (console.log, see
consolelog.py). Both go through the same `CrashWatch` the live session uses,
so a signature added to crash_patterns.py is found in both places. In our own
logs, lines the harness sent are skipped (they are commands, not board output)
and the harness's power and reboot notes mark deliberate boots, which are not
resets.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from dataclasses import dataclass
from pathlib import Path

from harness.errors import Location, UserError
from harness.lab.consolelog import BOARD, NOTE, parse_line
from harness.lab.crashwatch import CrashEvent, CrashWatch
from harness.userfile import open_input

_OPENERS = {".gz": gzip.open, ".xz": lzma.open, ".lzma": lzma.open, ".bz2": bz2.open}
# Harness notes (consolelog.py) after which a boot is deliberate.
DELIBERATE_BOOT_NOTES = ("power on", "power cycle", "reboot")


@dataclass
class ScanReport:
    file: Path
    lines: int
    events: list[CrashEvent]

    @property
    def clean(self) -> bool:
        return not self.events

    def to_dict(self) -> dict[str, object]:
        return {
            "file": str(self.file),
            "lines": self.lines,
            "clean": self.clean,
            "events": [e.to_dict() for e in self.events],
        }


def _looks_binary(head: bytes) -> bool:
    """A console capture is text with a little terminal junk; an image or archive is not."""
    controls = sum(
        1 for byte in head if (byte < 0x20 and byte not in b"\t\n\r\x1b") or byte == 0x7F
    )
    return bool(head) and controls > len(head) // 10


def read_log(path: Path, limit: int | None = None) -> str:
    """The log's text (decompressed by suffix); a UserError names the file when it cannot be read.

    `limit` bounds the text in bytes *after* decompression: a customer's 16 MiB .gz
    can hold gigabytes of zeros, so callers reading untrusted logs pass one.
    """
    opener = _OPENERS.get(path.suffix.lower())
    try:
        with open_input(path) as raw:
            handle = opener(raw, "rb") if opener is not None else raw
            data = handle.read() if limit is None else handle.read(limit + 1)
    except IsADirectoryError as exc:
        raise UserError("is a directory, not a console log", Location(path)) from exc
    except FileNotFoundError as exc:
        raise UserError("console log not found", Location(path)) from exc
    except PermissionError as exc:
        raise UserError("console log is not readable (permission denied)", Location(path)) from exc
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise UserError(f"cannot read the console log: {exc}", Location(path)) from exc
    if limit is not None and len(data) > limit:
        raise UserError(
            f"console log is larger than {limit >> 20} MiB once decompressed: trim it to the failure",
            Location(path),
        )
    if _looks_binary(data[:8192]):
        raise UserError(
            "this is a binary file, not a console log (for a compressed log keep its .gz/.xz/.bz2 suffix)",
            Location(path),
        )
    return data.decode("utf-8", errors="replace")


def scan_text(text: str, file: Path) -> ScanReport:
    watch = CrashWatch()
    file_lines: list[int] = []  # file line of each line fed to the watch
    count = 0
    for number, line in enumerate(text.splitlines(), start=1):
        count = number
        _stamp, kind, body = parse_line(line)
        if kind == NOTE:
            if body.startswith(DELIBERATE_BOOT_NOTES):
                watch.expect_boot()
            continue
        if kind != BOARD:
            continue
        file_lines.append(number)
        watch.feed_text(body + "\n")
    watch.flush()
    for event in watch.events:
        event.line_number = (
            file_lines[event.line_number - 1] if event.line_number <= len(file_lines) else count
        )
    return ScanReport(file=file, lines=count, events=list(watch.events))


def scan_file(path: str | Path) -> ScanReport:
    path = Path(path)
    return scan_text(read_log(path), path)
