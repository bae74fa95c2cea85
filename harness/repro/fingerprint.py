"""Crash fingerprints: is the board's crash the same failure as the customer's?

Crashes are found by the same scanner as `harness scan` (crash table in
harness/lab/crash_patterns.py). A crash *sequence* (an Oops followed by the
panic it causes, say) is identified by its first error or fatal event, the
root cause, and reduced to:

- the crash kind from the table;
- the faulting function (`RIP: …`, `pc : …`, `PC is at …`), else the first
  meaningful frame;
- up to five top stack frames, skipping unreliable `?` frames and the generic
  frames every crash shares (dump_stack, panic, die, …);
- for a crash with no frames at all, its message.

Everything that changes from one occurrence to the next is removed: addresses,
`+0x…/0x…` offsets, PIDs, timestamps, CPU numbers, and compiler clone suffixes
(`.cold`, `.isra.0`, `.constprop.0`) that differ between builds of the same
code. There is no library for this normalisation (kernel trace formats are
plain text), hence the regexes here.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from harness.lab.consolelog import BOARD, parse_line
from harness.lab.crash_patterns import UNEXPECTED_RESET
from harness.lab.scan import read_log, scan_text
from harness.model.case_records import Fingerprint, SignatureMatch

WINDOW = 60  # lines after a crash line searched for its function and frames
MAX_FRAMES = 5
_TIMESTAMP = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?")
_FUNCTION = re.compile(
    r"(?:RIP: [0-9a-f]{4}:|\bpc : |\bPC is at |\bEIP: (?:[0-9a-f]{4}:)?\[<[0-9a-f]+>\] )"
    r"(?:\[<[0-9a-f]+>\] )?([A-Za-z_][\w.]*)\+0x"
)
_FRAME = re.compile(
    r"^\s*(?:\[<[0-9a-f]+>\]\s*)?(\?\s+)?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+(\s+\[\w+\])?"
)
_CLONE = re.compile(r"\.(?:cold|isra|constprop|part|lto_priv|llvm)(?:\.\d+)*$")
_GENERIC = frozenset(
    {
        "dump_stack",
        "dump_stack_lvl",
        "show_stack",
        "dump_backtrace",
        "panic",
        "vpanic",
        "nmi_panic",
        "die",
        "die_kernel_fault",
        "oops_end",
        "__die",
        "__die_body",
        "__warn",
        "warn_slowpath_fmt",
        "report_bug",
        "handle_bug",
        "exc_invalid_op",
        "asm_exc_invalid_op",
        "exc_page_fault",
        "asm_exc_page_fault",
        "page_fault_oops",
        "do_user_addr_fault",
        "kernelmode_fixup_or_oops",
        "no_context",
        "__do_kernel_fault",
        "do_page_fault",
        "do_translation_fault",
        "do_mem_abort",
        "el1_abort",
        "el1h_64_sync_handler",
        "el1h_64_sync",
        "_printk",
        "printk",
    }
)
_END = re.compile(r"---\[ end |^\s*</TASK>")
_NUMBERS = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{8,}\b|\b\d+\b", re.IGNORECASE)


def _clean(line: str) -> str:
    return _TIMESTAMP.sub("", line).rstrip()


def _symbol(name: str) -> str:
    return _CLONE.sub("", name)


def _board_lines(text: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        _stamp, kind, body = parse_line(raw)
        out.append(_clean(body) if kind == BOARD else "")
    return out


def _fingerprint(lines: list[str], start: int, kind: str, crash_line: str) -> Fingerprint:
    function: str | None = None
    frames: list[str] = []
    window = lines[start : start + WINDOW]
    for index, line in enumerate(window):
        if index > 0 and _END.search(line) and frames:
            break
        if function is None:
            found = _FUNCTION.search(line)
            if found:
                function = _symbol(found.group(1))
        frame = _FRAME.match(line)
        if frame and not frame.group(1) and len(frames) < MAX_FRAMES:
            name = _symbol(frame.group(2))
            module = (frame.group(3) or "").strip()
            if name not in _GENERIC:
                frames.append(f"{name} {module}".strip())
    if function is None and frames:
        function = frames[0].split()[0]
    message = None
    if not frames and function is None:
        body = crash_line.split("not syncing:", 1)[-1] if "not syncing:" in crash_line else ""
        message = " ".join(_NUMBERS.sub("N", body).split()) or None
    key = "|".join([kind, function or "", ">".join(frames), message or ""])
    return Fingerprint(
        id=hashlib.sha256(key.encode()).hexdigest()[:16],
        kind=kind,
        function=function,
        frames=frames,
        message=message,
        line=crash_line.strip()[:300],
    )


def bare(kind: str, line: str) -> Fingerprint:
    """A crash seen live whose trace the console slice did not keep: its kind is all we know."""
    return Fingerprint(
        id=hashlib.sha256(f"{kind}|||".encode()).hexdigest()[:16],
        kind=kind,
        function=None,
        frames=[],
        line=line.strip()[:300],
    )


def fingerprints(text: str, file: Path | str = "<console>") -> list[Fingerprint]:
    """One fingerprint per crash sequence in a console log (its root event), in log order."""
    report = scan_text(text, Path(file))
    lines = _board_lines(text)
    found: list[Fingerprint] = []
    last_root = -(10**9)
    for event in report.events:
        if event.severity not in ("error", "fatal") or event.kind == UNEXPECTED_RESET:
            continue
        index = event.line_number - 1
        if index - last_root <= WINDOW:
            continue  # the same sequence: an Oops's panic, a lockup's follow-ups
        last_root = index
        found.append(_fingerprint(lines, index, event.kind, _clean(event.line)))
    return found


def log_fingerprints(path: Path) -> list[Fingerprint]:
    """Fingerprints of a customer's log, read with the attachment size limit (after
    decompression too: the log is untrusted)."""
    from harness.model.case import MAX_ATTACHMENT_BYTES

    return fingerprints(read_log(path, limit=MAX_ATTACHMENT_BYTES), path)


def compare(board: Fingerprint | None, customer: list[Fingerprint]) -> SignatureMatch:
    """same failure / different failure / no crash, for the board's crash against the log's."""
    if board is None:
        return "no crash"
    if any(board.id == theirs.id for theirs in customer):
        return "same failure"
    return "different failure"
