"""The run's shared state: mode, scratch folder, profiles folder, and the boards a row starts.

Every board is started in this run's own lab folder and stopped by the row that started
it, so a failed row leaves nothing running for the next one.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import itertools
import os
import pstats
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.core import REPO
from harness.model.board import load_board
from harness.registry.pgtemp import TempPostgres
from harness.vlab.boardhost import SIM_PROFILE, resolve_board
from harness.vlab.handle import RunningBoard

PROFILES = REPO / "bench" / "profiles"
_serial = itertools.count(1)


@dataclass
class Context:
    quick: bool
    scratch: Path
    profiles: Path = PROFILES
    log: list[str] = field(default_factory=list)
    saved_profiles: list[Path] = field(default_factory=list)  # in the order written
    _postgres: TempPostgres | None = None

    def postgres(self) -> TempPostgres:
        """One PostgreSQL server for the whole run, started when a row first needs it (each
        row takes a database of its own): initdb and start-up cost seconds, once is enough."""
        if self._postgres is None:
            self._postgres = TempPostgres().start()
        return self._postgres

    def close(self) -> None:
        """Stop what the run shared between rows."""
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None

    @property
    def lab_dir(self) -> Path:
        return self.scratch / "lab"

    def folder(self, name: str) -> Path:
        path = self.scratch / f"{name}-{next(_serial)}"
        path.mkdir(parents=True)
        return path

    def n(self, full: int, quick: int) -> int:
        """A sample count: `full` normally, `quick` under --quick."""
        return quick if self.quick else full

    @contextlib.contextmanager
    def board(self, ref: str) -> Iterator[RunningBoard]:
        """A started board (`sim` or a QEMU profile name), stopped afterwards."""
        profile = load_board(SIM_PROFILE) if ref == "sim" else resolve_board(ref, REPO / "boards")
        name = re.sub(r"[^a-z0-9-]", "-", f"b{ref}-{next(_serial)}")[:40]
        board = RunningBoard.start(profile, name, lab_dir=self.lab_dir)
        try:
            yield board
        finally:
            board.stop()

    def boards(self) -> list[str]:
        """Boards the console and SSH rows measure: the sim board, and QEMU unless quick."""
        return ["sim"] if self.quick else ["sim", "qemu-x86_64"]

    @contextlib.contextmanager
    def profiled(self, name: str, enabled: bool = True) -> Iterator[None]:
        """cProfile the block and keep the top of its report as bench/profiles/NAME.txt
        (only in a full run: --quick never writes into the checkout)."""
        if self.quick or not enabled:
            yield
            return
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            yield
        finally:
            profiler.disable()
            self.keep_profile(profiler, name)

    def keep_profile(self, profile: cProfile.Profile | pstats.Stats, name: str) -> None:
        """Write bench/profiles/NAME.txt and remember it, so the row's section names it."""
        path = self.profiles / f"{name}.txt"
        save_profile(profile, path)
        self.saved_profiles.append(path)


def save_profile(profiler: cProfile.Profile | pstats.Stats, path: Path, top: int = 45) -> None:
    """The cumulative and self-time tops of a profile, as text kept next to RESULTS.md."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    stats = profiler if isinstance(profiler, pstats.Stats) else pstats.Stats(profiler, stream=out)
    stats.stream = out  # type: ignore[attr-defined]
    stats.strip_dirs()
    out.write("== by cumulative time ==\n")
    stats.sort_stats("cumulative").print_stats(top)
    out.write("\n== by own time ==\n")
    stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue().replace(str(REPO) + os.sep, "")
    path.write_text(text)


def ssh_material(board: RunningBoard, folder: Path) -> tuple[Path, dict[str, str]]:
    """known_hosts pinning the board's key, and an environment whose SSH_ASKPASS types the
    board's password, for OpenSSH baselines (no sshpass on a stock Debian)."""
    env_doc = yaml.safe_load(board.env_file.read_text())
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{board.ssh_port} {env_doc['options']['harness_ssh_host_key']}\n")
    askpass = folder / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{board.profile.ssh.password}'\n")
    askpass.chmod(0o700)
    env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"}
    env.setdefault("DISPLAY", ":0")
    return known, env
