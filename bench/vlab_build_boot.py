"""Virtual lab build and boot benchmark.

    python bench/vlab_build_boot.py [--boots 3] [--board NAME ...] [--cold-build]

Boot: each board is launched with qemu_command() one at a time, `--boots`
times; the time from launching QEMU to the console's login prompt is taken,
and QEMU's RSS is read once the shell is up. The baseline, measured in the
same run, is the qemu-x86_64 board booting Debian's compressed bzImage
(its in-guest XZ decompressor) instead of the PVH ELF kernel we boot.

Build (--cold-build): a build into an empty cache (downloads included)
against the same call once cached.

A loaded host slows everything alike; compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.model.board import find_board
from harness.vlab.build import build_lab
from harness.vlab.qemu_cmd import qemu_command

BOARDS_DIR = Path(__file__).resolve().parents[1] / "boards"
GUARD = 300.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _read_until(sock: socket.socket, pattern: bytes, seen: bytearray) -> None:
    deadline = time.monotonic() + GUARD
    while not re.search(pattern, seen):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {pattern!r} within {GUARD}s")
        sock.settimeout(deadline - time.monotonic())
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("console closed")
        seen += chunk


def _rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def boot_once(board_name: str, use_bzimage: bool = False) -> tuple[float, int]:
    """Seconds from QEMU launch to login prompt, and QEMU RSS (MiB) after logging in."""
    profile = find_board(board_name, BOARDS_DIR)
    artifacts = build_lab([profile.identity.arch])[profile.identity.arch]
    with tempfile.TemporaryDirectory(prefix="vlab-bench-") as tmp:
        run_dir = Path(tmp)
        argv = qemu_command(
            profile,
            artifacts,
            run_dir=run_dir,
            console_socket=run_dir / "console.sock",
            ssh_port=_free_port(),
            qmp_socket=run_dir / "qmp.sock",
            agent_socket=run_dir / "agent.sock",
            console_log=run_dir / "console.log",
        )
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
                    time.sleep(0.01)
            seen = bytearray()
            _read_until(sock, rb"login: ", seen)
            elapsed = time.monotonic() - started
            sock.sendall(b"root\n")
            _read_until(sock, rb"assword: ", seen)
            sock.sendall(b"root\n")
            _read_until(sock, rb"# ", seen)
            return elapsed, _rss_mib(proc.pid)
        finally:
            proc.kill()
            proc.wait()


def bench_boots(boards: list[str], boots: int) -> None:
    baseline = [boot_once("qemu-x86_64", use_bzimage=True)[0] for _ in range(boots)]
    base = statistics.median(baseline)
    print(
        f"baseline qemu-x86_64 booting Debian's bzImage: median {base:.2f}s to login ({boots} boots)"
    )
    for board in boards:
        samples = [boot_once(board) for _ in range(boots)]
        median = statistics.median(t for t, _ in samples)
        rss = statistics.median(r for _, r in samples)
        print(
            f"{board:22} median {median:5.2f}s to login  ratio to baseline {median / base:4.2f}"
            f"  QEMU RSS after login {rss} MiB  (boots: {', '.join(f'{t:.2f}' for t, _ in samples)})"
        )


def bench_build() -> None:
    with tempfile.TemporaryDirectory(prefix="vlab-cold-cache-") as tmp:
        started = time.monotonic()
        cold = build_lab(cache=Path(tmp))
        cold_s = time.monotonic() - started
        started = time.monotonic()
        warm = build_lab(cache=Path(tmp))
        warm_s = time.monotonic() - started
        # What an engineer waits for: a whole `harness lab build` process on a warm cache.
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "harness", "lab", "build", "--json"],
            env={**os.environ, "HARNESS_CACHE": tmp},
            capture_output=True,
            check=True,
        )
        command_s = time.monotonic() - started
    assert all(a.status == "built" for a in cold.values())
    assert all(a.status == "cached" for a in warm.values())
    print(
        f"build, empty cache (downloads included): {cold_s:.1f}s; cached call: {warm_s:.3f}s; "
        f"cached `harness lab build` process: {command_s:.2f}s (ratio cold/cached {cold_s / command_s:.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--board", action="append", dest="boards")
    parser.add_argument("--cold-build", action="store_true")
    parser.add_argument(
        "--no-boot", action="store_true", help="only the build benchmark (with --cold-build)"
    )
    args = parser.parse_args()
    print(
        f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start",
        file=sys.stderr,
    )
    if args.cold_build:
        bench_build()
    if not args.no_boot:
        bench_boots(
            args.boards or ["qemu-x86_64", "qemu-x86_64-mini", "qemu-aarch64-uboot"], args.boots
        )
    print(f"load average {os.getloadavg()[0]:.2f} at end", file=sys.stderr)


if __name__ == "__main__":
    main()
