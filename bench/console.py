"""Console command round trip: ConsoleSession.run against a raw socket loop and ShellDriver.run.

Per board (the simulated board; also QEMU x86_64 unless --quick), one after the other
on the same console: labgrid's ShellDriver.run (from the login prompt, as labgrid
logs in itself), our ConsoleSession.run through the Board facade (crash watch and
console log on, as in a run), then the raw loop (rawconsole.py). Every answer is
checked, so a fast but wrong path cannot pass. Each method sends `echo N` and
checks that N came back.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from labgrid import Environment

from bench.context import Context
from bench.core import Row, check, ratio, timed
from bench.rawconsole import RawConsole
from harness.lab.board import Board
from harness.model.board import BoardProfile

TITLE = "console command round trip"
BASELINE = "raw socket loop, shell echo off; labgrid ShellDriver.run"


def shelldriver_env(env_file: Path, profile: BoardProfile, folder: Path) -> Path:
    """The board's env file with labgrid's ShellDriver added on top of its serial driver."""
    doc = yaml.safe_load(env_file.read_text())
    drivers = doc["targets"]["main"]["drivers"]
    drivers["ShellDriver"] = {
        # ShellDriver matches MARKER, whitespace, then the prompt: it must cover the whole line.
        "prompt": r"[^\r\n]*" + profile.console.shell_prompt,
        "login_prompt": profile.console.login_prompt,
        "username": profile.console.username,
        "password": profile.console.password or "",
        "login_timeout": 120,
    }
    drivers.pop("ExternalPowerDriver", None)
    path = folder / "shelldriver-env.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def shelldriver_samples(env_file: Path, count: int) -> list[float]:
    target = Environment(str(env_file)).get_target("main")
    shell = target.get_driver("ShellDriver")
    shell.run_check("true")
    counter = iter(range(count))

    def one() -> None:
        index = next(counter)
        out, _err, status = shell.run(f"echo {index}")
        check(status == 0 and out == [str(index)], f"ShellDriver answered {out!r} to echo {index}")

    samples = timed(one, count)
    shell.run_check("true")
    target.deactivate_all_drivers()
    return samples


def console_samples(board: Board, count: int) -> list[float]:
    board.console.login()
    samples = []
    for index in range(count):
        result = board.console.run(f"echo {index}")
        check(
            result.exit_status == 0 and result.stdout == f"{index}\n",
            f"ConsoleSession answered {result.stdout!r} to echo {index}",
        )
        samples.append(result.duration)
    return samples


def raw_samples(port: int, profile: BoardProfile, count: int) -> list[float]:
    raw = RawConsole(port)
    try:
        raw.login(profile.console.username, profile.console.password or "")
        counter = iter(range(count))

        def one() -> None:
            index = next(counter)
            got = raw.command(f"echo done-{index}-\n".encode(), f"done-{index}-".encode())
            check(got.endswith(f"done-{index}-".encode()), f"raw loop lost echo {index}")

        return timed(one, count)
    finally:
        raw.close()


def run(ctx: Context) -> Row:
    row = Row("console", TITLE, BASELINE)
    count = ctx.n(200, 20)
    for ref in ctx.boards():
        folder = ctx.folder("console")
        with ctx.board(ref) as running:
            profile = running.profile
            driver = shelldriver_samples(
                shelldriver_env(running.env_file, profile, folder), ctx.n(100, 10)
            )
            board = Board.open(profile, running.env_file, console_log=folder / "console.log")
            try:
                ours = console_samples(board, count)
                with ctx.profiled(f"console-{ref}"):  # an extra pass: profiling slows it
                    for index in range(count // 4):
                        board.console.run(f"echo {index}")
            finally:
                board.close()
            raw = raw_samples(running.console_port, profile, count)
        base = row.add(f"{ref}: raw socket loop (echo off)", raw, baseline=True)
        lg = row.add(f"{ref}: labgrid ShellDriver.run", driver, baseline=True)
        mine = row.add(f"{ref}: ConsoleSession.run", ours)
        row.ok(
            f"{ref}: {len(raw) + len(driver) + len(ours)} commands answered with the right output"
        )
        row.target(f"{ref}: ConsoleSession / raw loop (median)", ratio(mine, base), "<=", 1.3)
        row.target(f"{ref}: ShellDriver / ConsoleSession (median)", ratio(lg, mine), ">=", 30)
    return row
