"""The virtual lab's own costs: console relay, simulated-board start, QEMU boot to login.

- Relay: a shell reached through the bench's console relay (TCP -> bench -> pty) against
  the same busybox shell on a pty this process holds itself; both with echo off.
- Sim start: a simulated board ready (login prompt and SSH banner) against a QEMU board
  started the same way (the board the sim replaces in fast tests).
- QEMU boot: `qemu_command()` launched by hand, launch to the login prompt, for the PVH
  kernel the lab boots against Debian's compressed bzImage (its in-guest decompressor).
Under --quick only the relay and a sim start are measured (no QEMU).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.context import Context
from bench.core import REPO, Row, check, ratio
from bench.rawconsole import RawConsole
from harness.model.board import find_board, load_board
from harness.vlab.boardhost import SIM_PROFILE, resolve_board
from harness.vlab.handle import RunningBoard

TITLE = "virtual lab: console relay, board start, QEMU boot"
BASELINE = "bare pty; a QEMU board's start; Debian's bzImage boot"
GUARD = 300.0


def _round_trips(
    send: Callable[[bytes], None], recv: Callable[[], bytes], count: int
) -> list[float]:
    samples = []
    for index in range(count):
        marker = f"done-{index}-".encode()
        started = time.perf_counter()
        send(b"echo done-" + str(index).encode() + b"-\n")
        seen = b""
        while marker not in seen:
            seen += recv()
        samples.append(time.perf_counter() - started)
    return samples


def _bare_pty(count: int) -> list[float]:
    master, slave = os.openpty()
    shell = subprocess.Popen(
        ["busybox", "setsid", "-c", "busybox", "ash", "-i"],
        stdin=slave, stdout=slave, stderr=slave,
        env={"PS1": "# ", "PATH": "/usr/bin:/bin", "HOME": "/", "TERM": "vt100"},
    )  # fmt: skip
    os.close(slave)
    try:
        os.write(master, b"stty -echo; echo ready-$((1+1))\n")
        seen = b""
        while b"ready-2" not in seen:
            seen += os.read(master, 65536)
        return _round_trips(
            lambda data: os.write(master, data) and None, lambda: os.read(master, 65536), count
        )
    finally:
        shell.kill()
        shell.wait()
        os.close(master)


def _through_relay(ctx: Context, count: int) -> list[float]:
    with ctx.board("sim") as board:
        raw = RawConsole(board.console_port)
        try:
            raw.login(board.profile.console.username, board.profile.console.password or "")
            return _round_trips(raw.sock.sendall, raw.recv, count)
        finally:
            raw.close()


def _ready(ctx: Context, profile) -> float:
    started = time.perf_counter()
    board = RunningBoard.start(profile, f"ready{time.monotonic_ns() % 100000}", lab_dir=ctx.lab_dir)
    elapsed = time.perf_counter() - started
    board.stop()
    return elapsed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _boot_once(board_name: str, use_bzimage: bool = False) -> float:
    """Seconds from QEMU launch to the login prompt on its console socket."""
    from harness.vlab.build import build_lab
    from harness.vlab.qemu_cmd import qemu_command

    profile = find_board(board_name, REPO / "boards")
    artifacts = build_lab([profile.identity.arch])[profile.identity.arch]
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp:
        run_dir = Path(tmp)
        argv = qemu_command(
            profile, artifacts, run_dir=run_dir, console_socket=run_dir / "console.sock",
            ssh_port=_free_port(), qmp_socket=run_dir / "qmp.sock",
            agent_socket=run_dir / "agent.sock", console_log=run_dir / "console.log",
        )  # fmt: skip
        if use_bzimage:
            argv[argv.index("-kernel") + 1] = str(artifacts.directory / "vmlinuz")
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            sock = socket.socket(socket.AF_UNIX)
            while True:
                try:
                    sock.connect(str(run_dir / "console.sock"))
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    check(time.monotonic() - started < GUARD, "QEMU console socket never appeared")
                    time.sleep(0.01)
            seen = bytearray()
            deadline = time.monotonic() + GUARD
            while not re.search(rb"login: ", seen):
                check(
                    time.monotonic() < deadline, f"{board_name}: no login prompt in {GUARD:.0f} s"
                )
                sock.settimeout(deadline - time.monotonic())
                chunk = sock.recv(65536)
                check(bool(chunk), "QEMU closed its console")
                seen += chunk
            return time.monotonic() - started
        finally:
            proc.kill()
            proc.wait()


def run(ctx: Context) -> Row:
    row = Row("vlab", TITLE, BASELINE)
    count = ctx.n(300, 20)
    bare = row.add("relay: bare pty round trip", _bare_pty(count), baseline=True)
    relayed = row.add(
        "relay: through the bench's relay (TCP + bench process)", _through_relay(ctx, count)
    )
    row.notes.append(
        f"Relay overhead per command: {(relayed.median - bare.median) * 1000:+.3f} ms (ratio {ratio(relayed, bare):.2f}x)."
    )
    sim = row.add(
        "start: sim board ready (login prompt + SSH)",
        [_ready(ctx, load_board(SIM_PROFILE)) for _ in range(ctx.n(5, 1))],
        "s",
    )
    row.ok(f"{2 * count} relay round trips answered; sim board started {len(sim.samples)}x")
    if ctx.quick:
        return row
    qemu = row.add(
        "start: qemu-x86_64 ready (baseline)",
        [_ready(ctx, resolve_board("qemu-x86_64", REPO / "boards"))],
        "s",
        True,
    )
    row.notes.append(f"Sim board ready in {ratio(sim, qemu):.3f}x the QEMU board's time.")
    bz = row.add(
        "boot: qemu-x86_64 with Debian's bzImage, launch to login (baseline)",
        [_boot_once("qemu-x86_64", True) for _ in range(1)],
        "s",
        True,
    )
    for board in ("qemu-x86_64", "qemu-x86_64-mini", "qemu-aarch64-uboot"):
        boots = row.add(
            f"boot: {board}, launch to login", [_boot_once(board) for _ in range(1)], "s"
        )
        row.notes.append(f"{board} boots in {ratio(boots, bz):.2f}x the bzImage baseline.")
    row.ok("every QEMU boot reached its login prompt")
    return row
