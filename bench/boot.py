"""Boot-to-login detection: how long after the login prompt reaches the host the harness acts.

The bench's console relay timestamps every chunk it passes (HARNESS_CONSOLE_TRACE=1,
harness/vlab/relay.py), in both directions, on the host's monotonic clock. For each
`Board.boot()` (power off, power on, drive to a shell), the row takes the chunk that
completed the login prompt (its arrival is the baseline: the earliest the host could
know) and the first bytes the harness typed after it (the user name). The gap is the
harness's detection and reaction time, with nothing of the boot itself in it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from bench.context import Context
from bench.core import Row, check
from harness.lab.board import Board
from harness.vlab.boardhost_process import TRACE_ENV

TITLE = "boot-to-login detection"
BASELINE = "the time the login prompt's bytes reach the host (the bench relay's own timestamps)"


def read_trace(path: Path) -> list[tuple[int, str, bytes]]:
    chunks = []
    for line in path.read_text().splitlines():
        stamp, direction, data = line.split(" ")
        chunks.append((int(stamp), direction, bytes.fromhex(data)))
    return chunks


def detection(
    chunks: list[tuple[int, str, bytes]], since_ns: int, prompt: str, username: str
) -> tuple[float, float]:
    """(seconds from power-on request to prompt arrival, seconds from arrival to answer)."""
    stream, ends = bytearray(), []
    for stamp, direction, data in chunks:
        if direction == "b" and stamp >= since_ns:
            stream += data
            ends.append((len(stream), stamp))
    text = stream.decode("utf-8", "replace")
    match = re.search(prompt, text)
    check(match is not None, f"no login prompt /{prompt}/ in the traced boot output")
    assert match is not None
    end_byte = len(text[: match.end()].encode())
    arrived = next(stamp for end, stamp in ends if end >= end_byte)
    answer = next(
        (s for s, d, data in chunks if d == "c" and s >= arrived and data.strip(b"\r\n")), None
    )
    check(answer is not None, "the harness never typed after the login prompt")
    assert answer is not None
    typed = next(data for s, d, data in chunks if s == answer and d == "c")
    check(
        typed.decode(errors="replace").startswith(username[:1]),
        f"the harness's first keys after the prompt were {typed!r}, not the user name",
    )
    return (arrived - since_ns) / 1e9, (answer - arrived) / 1e9


def run(ctx: Context) -> Row:
    row = Row("boot", TITLE, BASELINE)
    previous = os.environ.get(TRACE_ENV)
    os.environ[TRACE_ENV] = "1"
    try:
        for ref in ctx.boards():
            boots = ctx.n(5 if ref == "sim" else 3, 1)
            folder = ctx.folder("boot")
            with ctx.board(ref) as running:
                trace = Path(running.state().state_dir) / "console.trace"
                profile = running.profile
                board = Board.open(profile, running.env_file, console_log=folder / "console.log")
                to_prompt, latency = [], []
                try:
                    for _ in range(boots):
                        started = time.monotonic_ns()
                        board.boot()
                        check(board.console.run("echo up").stdout == "up\n", "no shell after boot")
                        up, gap = detection(
                            read_trace(trace),
                            started,
                            profile.console.login_prompt,
                            profile.console.username,
                        )
                        to_prompt.append(up)
                        latency.append(gap)
                finally:
                    board.close()
            row.add(f"{ref}: power-on request to login prompt at the host", to_prompt, "s", True)
            seen = row.add(
                f"{ref}: prompt at the host to the harness typing the user name", latency
            )
            row.ok(f"{ref}: {boots} boots, each to a working shell")
            row.target(
                f"{ref}: detection, worst of {boots} boots",
                max(seen.samples) * 1000,
                "<=",
                50,
                " ms",
            )
    finally:
        if previous is None:
            os.environ.pop(TRACE_ENV, None)
        else:
            os.environ[TRACE_ENV] = previous
    return row
