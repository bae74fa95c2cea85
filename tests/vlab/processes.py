"""Finding a lab's processes by what their command line names (a state or lab folder), so a
test can show that taking a bench or lab down leaves none of them behind."""

from __future__ import annotations

import os
from pathlib import Path

from harness.vlab.state import pid_alive


def live_processes_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes, other than this one, whose command line contains `text`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline and pid_alive(int(entry)):
            found.append(int(entry))
    return found
