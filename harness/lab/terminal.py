"""Turning raw console bytes into text a pattern can be matched against.

Boards decorate their console output with terminal escapes: busybox ash asks
for the cursor position (ESC[6n) after every prompt, bash brackets its input
with ESC[?2004h / ESC[?2004l, and prompts and `ls` add colours. None of it is
visible to a human, so none of it may decide whether a prompt was seen.
"""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), and the two-byte escapes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x1b[()][0-9A-Za-z]"
)
# Control characters other than tab and newline that carry no text.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def strip_escapes(text: str) -> str:
    """Remove terminal escape sequences and carriage returns, keep the visible text."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def printable(text: str) -> str:
    """Make control characters visible (\\x1b, \\x07) so a log line shows what the board sent."""
    text = text.replace("\r", "")  # the usual one, dropped without a call per line
    if not _CONTROLS.search(text):
        return text
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def visible_text(text: str) -> str:
    """The text as a terminal shows it: escapes removed and each backspace taking back the
    character before it (login(1) and U-Boot erase a typed character with "\\b \\b")."""
    text = _ESCAPES.sub("", text)
    if "\b" in text:
        shown: list[str] = []
        for char in text:
            if char == "\b":
                if shown and shown[-1] != "\n":
                    shown.pop()
            else:
                shown.append(char)
        text = "".join(shown)
    return _CONTROLS.sub("", text)
