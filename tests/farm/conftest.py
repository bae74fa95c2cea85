"""A real farm on loopback for the farm tests: labgrid's coordinator and two exporters.

`farm` (module scope) runs `harness lab export` twice, as a user would: lab host
`lab1` starts the coordinator, the lease reaper and two simulated boards; lab host
`lab2` joins that coordinator with one more. Every place is then reached only
through labgrid (`labgrid-client`, `harness run --place/--reserve`). Readiness is
waited on by evidence (each export writes farm.json once its places exist), and
teardown is SIGTERM, then SIGKILL, bounded. Each test gets the farm back with
every place free and in service (`clean_farm`), so one failing test cannot
cascade into the next.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PLANS = Path(__file__).parent / "plans"
BOARDS = Path(__file__).parent / "boards"
# Bounds for a hang only: a loaded 2-core CI host starts Python programs slowly.
READY_GUARD = 180.0
RUN_GUARD = 400.0

pytestmark = pytest.mark.skipif(
    shutil.which("labgrid-coordinator") is None, reason="labgrid tools not installed"
)


def eventually(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll `condition()` until it is truthy; fail naming `what` after `timeout` (a hang guard)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class Host:
    """One `harness lab export` process (a lab host) and what its farm.json says."""

    name: str
    proc: subprocess.Popen[bytes]
    folder: Path
    log: Path
    info: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Farm:
    env: dict[str, str]
    hosts: dict[str, Host]
    lab_dir: Path
    folder: Path
    results: Path

    @property
    def places(self) -> dict[str, dict[str, Any]]:
        """Every exported board by place name (farm.json's units of both hosts)."""
        return {u["place"]: u for h in self.hosts.values() for u in h.info["places"]}

    def harness(
        self, *args: str, env: dict[str, str] | None = None, **popen: Any
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            cwd=REPO,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **popen,
        )

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = self.harness(*args, env=env)
        out, err = proc.communicate(timeout=RUN_GUARD)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def client(self, *args: str, user: str | None = None) -> str:
        """labgrid-client as this user, or as another one (LG_USERNAME) to play a colleague."""
        env = {**self.env, **({"LG_USERNAME": user} if user else {})}
        done = subprocess.run(
            ["labgrid-client", *args], env=env, capture_output=True, text=True, timeout=RUN_GUARD
        )
        assert done.returncode == 0, f"labgrid-client {' '.join(args)}: {done.stderr}"
        return done.stdout

    def status(self) -> dict[str, dict[str, Any]]:
        """Each place as `harness farm status --json` sees it on the coordinator."""
        done = self.run("farm", "status", "--json", "--history", "50")
        assert done.returncode == 0, done.stderr
        return {row["place"]: row for row in json.loads(done.stdout)["places"]}

    def history(self) -> list[dict[str, Any]]:
        path = self.folder / "history.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def on_board(self, place: str, command: str) -> None:
        """Run `command` on a place's board over SSH, with the host key pinned."""
        from harness.lab.hostkeys import HostKeyPolicy, parse_public_key
        from harness.lab.ssh import SSHSession

        unit = self.places[place]
        session = SSHSession(
            "127.0.0.1",
            unit["ssh_port"],
            "root",
            "root",
            host_keys=HostKeyPolicy(pinned=[parse_public_key(unit["ssh_host_key"])]),
        )
        try:
            result = session.run(command, timeout=60)
        finally:
            session.close()
        assert result.exit_status == 0, result.stdout + result.stderr

    def console_log(self, place: str) -> Path:
        return self.lab_dir / self.places[place]["bench"] / "console.log"

    def console_mark(self, place: str) -> int:
        """The end of the board's console log now, to look for output that comes later."""
        return self.console_log(place).stat().st_size

    def console_shows(self, place: str, text: str, since: int) -> bool:
        with self.console_log(place).open("rb") as log:
            log.seek(since)
            return text.encode() in log.read()

    def hold(
        self, place: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """`harness run` of plans/hold.yaml on `place`, returned once its test `hold` is under way."""
        self.on_board(place, "rm -f /tmp/release-hold")
        mark = self.console_mark(place)
        proc = self.harness(
            "run", "--board", "sim", "--plan", str(PLANS / "hold.yaml"), "--place", place,
            "--results", str(self.results), "--no-submit", "--plain", *args, env=env,
        )  # fmt: skip

        def began() -> bool:
            if proc.poll() is not None:
                pytest.fail(
                    f"the holding run ended early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}"
                )
            return self.console_shows(place, "hold-began", mark)

        eventually(began, RUN_GUARD, f"the run on {place} to be inside its test `hold`")
        return proc


def _start_host(
    name: str, args: list[str], folder: Path, env: dict[str, str], lab_dir: Path
) -> Host:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder.parent / f"export-{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "lab", "--lab-dir", str(lab_dir), "export", *args,
             "--name", name, "--farm-dir", str(folder)],
            cwd=REPO, env=env, stdout=out, stderr=out,
        )  # fmt: skip
    host = Host(name, proc, folder, log)

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(
                f"harness lab export {name} exited ({proc.returncode}): {log.read_text()[-3000:]}"
            )
        return (folder / "farm.json").is_file()

    try:
        eventually(ready, READY_GUARD, f"lab host {name} to serve its places")
    except BaseException:
        host.stop()
        raise
    host.info = json.loads((folder / "farm.json").read_text())
    return host


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    from harness.farm.services import free_address

    base = tmp_path_factory.mktemp("farm")
    lab_dir = base / "lab"
    address = free_address()
    env = {**os.environ, "LG_COORDINATOR": address, "HARNESS_FARM_DIR": str(base / "lab1")}
    env.pop("LG_ENV", None)
    env.pop("LG_PLACE", None)
    hosts: dict[str, Host] = {}
    try:
        hosts["lab1"] = _start_host(
            "lab1", ["sim", "sim", "--listen", address], base / "lab1", env, lab_dir
        )
        # lab2 also makes the place of a physical board from its profile (nothing to start).
        lab2 = ["sim", "--coordinator", address, "--places-from", str(BOARDS / "*.yaml")]
        hosts["lab2"] = _start_host("lab2", lab2, base / "lab2", env, lab_dir)
        known_hosts = base / "known_hosts"
        known_hosts.write_text(
            "".join((h.folder / "known_hosts").read_text() for h in hosts.values())
        )
        env["HARNESS_SSH_KNOWN_HOSTS"] = str(known_hosts)
        yield Farm(env, hosts, lab_dir, base / "lab1", base / "results")
    finally:
        for host in reversed(list(hosts.values())):
            host.stop()


@pytest.fixture
def clean_farm(farm: Farm) -> Iterator[Farm]:
    """The farm, and after the test every place free and in service again."""
    yield farm
    for name, row in farm.status().items():
        if row["holder"]:
            farm.client("-p", name, "release", "--kick")
        if row["state"] == "bad" or row["infra_errors"]:
            held = {k[4:]: v for k, v in row["tags"].items() if k.startswith("bad_")}
            cleared = [
                f"{k}="
                for k in row["tags"]
                if k.startswith("bad_") or k in ("health", "infra_errors")
            ]
            farm.client("-p", name, "set-tags", *cleared, *(f"{k}={v}" for k, v in held.items()))
            farm.client("-p", name, "set-comment", "")
