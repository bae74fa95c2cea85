"""`harness certify`: the main job, end to end.

Run a certification plan on a board (by default the built-in virtual x86_64
board with the shipped pre-certification plan), feed the verdict to the
registry, and answer the question support cares about: is a device built on
this board, with this kernel and OS release, eligible for support, and why?
It is `harness run` plus the registry's answer, so a new user sees the whole
flow in one command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from harness.model.plan import PLANS_DIR
from harness.options import place_options, results_option
from harness.report.runfolder import RUN_JSON, read_run_record
from harness.run.launch import RunRequest, run_plan

DEFAULT_BOARD = "qemu-x86_64"  # a name in boards/ of the working directory, like the plan
DEFAULT_PLAN = PLANS_DIR / "precert.yaml"


def _show_verdict(run: dict[str, Any], folder: Path) -> None:
    counts = run.get("counts", {})
    shown = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    verdict = run.get("verdict", "incomplete")
    colour = {"certified": "green", "not-certified": "red"}.get(verdict, "yellow")
    board = run["board"]
    software = run.get("software", {})
    click.echo("")
    click.secho(f"verdict: {verdict.upper()}", fg=colour, bold=True)
    click.echo(
        f"  board:    {board['vendor']} {board['model']} rev {board['revision']} ({board['name']})"
    )
    click.echo(f"  plan:     {run['plan']['id']} v{run['plan']['version']}")
    click.echo(
        f"  software: {software.get('os_release')} / kernel {software.get('kernel_release')}"
    )
    click.echo(f"  tests:    {shown}")
    click.echo(f"  evidence: {folder}")
    submission_path = folder / "submission.json"
    submission = json.loads(submission_path.read_text()) if submission_path.is_file() else {}
    click.echo(f"  registry: {submission.get('status', 'not submitted')}")
    if submission.get("reason"):  # a queued delivery says why, and what to do about it
        click.echo(f"    why: {submission['reason']}")
        click.echo(f"    what to do: {submission['what_to_do']}")


def _show_eligibility(run: dict[str, Any]) -> None:
    from harness.registry.eligibility import Device
    from harness.registry.interface import open_registry

    board, software = run["board"], run.get("software", {})
    if not software.get("os_release") or not software.get("kernel_release"):
        click.echo("eligibility: the run recorded no OS release or kernel; nothing to ask")
        return
    device = Device(
        board["vendor"],
        board["model"],
        board["revision"],
        software["os_release"],
        software["kernel_release"],
        software.get("kernel_version") or "",
        software.get("kernel_build_id") or "",
    )
    registry = open_registry()
    try:
        answer = registry.eligibility(device)
    finally:
        registry.close()
    click.echo("")
    click.secho(f"eligibility: {answer['status']}", bold=True)
    click.echo(f"  {answer['summary']}")
    for item in answer.get("evidence", []):
        if item.get("kind") == "certificate":
            click.echo(f"  rests on certificate #{item['id']} from run {item['run_id']}")
        else:
            click.echo(f"  rests on vendor kernel #{item['id']} ({item.get('kernel_release')})")
    for item in answer.get("not_counted", []):
        click.echo(f"  did not count: #{item.get('id')}: {item['why']}")


@click.command()
@click.option(
    "--board",
    "board_ref",
    default=DEFAULT_BOARD,
    show_default=True,
    help="board profile: a path or a name in boards/",
)
@click.option(
    "--plan", "plan_file", type=click.Path(path_type=Path), default=DEFAULT_PLAN, show_default=True
)
@click.option(
    "--env", type=click.Path(path_type=Path), help="labgrid environment file of a physical unit"
)
@click.option(
    "--place",
    "place_names",
    multiple=True,
    help="labgrid place on the coordinator in $LG_COORDINATOR (repeat to fan out over several)",
)
@click.option(
    "--places",
    "place_patterns",
    multiple=True,
    metavar="TAGS",
    help="fan out over every place whose tags match, e.g. 'board=qemu-*' (globs allowed)",
)
@place_options
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="fan-out: boards run at once",
)
@results_option
@click.option("--no-submit", is_flag=True, help="do not submit the run to the registry")
@click.option("--json", "as_json", is_flag=True, help="print run.json instead of the summary")
@click.pass_context
def certify(
    ctx: click.Context,
    board_ref: str,
    plan_file: Path,
    env: Path | None,
    place_names: tuple[str, ...],
    place_patterns: tuple[str, ...],
    reserve: str | None,
    wait: bool,
    wait_timeout: float | None,
    parallel: int,
    results_root: Path,
    no_submit: bool,
    as_json: bool,
) -> int:
    """Certify a board (default: the built-in virtual board), feed the registry, show the verdict.

    With several --place, or --places TAGS, the plan runs on every place (at most --parallel
    at once), each board in its own run folder; a farm summary with one JUnit file follows,
    and the exit code is the worst of the runs (docs/farm.md).
    """
    if len(place_names) > 1 or place_patterns:
        return _fan_out(
            ctx,
            board_ref,
            plan_file,
            env,
            place_names,
            place_patterns,
            reserve,
            parallel,
            results_root,
            no_submit,
        )
    request = RunRequest(
        board_ref=board_ref,
        plan_file=plan_file,
        env=env,
        place=place_names[0] if place_names else None,
        results_root=results_root,
        reserve=reserve,
        wait=wait,
        wait_timeout=wait_timeout,
        no_submit=no_submit,
    )
    code, folder = run_plan(request)
    if code in (130, 143):  # stopped by SIGINT/SIGTERM: the run is resumable, there is no verdict
        return code
    run = read_run_record(folder / RUN_JSON).to_json()
    if as_json:
        click.echo(json.dumps(run, indent=2))
        return code
    _show_verdict(run, folder)
    if not no_submit:
        _show_eligibility(run)
    return code


def _fan_out(
    ctx: click.Context,
    board_ref: str,
    plan_file: Path,
    env: Path | None,
    place_names: tuple[str, ...],
    place_patterns: tuple[str, ...],
    reserve: str | None,
    parallel: int,
    results_root: Path,
    no_submit: bool,
) -> int:
    from harness.errors import Location, UserError
    from harness.farm.fanout import fan_out, python_harness
    from harness.model.plan import load_plan
    from harness.run.place import require_coordinator

    if env is not None or reserve is not None:
        raise UserError(
            "a fan-out (several --place, or --places) takes neither --env nor --reserve",
            Location(field="--places"),
        )
    require_coordinator("--places")
    load_plan(plan_file)  # a broken plan exits 2 once, not once per board
    given = ctx.get_parameter_source("board_ref") is not click.core.ParameterSource.DEFAULT

    def command(board: str, place: str, run_id: str) -> list[str]:
        argv = python_harness(
            "run",
            "--board",
            board,
            "--plan",
            str(plan_file),
            "--place",
            place,
            "--wait",
            "--run-id",
            run_id,
            "--results",
            str(results_root),
            "--plain",
        )
        return [*argv, "--no-submit"] if no_submit else argv

    return fan_out(
        command=command,
        patterns=list(place_patterns),
        names=list(place_names),
        board_ref=board_ref if given else None,
        parallel=parallel,
        results_root=results_root,
        label=f"plan {plan_file}",
    )
