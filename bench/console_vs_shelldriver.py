"""Per-command cost of our ConsoleSession vs labgrid's ShellDriver (and SSH), same board, same run.

Usage: python bench/console_vs_shelldriver.py [--board qemu-x86_64] [--commands 200]
       python bench/console_vs_shelldriver.py --env-file ENV --profile boards/x.yaml

Starts a virtual board (unless --env-file is given), then measures, one after
the other on the same console: labgrid's ShellDriver.run (the baseline), our
ConsoleSession.run, and SSHSession.run. Prints medians and the ratios against
the ShellDriver baseline measured in this run, so a loaded machine slows all
three alike instead of skewing a comparison with an old number.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from labgrid import Environment

from harness.lab.board import Board
from harness.model.board import BoardProfile, load_board


def shelldriver_env(env_file: Path, profile: BoardProfile, folder: Path) -> Path:
    """The board's env file with labgrid's ShellDriver added on top of its serial driver."""
    doc = yaml.safe_load(env_file.read_text())
    drivers = doc["targets"]["main"]["drivers"]
    drivers["ShellDriver"] = {
        # ShellDriver matches MARKER, whitespace, then the prompt: it must cover the whole prompt line.
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


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure_shelldriver(env_file: Path, count: int) -> list[float]:
    target = Environment(str(env_file)).get_target("main")
    shell = target.get_driver("ShellDriver")
    shell.run_check("true")
    samples = []
    for index in range(count):
        started = time.perf_counter()
        _out, _err, status = shell.run(f"echo {index}")
        samples.append(time.perf_counter() - started)
        assert status == 0
    shell.run_check("true")
    target.deactivate_all_drivers()
    return samples


def measure_board(
    profile: BoardProfile, env_file: Path, count: int, log: Path
) -> tuple[list[float], list[float]]:
    board = Board.open(profile, env_file, console_log=log)
    try:
        board.console.login()
        console = []
        for index in range(count):
            result = board.console.run(f"echo {index}")
            assert result.exit_status == 0 and result.stdout == f"{index}\n"
            console.append(result.duration)
        ssh = []
        if board.has_ssh:
            board.ssh.wait_ready(60)
            for index in range(count):
                result = board.ssh.run(f"echo {index}")
                assert result.exit_status == 0 and result.stdout == f"{index}\n"
                ssh.append(result.duration)
        return console, ssh
    finally:
        board.close()  # echo and prompt back on, so the next client sees a normal shell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="qemu-x86_64", help="virtual board profile to start")
    parser.add_argument(
        "--env-file", type=Path, help="use this running board instead of starting one"
    )
    parser.add_argument("--profile", type=Path, help="board profile of --env-file")
    parser.add_argument("--commands", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        folder = Path(tmp)
        running = None
        if args.env_file:
            if not args.profile:
                parser.error("--env-file needs --profile")
            env_file, profile = args.env_file, load_board(args.profile)
        else:
            from harness.vlab.boardhost import resolve_board
            from harness.vlab.handle import RunningBoard

            running = RunningBoard.start(
                resolve_board(args.board), "bench-console", lab_dir=folder / "lab"
            )
            env_file, profile = running.env_file, running.profile
        try:
            baseline = measure_shelldriver(
                shelldriver_env(env_file, profile, folder), args.commands
            )
            console, ssh = measure_board(profile, env_file, args.commands, folder / "console.log")
        finally:
            if running is not None:
                running.stop()

    base = median_ms(baseline)
    print(f"board: {profile.name}   commands per method: {args.commands}   (medians)")
    print(f"  labgrid ShellDriver.run   {base:8.2f} ms   (baseline)")
    print(
        f"  ConsoleSession.run        {median_ms(console):8.2f} ms   {base / median_ms(console):6.1f}x faster than baseline"
    )
    if ssh:
        print(
            f"  SSHSession.run            {median_ms(ssh):8.2f} ms   {base / median_ms(ssh):6.1f}x vs baseline"
        )
    print(f"  ConsoleSession p90        {statistics.quantiles(console, n=10)[-1] * 1000:8.2f} ms")


if __name__ == "__main__":
    main()
