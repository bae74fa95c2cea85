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
from harness.options import results_option
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
@click.option("--place", help="labgrid coordinator place")
@results_option
@click.option("--no-submit", is_flag=True, help="do not submit the run to the registry")
@click.option("--json", "as_json", is_flag=True, help="print run.json instead of the summary")
def certify(
    board_ref: str,
    plan_file: Path,
    env: Path | None,
    place: str | None,
    results_root: Path,
    no_submit: bool,
    as_json: bool,
) -> int:
    """Certify a board (default: the built-in virtual board), feed the registry, show the verdict."""
    request = RunRequest(board_ref, plan_file, env, place, results_root, no_submit=no_submit)
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
