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
from collections.abc import Callable
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
    os_image: Path | None = None,
) -> BenchState:
    """Start a detached bench for `profile` and return its state once it serves the board.

    `kernel_package` boots a QEMU board with that Debian kernel package instead of the lab
    recipe's (`harness lab build --package kernel=…`); repro's A/B and bisection use it.
    `os_image` boots a QEMU board from that OS image (harness/vlab/osimage.py) instead.

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
        if os_image is not None:
            if kind != "qemu":
                raise UserError(
                    f"an OS image can only be deployed on a QEMU board, not on the {kind!r} board "
                    f"{profile.name}: it has no disk to boot from",
                    Location(field="--image"),
                )
            facts.os_image = str(os_image)
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


# After SIGKILL (the bench's own, or PDEATHSIG for its board) a process is gone within
# milliseconds unless the kernel holds it in an uninterruptible sleep; this bounds that only.
KILLED_GONE_BOUND = 30.0


def stop_bench(state: BenchState, timeout: float = 15.0) -> None:
    """Ask the bench to power down and exit; kill it if it does not. Idempotent.

    Returns only once the bench and its board's process (QEMU, or the simulated board's
    namespace) are gone, so whoever took the board down can start one of the same name, on
    the same ports and disk images, at once, and finds no process of it left. A bench that
    exits by itself has waited for its board; a killed one has not (the board dies with it
    through PDEATHSIG, a moment later), so the board is waited for too.
    """
    from harness.vlab.control import BenchUnreachable, request

    with contextlib.suppress(FileNotFoundError, ValueError, TypeError):
        state = BenchState.load(Path(state.state_dir))  # the board process of now
    with contextlib.suppress(BenchUnreachable, InfraError):
        request(state.control, {"cmd": "shutdown"}, timeout=timeout)
    bench = _Process(state.pid, "bench", lambda: lab_state.is_bench(state.pid))
    if not bench.gone_within(timeout):
        bench.kill()
    board = _board_process(state)
    for process in (bench, board) if board is not None else (bench,):
        if not process.gone_within(KILLED_GONE_BOUND):
            process.kill()
            if not process.gone_within(KILLED_GONE_BOUND):
                raise InfraError(
                    f"the {process.what} of '{state.name}' (pid {process.pid}) is still "
                    f"running {2 * KILLED_GONE_BOUND:.0f} s after SIGKILL"
                )
    _reap(state.pid)
    shutil.rmtree(state.state_dir, ignore_errors=True)


class _Process:
    """A process of a bench, told from a reused pid by `ours` (its command line)."""

    def __init__(self, pid: int, what: str, ours: Callable[[], bool]):
        self.pid, self.what, self.ours = pid, what, ours

    def gone_within(self, bound: float) -> bool:
        deadline = time.monotonic() + bound
        while self.ours():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def kill(self) -> None:
        if self.ours():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def _board_process(state: BenchState) -> _Process | None:
    """The board's machine process (QEMU, or unshare for a simulated board): its command
    line names the bench's state folder, which a reused pid's would not."""
    if state.machine_pid is None:
        return None
    pid, folder = state.machine_pid, state.state_dir.encode() + b"/"

    def ours() -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return folder in cmdline and lab_state.pid_alive(pid)

    return _Process(pid, "board process", ours)


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
