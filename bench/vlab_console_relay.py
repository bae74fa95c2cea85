"""Cost of the bench's console relay: a shell reached through it vs the same shell on a bare pty.

Usage: python bench/vlab_console_relay.py [--commands 300]

Relay path: TCP client -> bench -> pty -> busybox ash of a simulated board,
and back. Baseline (same run): busybox ash on a pty this process holds itself,
so the difference is what the relay (an extra process and a TCP hop, with
TCP_NODELAY) adds to one command round trip. Both shells run with `stty -echo`,
as the harness's console session does.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.model.board import load_board
from harness.vlab.boardhost import SIM_PROFILE
from harness.vlab.handle import RunningBoard


def round_trips(
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


def until(recv: Callable[[], bytes], marker: bytes) -> None:
    seen = b""
    while marker not in seen:
        seen += recv()


def through_relay(count: int, lab_dir: Path) -> list[float]:
    board = RunningBoard.start(load_board(SIM_PROFILE), "relay", lab_dir=lab_dir)
    try:
        sock = socket.create_connection(("127.0.0.1", board.console_port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def recv() -> bytes:
            return sock.recv(65536)

        sock.sendall(b"\n")
        until(recv, b"login: ")
        sock.sendall(b"root\n")
        until(recv, b"Password: ")
        sock.sendall(b"root\n")
        until(recv, b"# ")
        sock.sendall(b"stty -echo; echo ready-$((1+1))\n")
        until(recv, b"ready-2")
        return round_trips(sock.sendall, recv, count)
    finally:
        board.stop()


def on_bare_pty(count: int) -> list[float]:
    master, slave = os.openpty()
    shell = subprocess.Popen(
        ["busybox", "setsid", "-c", "busybox", "ash", "-i"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={"PS1": "# ", "PATH": "/usr/bin:/bin", "HOME": "/", "TERM": "vt100"},
    )
    os.close(slave)

    def send(data: bytes) -> None:
        os.write(master, data)

    def recv() -> bytes:
        return os.read(master, 65536)

    try:
        send(b"stty -echo; echo ready-$((1+1))\n")
        until(recv, b"ready-2")
        return round_trips(send, recv, count)
    finally:
        shell.kill()
        shell.wait()
        os.close(master)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=300)
    args = parser.parse_args()
    baseline = on_bare_pty(args.commands)
    with tempfile.TemporaryDirectory(prefix="vlab-relay-") as tmp:
        relayed = through_relay(args.commands, Path(tmp))
    base_ms = statistics.median(baseline) * 1000
    relay_ms = statistics.median(relayed) * 1000
    print(f"bare pty round trip (baseline): median {base_ms:.3f} ms (n={len(baseline)})")
    print(f"through the bench's relay:      median {relay_ms:.3f} ms (n={len(relayed)})")
    print(f"relay overhead: {relay_ms - base_ms:+.3f} ms a command, ratio {relay_ms / base_ms:.2f}")


if __name__ == "__main__":
    main()
