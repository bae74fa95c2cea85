"""Run a `harness` command while adding up the time spent inside board operations.

    python3 -m bench.probe OUT.json [--profile OUT.prof] -- run --board ... --plan ...

Wraps the operations that wait on the board (console and SSH commands, file copies,
login, boot, reboot, power cycle, recovery, device settling) so that the time inside
them is summed, counting only the outermost call when they nest (a reboot runs console
commands). Everything else in the process's wall time, interpreter start-up and
imports included, is the harness's own time. The wrappers call straight through, so
the run is the same run; OUT.json gets {"board_seconds", "calls", "exit_code"}.
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

WRAPPED = {
    "harness.lab.console:ConsoleSession": ["run", "login"],
    "harness.lab.ssh:SSHSession": ["run", "put", "get", "connect", "wait_ready"],
    "harness.lab.board:Board": ["boot", "reboot", "power_cycle", "ensure_shell", "settle"],
}


class Tally:
    def __init__(self) -> None:
        self.depth = 0
        self.seconds = 0.0
        self.calls: dict[str, int] = {}

    def wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.depth:
                return method(*args, **kwargs)
            self.depth += 1
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.depth -= 1

        return timed


def install(tally: Tally) -> None:
    import importlib

    for spec, methods in WRAPPED.items():
        module_name, cls_name = spec.split(":")
        cls = getattr(importlib.import_module(module_name), cls_name)
        for method in methods:
            setattr(cls, method, tally.wrap(f"{cls_name}.{method}", getattr(cls, method)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("harness_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = [a for a in args.harness_args if a != "--"]
    tally = Tally()
    profiler = cProfile.Profile() if args.profile else None
    outcome = {"exit_code": 0}

    def report() -> None:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        args.out.write_text(
            json.dumps({"board_seconds": tally.seconds, "calls": tally.calls, **outcome}, indent=1)
        )

    atexit.register(report)
    install(tally)
    from harness.cli import main as harness_main

    if profiler is not None:
        profiler.enable()
    try:
        harness_main(argv)
    except SystemExit as exc:
        outcome["exit_code"] = exc.code if isinstance(exc.code, int) else 1
        raise


if __name__ == "__main__":
    sys.exit(main())
