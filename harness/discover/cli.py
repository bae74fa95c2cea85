"""`harness board discover`: reach a running unit, read it, and write a draft profile.

The unit is reached as `harness eligible` reaches it (harness/run/unit.py): a labgrid
environment (`--env`), or a virtual board by name (`--board`). The console settings come
from the profile the environment names (the virtual lab's do), from `--board` given with
`--env`, or from the schema's defaults, with `--username`/`--password`/prompts on top;
the draft records the settings that logged in. The file appears whole or not at all, and
an existing file is kept unless `--force`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from harness.discover.draft import Draft, Settings, draft_profile, render
from harness.discover.probe import Probe, probe_identity
from harness.durable import fsync_dir
from harness.errors import HarnessError, InfraError, Location, UserError
from harness.model.board import (
    BOARDS_DIR,
    BoardProfile,
    Boot,
    Console,
    Inventory,
    Lab,
    Ssh,
    find_board,
    load_board,
)
from harness.model.facts import Facts

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# Settling waits for this: nothing promised, only a device set that stopped changing.
NOTHING_PROMISED = Inventory.model_construct(
    cpus=0,
    memory_mib=0,
    block_devices=[],
    network_interfaces=[],
    usb_devices=[],
    serial_ports=0,
    watchdog=False,
    rtc=False,
)


@click.group()
def board() -> None:
    """Board profiles: draft one from a running unit."""


@board.command()
@click.option(
    "--env",
    type=click.Path(path_type=Path, dir_okay=False),
    help="labgrid environment file of the unit",
)
@click.option(
    "--board",
    "board_ref",
    help="alone: a virtual board, the name of one running (`harness lab up`) or a profile "
    "to start for the look; with --env: a profile whose console settings log in",
)
@click.option("--target", default="main", show_default=True, help="target in the environment")
@click.option("--name", help="the draft's board name (default: from the model it reports)")
@click.option(
    "--out",
    help="file to write (default: boards/NAME.yaml; - for standard output)",
)
@click.option("--force", is_flag=True, help="replace --out if it exists")
@click.option("--username", help="console (and SSH) login name")
@click.option("--password", help="console (and SSH) password")
@click.option("--login-prompt", help="regex of the login prompt")
@click.option("--shell-prompt", help="regex of the shell prompt")
@click.option(
    "--console-log",
    type=click.Path(path_type=Path, dir_okay=False),
    help="keep the console transcript here",
)
def discover(
    env: Path | None,
    board_ref: str | None,
    target: str,
    name: str | None,
    out: str | None,
    force: bool,
    username: str | None,
    password: str | None,
    login_prompt: str | None,
    shell_prompt: str | None,
    console_log: Path | None,
) -> None:
    """Draft a board profile (kind: board) from a running unit, for onboarding a new board.

    Identity comes from the device tree or the DMI table, the inventory from the discovery
    certification compares against, the console settings from the login that worked.
    Lines marked DECIDE need a person; they are listed on standard error.
    """
    if name is not None and not NAME.match(name):
        raise UserError(
            "a board name is lower-case letters, digits, '.', '_' and '-', starting with a "
            "letter or digit",
            Location(field="--name"),
        )
    for field, pattern in (("--login-prompt", login_prompt), ("--shell-prompt", shell_prompt)):
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise UserError(f"not a regular expression: {exc}", Location(field=field)) from None
    if out is not None and out != "-":
        _check_out(Path(out), force)
    elif out is None and not BOARDS_DIR.is_dir():
        raise UserError(
            f"no {BOARDS_DIR}/ folder here to draft into: give --out FILE (or - for standard "
            "output)",
            Location(field="--out"),
        )
    overrides = {
        "username": username,
        "password": password,
        "login_prompt": login_prompt,
        "shell_prompt": shell_prompt,
    }
    with _reach(env, board_ref, target, out) as (used, env_file, lab, lab_note, origin):
        used = _with_overrides(used, overrides, target)
        facts, probe, baud, ssh_note = _read_unit(used, env_file, console_log)
    settings = Settings(used, baud, lab, lab_note, ssh_note)
    draft = draft_profile(name, probe, facts, settings)
    text = render(draft, _header(origin, facts))
    if out == "-":
        click.echo(text, nl=False)
    else:
        target_file = Path(out) if out else BOARDS_DIR / f"{draft.doc['name']}.yaml"
        if out is None:
            _check_out(target_file, force)
        write_draft(target_file, text, force)
        click.echo(f"drafted {target_file}", err=True)
    _tell_decisions(draft)


def _check_out(path: Path, force: bool) -> None:
    if path.is_dir():
        raise UserError("is a folder, not a file", Location(str(path), None, "--out"))
    if not path.parent.is_dir():
        raise UserError("its folder does not exist", Location(str(path), None, "--out"))
    if path.exists() and not force:
        raise UserError("exists; give --force to replace it", Location(str(path), None, "--out"))


@contextlib.contextmanager
def _reach(
    env: Path | None, board_ref: str | None, target: str, out: str | None
) -> Iterator[tuple[BoardProfile, Path, dict[str, Any], str, str]]:
    """(login settings, env file, the draft's `lab:`, a note on it, where the unit was)."""
    if env is not None:
        from harness.model.labenv import check_env_file
        from harness.run.unit import profile_named_by_env

        check_env_file(env, target, "--env")
        named = board_ref or profile_named_by_env(env)
        used = find_board(named) if named else _bare_profile()
        if out == "-":  # where it will be saved is unknown: a path that holds anywhere
            where = str(env.absolute())
        else:
            base = Path(out).absolute().parent if out else BOARDS_DIR.absolute()
            where = os.path.relpath(env.absolute(), base)
        lab: dict[str, Any] = {"env": where}
        if target != "main":
            lab["target"] = target
        note = "the labgrid environment this unit was discovered through" + (
            "" if out == "-" else " (relative to this file)"
        )
        yield used, env, lab, note, str(env)
        return
    if not board_ref:
        raise UserError(
            "give --env ENV (a unit in a lab) or --board NAME (a virtual board)",
            Location(field="--board"),
        )
    from harness.run.unit import live_unit

    with live_unit(board_ref, None) as (profile, env_file):
        if profile.lab.virtual is None:
            raise UserError(
                f"board {profile.name} is not a virtual board: give the unit's labgrid "
                "environment with --env",
                Location(field="--board"),
            )
        lab = {"virtual": profile.lab.virtual.model_dump(exclude_defaults=True)}
        note = (
            f"copied from the profile virtual board {board_ref} runs ({profile.name}): "
            "a guest cannot read how its virtual machine is built"
        )
        yield profile, env_file, lab, note, f"virtual board {board_ref}"


def _bare_profile() -> BoardProfile:
    """Login settings only, the schema's defaults: a unit no profile describes yet."""
    return BoardProfile.model_construct(
        name="unit",
        console=Console(),
        ssh=Ssh(),
        boot=Boot(),
        inventory=NOTHING_PROMISED,
        lab=Lab.model_construct(virtual=None, env=None, target="main", place=None),
        source=None,
        sha256=None,
    )


def _with_overrides(used: BoardProfile, given: dict[str, Any], target: str) -> BoardProfile:
    """The login settings with the command line's on top, and nothing promised to settle."""
    console = used.console.model_copy(
        update={
            key: value
            for key, value in given.items()
            if value is not None and key in Console.model_fields
        }
    )
    ssh = used.ssh.model_copy(
        update={k: given[k] for k in ("username", "password") if given[k] is not None}
    )
    lab = Lab.model_construct(virtual=None, env=None, target=target, place=None)
    return used.model_copy(
        update={"console": console, "ssh": ssh, "inventory": NOTHING_PROMISED, "lab": lab}
    )


def _read_unit(
    used: BoardProfile, env_file: Path, console_log: Path | None
) -> tuple[Facts, Probe, int | None, str | None]:
    """Log in, let the devices settle, read facts and identity, try SSH, log out."""
    from harness.lab.board import Board
    from harness.run.facts import discover_facts

    with tempfile.TemporaryDirectory(prefix="harness-discover-") as scratch:
        board = Board.open(used, env_file, console_log or Path(scratch) / "console.log")
        try:
            board.ensure_shell()
            board.settle()
            facts = discover_facts(board)
            probe = probe_identity(board.console)
            port = getattr(board.target.get_driver("ConsoleProtocol"), "port", None)
            baud = getattr(port, "speed", None)
            ssh_note = None
            if board.has_ssh:
                try:
                    board.ssh.run("true", timeout=30)
                    ssh_note = "SSH answered during discovery with these settings"
                except HarnessError as exc:
                    ssh_note = f"SSH did not answer during discovery: {exc}"
        finally:
            board.close()
    return facts, probe, baud if isinstance(baud, int) else None, ssh_note


def _header(origin: str, facts: Facts) -> list[str]:
    running = ", ".join(
        part
        for part in (
            f"kernel {facts.kernel_release}" if facts.kernel_release else None,
            " ".join(p for p in (facts.os_name, facts.os_version) if p) or None,
        )
        if part
    )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"Board profile drafted by `harness board discover` from {origin} on {when}.",
        f"The unit ran {running or 'software it did not name'}.",
        "Lines marked DECIDE need a person; check the result with `harness check FILE`.",
        "",
    ]


def write_draft(path: Path, text: str, force: bool) -> None:
    """Write the profile whole or not at all; an existing file survives unless `force`.

    The text is proven to load as a board profile from its own folder (so `lab.env`
    resolves as it will) before it takes the name.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.yaml")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            load_board(tmp)
        except UserError as exc:
            raise InfraError(
                f"the draft is not a valid profile (a harness defect): {exc}"
            ) from None
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the name was taken meanwhile: never clobber
            except FileExistsError:
                raise UserError(
                    "exists; give --force to replace it", Location(str(path), None, "--out")
                ) from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _tell_decisions(draft: Draft) -> None:
    if not draft.decide:
        return
    click.echo(f"{len(draft.decide)} choices for a person (marked DECIDE in the file):", err=True)
    for line in draft.decide:
        click.echo(f"  {line}", err=True)
