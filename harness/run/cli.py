"""`harness run`: run a plan on a board and leave a complete run folder behind.

The command's options become a `RunRequest`; harness/run/launch.py does the run (checks,
virtual board, pytest plugin, submission) and its docstring gives the exit codes.
"""

from __future__ import annotations

from pathlib import Path

import click

from harness.options import place_options, results_option, run_id_option
from harness.run.launch import RunRequest, run_plan


@click.command(context_settings={"ignore_unknown_options": False})
@click.option(
    "--board", "board_ref", required=True, help="board profile: a path or a name in boards/"
)
@click.option(
    "--plan", "plan_file", required=True, type=click.Path(path_type=Path), help="test plan YAML"
)
@click.option("--env", type=click.Path(path_type=Path), help="labgrid environment file of the unit")
@click.option(
    "--place", help="labgrid place on the coordinator in $LG_COORDINATOR; held for the run"
)
@place_options
@click.option("--health-check", is_flag=True, hidden=True, help="this run is a board health check")
@run_id_option
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=1,
    show_default=True,
    help="retries after an infrastructure error",
)
@click.option(
    "--resume",
    "resume_id",
    help="continue a run that was interrupted, from its first unfinished test",
)
@click.option("--no-submit", is_flag=True, help="do not submit the run to the registry")
@click.option("-k", "keyword", help="only tests whose id matches this pytest -k expression")
@click.option(
    "-m", "markexpr", help="only tests with these markers (categories, blocker, non_blocker)"
)
@click.option("-x", "exitfirst", is_flag=True, help="stop at the first fail or error")
@click.option(
    "--lf", "last_failed", is_flag=True, help="only tests that failed last time (pytest --lf)"
)
@click.option(
    "--junitxml", type=click.Path(path_type=Path), help="also write pytest's own JUnit XML here"
)
@results_option
@click.option("--operator", help="who runs this (default: $USER)")
@click.option("--plain", is_flag=True, help="plain progress lines even on a terminal")
def run(
    board_ref: str,
    plan_file: Path,
    env: Path | None,
    place: str | None,
    reserve: str | None,
    wait: bool,
    wait_timeout: float | None,
    health_check: bool,
    new_run_id: str | None,
    retries: int,
    resume_id: str | None,
    no_submit: bool,
    keyword: str | None,
    markexpr: str | None,
    exitfirst: bool,
    last_failed: bool,
    junitxml: Path | None,
    results_root: Path,
    operator: str | None,
    plain: bool,
) -> int:
    """Run a test plan on a board; results go to results/<run-id>/.

    The unit is reached through --env (a labgrid environment file), --place or --reserve
    (a place on the coordinator in $LG_COORDINATOR, reserved, acquired and always released
    by this command; see docs/farm.md), the profile's own `lab:` entry, or, for a virtual
    board, a bench this command starts and stops itself.

    Exit status: 0 certified and nothing failed, 1 a test failed, 2 bad input,
    3 infrastructure error or incomplete run (continue it with --resume RUN_ID).
    """
    request = RunRequest(
        board_ref=board_ref, plan_file=plan_file, env=env, place=place,
        results_root=results_root, reserve=reserve, wait=wait, wait_timeout=wait_timeout,
        health_check=health_check, run_id=new_run_id, retries=retries, resume_id=resume_id,
        no_submit=no_submit, keyword=keyword, markexpr=markexpr, exitfirst=exitfirst,
        last_failed=last_failed, junitxml=junitxml, operator=operator, plain=plain,
    )  # fmt: skip
    code, _folder = run_plan(request)
    return code
