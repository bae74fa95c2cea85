"""Board hosts ("benches"): one process per running virtual board, like a lab bench.

(Named boardhost, not bench, so it is not confused with the benchmarks in the top-level bench/.)

A separate process (not a thread of the test run) because the board must
behave like hardware that exists on its own: the console TCP connection
survives power cycles, power can be switched from another process (labgrid's
ExternalPowerDriver runs `harness lab power ...`), and `harness lab up` can
leave a board running for an engineer's shell. It still cannot leak: QEMU
dies with the bench (PDEATHSIG), and the bench dies with its owner (pidfd).

`start_bench()` launches one (harness/vlab/boardhost_process.py is the process
itself) and waits until it is serving; `stop_bench()` takes it down.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.errors import InfraError, Location, UserError
from harness.model.board import BoardProfile, load_board
from harness.vlab import state as lab_state
from harness.vlab.boardhost_process import FACTS_FILE
from harness.vlab.simboard import realize_profile
from harness.vlab.state import BenchState, BoardFacts

SIM_PROFILE = Path(__file__).with_name("sim-board.yaml")
# Benches this process started, kept so they can be reaped (they are detached, not waited on).
_children: dict[int, subprocess.Popen[bytes]] = {}
START_TIMEOUT = 120.0  # includes a first-time image build in the bench


def board_kind(profile: BoardProfile) -> str:
    virtual = profile.lab.virtual
    if virtual is None:
        raise UserError(
            f"board '{profile.name}' is not a virtual board (its lab is an env file or a place)",
            Location(profile.source, None, "lab"),
        )
    return "sim" if virtual.machine == "sim" else "qemu"


def resolve_board(ref: str, boards_dir: Path | None = None) -> BoardProfile:
    """A profile path, a name in boards/, or `sim` for the built-in simulated board."""
    from harness.model.board import BOARDS_DIR, find_board

    if ref == "sim" and not (boards_dir or BOARDS_DIR).joinpath("sim.yaml").exists():
        return load_board(SIM_PROFILE)
    return find_board(ref, boards_dir)


# ---------------------------------------------------------------------------------------------
# Launching and stopping benches (used by the CLI and the pytest fixtures)


def start_bench(
    profile: BoardProfile,
    name: str,
    *,
    lab_dir: Path,
    owner: int,
    timeout: float = START_TIMEOUT,
    kernel_package: str | None = None,
) -> BenchState:
    """Start a detached bench for `profile` and return its state once it serves the board.

    `kernel_package` boots a QEMU board with that Debian kernel package instead of the lab
    recipe's (`harness lab build --package kernel=…`); repro's A/B and bisection use it.

    The bench gets its own session, so a Ctrl-C meant for the caller does not
    take the board down; its lifetime is bound to `owner` instead.
    """
    kind = board_kind(profile)
    state_dir = lab_state.claim(lab_dir, name)
    try:
        if kind == "sim" and profile.source is not None:
            # The sim runs on the host's CPUs and memory: its profile says so.
            profile = realize_profile(profile.source, state_dir)
        facts = BoardFacts.of(name, kind, profile)
        if kernel_package is not None:
            if kind != "qemu":
                raise UserError(
                    f"a kernel package can only be booted on a QEMU board, not {kind!r}",
                    Location(field="--build"),
                )
            facts.kernel_package = kernel_package
        facts.save(state_dir / FACTS_FILE)
    except BaseException:
        shutil.rmtree(state_dir, ignore_errors=True)
        raise
    log = open(state_dir / "bench.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.vlab.boardhost_process",
                "--state-dir",
                str(state_dir),
                "--lab-dir",
                str(lab_dir),
                "--owner",
                str(owner),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()
    lab_state.write_pid(state_dir, proc.pid)
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            detail = _tail(state_dir / "bench.log")
            shutil.rmtree(state_dir, ignore_errors=True)
            raise InfraError(f"bench for '{name}' exited during start-up (code {code}): {detail}")
        try:
            state = BenchState.load(state_dir)
            break
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            shutil.rmtree(state_dir, ignore_errors=True)
            raise InfraError(f"bench for '{name}' did not come up within {timeout:.0f} s")
        time.sleep(0.005)
    _children[proc.pid] = proc
    return state


def stop_bench(state: BenchState, timeout: float = 15.0) -> None:
    """Ask the bench to power down and exit; kill it if it does not. Idempotent."""
    from harness.vlab.control import BenchUnreachable, request

    with contextlib.suppress(BenchUnreachable, InfraError):
        request(state.control, {"cmd": "shutdown"}, timeout=timeout)
    deadline = time.monotonic() + timeout
    while lab_state.pid_alive(state.pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    _reap(state.pid)
    shutil.rmtree(state.state_dir, ignore_errors=True)


def _reap(pid: int) -> None:
    """Collect the bench's exit status if it was our child, so no zombie remains."""
    proc = _children.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def wait_for_console(
    log_path: str | Path, pattern: str, timeout: float, start: int = 0
) -> re.Match[str]:
    """Wait until the console log (from byte `start`) matches `pattern`; InfraError on timeout."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    text = ""
    while True:
        try:
            with open(log_path, "rb") as log:
                log.seek(start)
                text = log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        match = regex.search(text)
        if match:
            return match
        if time.monotonic() > deadline:
            tail = text[-300:].replace("\r", "")
            raise InfraError(
                f"console {log_path} did not show /{pattern}/ within {timeout:.0f} s; last output: {tail!r}"
            )
        time.sleep(0.02)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "no output"
