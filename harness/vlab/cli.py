"""`harness lab`: bring virtual boards up and down, and push their buttons.

Every sub-command talks to a bench through its control socket (found via the
lab folder), so power and faults work the same from a shell, from labgrid's
ExternalPowerDriver, and from a test.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import click

from harness.errors import InfraError
from harness.vlab import state as lab_state
from harness.vlab.control import request
from harness.vlab.faults import FAULT_KINDS, POWER_ACTIONS


@click.group()
@click.option(
    "--lab-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of running boards (default: $HARNESS_LAB_DIR, $XDG_RUNTIME_DIR/harness-lab, "
    "or ~/.cache/harness/running).",
)
@click.pass_context
def lab(ctx: click.Context, lab_dir: Path | None) -> None:
    """Virtual lab: build images, run virtual boards, switch power and inject faults."""
    ctx.obj = lab_state.lab_dir(lab_dir)


if importlib.util.find_spec("harness.vlab.build_cli") is not None:
    from harness.vlab.build_cli import build

    lab.add_command(build)

if importlib.util.find_spec("harness.vlab.image_cli") is not None:
    from harness.vlab.image_cli import image

    lab.add_command(image)

if importlib.util.find_spec("harness.farm.export_cli") is not None:
    from harness.farm.export_cli import export

    lab.add_command(export)


@lab.command()
@click.argument("board")
@click.option("--name", default=None, help="Name of this running unit (default: the board's name).")
@click.option("--no-wait", is_flag=True, help="Return once powered on; do not wait for login.")
@click.option(
    "--owner",
    type=int,
    default=None,
    help="PID whose exit takes the board down (default: the calling shell).",
)
@click.pass_obj
def up(lab_dir: Path, board: str, name: str | None, no_wait: bool, owner: int | None) -> None:
    """Start a virtual board (a profile path, a name in boards/, or `sim`).

    The board lives until `harness lab down` or until the calling shell ends.
    """
    from harness.vlab.boardhost import board_kind, resolve_board, start_bench

    profile = resolve_board(board)
    name = lab_state.check_name(name or profile.name)
    owner = owner or os.getppid()
    if board_kind(profile) == "qemu":
        from harness.vlab.build import build_lab

        # Build (or find cached) images here, where a first build's progress can be seen.
        build_lab([profile.identity.arch])
    state = start_bench(profile, name, lab_dir=lab_dir, owner=owner)
    click.echo(f"name:     {state.name}")
    click.echo(f"board:    {state.board} ({state.kind})")
    click.echo(f"console:  127.0.0.1:{state.console_port}")
    click.echo(f"ssh:      127.0.0.1:{state.ssh_port}")
    click.echo(f"env file: {state.env_file}")
    if not no_wait:
        from harness.vlab.handle import RunningBoard

        try:
            RunningBoard(state).wait_until_up()
        except InfraError as exc:
            raise InfraError(
                f"{exc}. The board is left running so its console log can be inspected; "
                f"take it down with `harness lab down {name}`"
            ) from None
        click.echo("login prompt seen, SSH answering")


@lab.command()
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Take down every running board.")
@click.pass_obj
def down(lab_dir: Path, name: str | None, all_: bool) -> None:
    """Power a virtual board off and stop its bench; returns once no process of it is left."""
    from harness.vlab.boardhost import stop_bench

    if all_ == (name is not None):
        raise click.UsageError("give a board NAME or --all (not both)")
    targets = lab_state.running(lab_dir) if all_ else [lab_state.find(lab_dir, str(name))]
    for state in targets:
        stop_bench(state)
        click.echo(f"down: {state.name}")


@lab.command("list")
@click.pass_obj
def list_(lab_dir: Path) -> None:
    """Running virtual boards (entries whose bench died are removed, not shown)."""
    from rich.console import Console
    from rich.table import Table

    boards = [_fresh(state) for state in lab_state.running(lab_dir)]
    if not boards:
        click.echo(f"no virtual boards running (lab folder {lab_dir})")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("name", "board", "state", "console", "ssh", "env file", "pid"):
        table.add_column(column, no_wrap=column != "env file")
    for s in boards:
        condition = "off" if s.power == "off" else ("paused" if s.paused else "on")
        table.add_row(
            s.name,
            s.board,
            condition,
            str(s.console_port),
            str(s.ssh_port),
            s.env_file,
            str(s.pid),
        )
    Console(width=200).print(table)


def _fresh(state: lab_state.BenchState) -> lab_state.BenchState:
    """Ask the bench: the saved state misses changes the board made itself (a guest poweroff)."""
    try:
        return lab_state.BenchState(**request(state.control, {"cmd": "status"}, timeout=5))
    except (InfraError, TypeError):
        return state


@lab.command()
@click.argument("name")
@click.argument("action", type=click.Choice(POWER_ACTIONS))
@click.pass_obj
def power(lab_dir: Path, name: str, action: str) -> None:
    """Switch a virtual board's power (what its labgrid ExternalPowerDriver runs)."""
    state = lab_state.find(lab_dir, name)
    after = request(state.control, {"cmd": "power", "action": action})
    click.echo(f"{name}: power {after.get('power')}")


@lab.command()
@click.argument("name")
@click.argument("kind", type=click.Choice(FAULT_KINDS))
@click.option("--bytes", "count", type=click.IntRange(1, 1 << 20), default=64, show_default=True)
@click.pass_obj
def fault(lab_dir: Path, name: str, kind: str, count: int) -> None:
    """Inject a fault: hang, resume, reset, panic, power-off, power-on, noise, watchdog-inert|live."""
    state = lab_state.find(lab_dir, name)
    message: dict[str, object] = {"cmd": "fault", "kind": kind}
    if kind == "noise":
        message["bytes"] = count
    after = request(state.control, message)
    if after.get("power") is None:
        raise InfraError(f"bench of '{name}' gave no state after {kind}")
    click.echo(f"{name}: {kind} done (power {after['power']}, {after['extra'].get('run_state')})")
