"""How fast a simulated board is ready, against a QEMU board started in the same run.

Usage: python bench/vlab_sim_start.py [--sim-runs 5] [--qemu-board qemu-x86_64] [--qemu-runs 1]

"Ready" is what the fixtures wait for: the login prompt on the console and an
SSH server answering with its banner, measured from the call that starts the
bench. The QEMU board is the baseline because it is what the sim board
replaces in fast tests; both are measured now, on this machine's current load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness.model.board import load_board
from harness.vlab.boardhost import SIM_PROFILE, resolve_board
from harness.vlab.handle import RunningBoard


def time_to_ready(profile, name: str, lab_dir: Path) -> float:
    started = time.perf_counter()
    board = RunningBoard.start(profile, name, lab_dir=lab_dir)
    elapsed = time.perf_counter() - started
    board.stop()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-runs", type=int, default=5)
    parser.add_argument("--qemu-board", default="qemu-x86_64")
    parser.add_argument("--qemu-runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vlab-bench-") as tmp:
        lab_dir = Path(tmp)
        sim = [
            time_to_ready(load_board(SIM_PROFILE), f"sim{i}", lab_dir) for i in range(args.sim_runs)
        ]
        qemu_profile = resolve_board(args.qemu_board)
        qemu = [time_to_ready(qemu_profile, f"q{i}", lab_dir) for i in range(args.qemu_runs)]
    sim_s, qemu_s = statistics.median(sim), statistics.median(qemu)
    print(
        f"sim board ready (login prompt + SSH): median {sim_s * 1000:.0f} ms "
        f"(min {min(sim) * 1000:.0f}, max {max(sim) * 1000:.0f}, n={len(sim)})"
    )
    print(f"{args.qemu_board} ready (baseline):     median {qemu_s * 1000:.0f} ms (n={len(qemu)})")
    print(f"ratio sim/qemu: {sim_s / qemu_s:.3f}  (sim is {qemu_s / sim_s:.1f}x faster)")


if __name__ == "__main__":
    main()
