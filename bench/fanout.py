"""Fan-out: 1, 3 and 6 simulated boards certified in parallel through labgrid places.

A real `labgrid-coordinator` and one `labgrid-exporter` export every board's console
(NetworkSerialPort) and SSH (NetworkService) as one resource group per board; a place
per board matches its group and is acquired, as a CI job would. Then N
`harness run --place` processes run the fan-out plan (console, SSH, SFTP) at once, one
per place; wall(N) is from the first start to the last exit. Every run must pass.
The baseline is one board alone (N = 1), measured in the same run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from bench.context import Context
from bench.core import REPO, Row, check

TITLE = "fan-out through labgrid places"
BASELINE = "one board alone"
PLAN = Path(__file__).with_name("plans") / "fanout.yaml"
GUARD = 120.0  # a bound for a hang only


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _client(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["labgrid-client", *args], env=env, capture_output=True, text=True, timeout=300
    )
    check(done.returncode == 0, f"labgrid-client {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _place(env: dict[str, str], index: int) -> None:
    """Place bench-pINDEX, matching the exporter's group benchINDEX, acquired."""
    place = f"bench-p{index}"
    _client(env, "-p", place, "create")
    _client(env, "-p", place, "add-match", f"benchexp/bench{index}/*")
    _client(env, "-p", place, "acquire")


@contextlib.contextmanager
def coordinator(boards: list, folder: Path) -> Iterator[dict[str, str]]:
    """Coordinator + exporter serving `boards` as places bench-p0.. (acquired); the env."""
    exported, known = {}, []
    for index, board in enumerate(boards):
        doc = yaml.safe_load(board.env_file.read_text())
        resources = doc["targets"]["main"]["resources"]
        exported[f"bench{index}"] = {
            name: resources[name] for name in ("NetworkSerialPort", "NetworkService")
        }
        known.append(f"[127.0.0.1]:{board.ssh_port} {doc['options']['harness_ssh_host_key']}")
    (folder / "exporter.yaml").write_text(yaml.safe_dump(exported))
    (folder / "known_hosts").write_text("\n".join(known) + "\n")
    address = f"127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "LG_COORDINATOR": address,
        "HARNESS_SSH_KNOWN_HOSTS": str(folder / "known_hosts"),
    }
    procs: list[subprocess.Popen[bytes]] = []
    with (folder / "coordinator.log").open("wb") as log:
        procs.append(
            subprocess.Popen(
                ["labgrid-coordinator", "-l", address], cwd=folder, stdout=log, stderr=log
            )
        )
    try:
        deadline = time.monotonic() + GUARD
        while True:
            check(procs[0].poll() is None, "labgrid-coordinator exited")
            try:
                socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1])), 5).close()
                break
            except OSError:
                check(time.monotonic() < deadline, "labgrid-coordinator never listened")
                time.sleep(0.05)
        with (folder / "exporter.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        "labgrid-exporter",
                        "-c",
                        address,
                        "--name",
                        "benchexp",
                        "--hostname",
                        "127.0.0.1",
                        "exporter.yaml",
                    ],
                    cwd=folder,
                    stdout=log,
                    stderr=log,
                )
            )
        last = f"benchexp/bench{len(boards) - 1}/NetworkService"
        while last not in _client(env, "resources"):
            check(procs[1].poll() is None, "labgrid-exporter exited")
            check(time.monotonic() < deadline, "the exporter never registered its resources")
            time.sleep(0.2)  # poll interval while the exporter registers
        # Each labgrid-client call is a process start (~1 s of CPU): the places are set up
        # side by side, one thread each.
        with ThreadPoolExecutor(max_workers=len(boards)) as pool:
            list(pool.map(lambda index: _place(env, index), range(len(boards))))
        yield env
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=GUARD)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def parallel_runs(boards: list, count: int, env: dict[str, str], folder: Path) -> float:
    """Wall seconds of `count` concurrent `harness run --place` processes; all must pass."""
    procs = []
    started = time.perf_counter()
    for index in range(count):
        results = folder / f"n{count}-p{index}"
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "harness",
                    "run",
                    "--board",
                    str(boards[index].profile.source),
                    "--plan",
                    str(PLAN),
                    "--place",
                    f"bench-p{index}",
                    "--results",
                    str(results),
                    "--no-submit",
                    "--plain",
                ],
                cwd=REPO,
                env={**env, "HARNESS_DATA_HOME": str(folder / f"home{index}")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    codes = [(proc.wait(timeout=1800), proc.stderr.read().decode()[-800:]) for proc in procs]  # type: ignore[union-attr]
    wall = time.perf_counter() - started
    for code, err in codes:
        check(code == 0, f"a parallel run through a place exited {code}: {err}")
    return wall


def run(ctx: Context) -> Row:
    row = Row("fanout", TITLE, BASELINE)
    # --quick proves the place path with two boards at once; the curve needs the full run.
    sizes = [2] if ctx.quick else [1, 3, 6]
    folder = ctx.folder("fanout")
    with contextlib.ExitStack() as stack:
        boards = [stack.enter_context(ctx.board("sim")) for _ in range(max(sizes))]
        env = stack.enter_context(coordinator(boards, folder))
        rounds = 1
        walls = {
            n: [parallel_runs(boards, n, env, folder / f"r{r}") for r in range(rounds)]
            for n in sizes
        }
    one = row.add("1 board alone", walls[1], "s", baseline=True) if 1 in walls else None
    for n in sizes:
        if n == 1:
            continue
        many = row.add(f"{n} boards in parallel", walls[n], "s")
        if one is not None:
            row.target(f"wall({n}) / wall(1)", many.median / one.median, "<=", 1.3)
    row.ok(
        f"{sum(n * len(w) for n, w in walls.items())} runs through coordinator places, every one passed"
    )
    row.notes.append(
        "Each run is a whole `harness run` process (interpreter start-up, plan loading, login, "
        "bundle) on a 2-core host: N runs share two cores, so wall(N) grows with N once the "
        "harness's own CPU time, not the board, is what a run waits on."
    )
    return row
