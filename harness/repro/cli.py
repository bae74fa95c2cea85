"""`harness repro CASE --board B`: run a customer case repeatedly and say how often it fails.

Everything about the input (case file, board, env file, baseline, resume id)
is checked before a board is touched or a folder is made: a bad case exits 2.
Exit codes: repro: 0 never reproduced, 1 reproduced at least once, 3 no
iteration could be counted (lab trouble; continue with --resume).
Verify: 0 resolved, 1 not-resolved, 3 inconclusive or incomplete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.errors import EXIT_INFRA, InfraError, Location, UserError
from harness.model.case import load_case
from harness.model.case_records import IterationRecord, Summary
from harness.options import place_options, results_option, run_id_option
from harness.report.runfolder import RUN_ID, check_results_root
from harness.report.runfolder import new_run_id as new_run_id_for
from harness.repro import stats
from harness.repro.folder import ReproFolder
from harness.repro.report import write_report
from harness.repro.session import (
    Plan,
    ReproSession,
    customer_fingerprints,
    load_baseline,
    open_or_fail,
    resumable,
)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _progress(record: IterationRecord, summary: Summary) -> None:
    interval = summary.interval
    bounds = f"[{_pct(interval.low)}, {_pct(interval.high)}]" if interval else "[—]"
    click.echo(
        f"iteration {record.iteration}: {record.outcome} ({record.duration:.1f} s) {record.reason}"
        f" | rate {summary.reproduced}/{summary.iterations} = {_pct(summary.rate)} {bounds}"
        + (f", {summary.errors} error(s)" if summary.errors else ""),
        err=True,
    )


@click.command()
@click.argument("case_file", type=click.Path(path_type=Path))
@click.option("--board", "board_ref", required=True, help="board profile: a path or a name")
@click.option("--repeat", type=click.IntRange(1, 100_000), help="counted iterations to run")
@click.option("--until-first", is_flag=True, help="stop at the first reproduction")
@click.option("--max-time", type=click.FloatRange(min=1), help="stop starting iterations after S s")
@click.option(
    "--between",
    type=click.Choice(["none", "reboot", "power-cycle"]),
    help="what to do between iterations (default: the case's setting)",
)
@click.option("--env", type=click.Path(path_type=Path), help="labgrid environment file")
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
    help="fan out over every place whose tags match, e.g. 'board=qemu-*'",
)
@place_options
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="fan-out: boards at once",
)
@run_id_option
@click.option("--resume", "resume_id", help="continue an interrupted repro run")
@click.option(
    "--verify", is_flag=True, help="verify a fix: run until the rate is below the baseline's"
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    help="repro run folder or bundle whose rate a fix is verified against",
)
@results_option
@click.option("--no-submit", is_flag=True, help="do not deliver the run to the registry")
@click.option("--operator", help="who runs this (default: $USER)")
@click.option(
    "--build",
    "builds",
    multiple=True,
    metavar="KERNEL_PACKAGE",
    help="virtual lab: boot this Debian kernel package (repeat: two for A/B, more with --bisect)",
)
@click.option(
    "--bisect", is_flag=True, help="find the first bad build among --build (oldest first)"
)
def repro(
    case_file: Path,
    board_ref: str,
    repeat: int | None,
    until_first: bool,
    max_time: float | None,
    between: str | None,
    env: Path | None,
    place_names: tuple[str, ...],
    place_patterns: tuple[str, ...],
    reserve: str | None,
    wait: bool,
    wait_timeout: float | None,
    parallel: int,
    new_run_id: str | None,
    resume_id: str | None,
    verify: bool,
    baseline: Path | None,
    results_root: Path,
    no_submit: bool,
    operator: str | None,
    builds: tuple[str, ...],
    bisect: bool,
) -> int:
    """Run the customer case CASE_FILE on a board, iteration after iteration.

    Prints the running reproduction rate with its 95% Wilson interval; the run folder
    (results/<run-id>/) holds results.jsonl, run.json, console.log, report.json and
    report.html. With --verify --baseline RUN, runs until the failure rate is shown to
    be below the baseline's (or the case reproduces).
    """
    from harness.run.launch import hold_request, lab, load_board, submit

    case = load_case(case_file)
    customer_fingerprints(case)  # the attached logs are input too: refused before any board
    if len(place_names) > 1 or place_patterns:
        if env is not None or reserve is not None or resume_id is not None or builds:
            raise UserError(
                "a fan-out (several --place, or --places) takes no --env, --reserve, --resume "
                "or --build",
                Location(field="--places"),
            )
        options = _options(repeat, until_first, max_time, between, baseline, no_submit, operator)
        return _fan_out(
            case_file, board_ref, place_names, place_patterns, parallel, results_root, options
        )
    place = place_names[0] if place_names else None
    if env is not None and (place is not None or reserve is not None):
        raise UserError("give --env or --place/--reserve, not both", Location(field="--place"))
    hold = hold_request(place, reserve, wait, wait_timeout)
    if env is not None and not env.is_file():
        raise UserError("labgrid environment file not found", Location(str(env), None, "--env"))
    check_results_root(results_root)
    if verify != (baseline is not None):
        raise UserError(
            "--verify and --baseline go together",
            Location(field="--baseline" if verify else "--verify"),
        )
    profile = load_board(board_ref)
    base = load_baseline(baseline, case) if baseline is not None else None
    if resume_id is not None:
        if not RUN_ID.match(resume_id):
            raise UserError(f"{resume_id!r} is not a run id", Location(field="--resume"))
        resumable(results_root, resume_id, case, profile, base)
    needed = stats.iterations_needed(base.rate) if base is not None else None
    plan = Plan(
        repeat=repeat or needed or case.spec.settings.iterations,
        until_first=until_first,
        max_time=max_time,
        between=between or case.spec.settings.between,
        verify_needed=needed,
    )
    if needed is not None:
        click.echo(
            f"verify: baseline {base.reproduced}/{base.iterations} = {_pct(base.rate)}; "  # type: ignore[union-attr]
            f"{needed} clean iterations needed ({stats.TEST_NAME}, alpha {stats.ALPHA:g})",
            err=True,
        )
    if builds:
        return _over_builds(
            case,
            profile,
            list(builds),
            bisect,
            results_root,
            plan,
            env,
            place or reserve,
            resume_id,
            base,
        )
    if bisect:
        raise UserError(
            "--bisect needs the builds: --build PKG (at least two)", Location(field="--build")
        )
    if new_run_id is not None and not RUN_ID.match(new_run_id):
        raise UserError(f"{new_run_id!r} is not a run id", Location(field="--run-id"))
    run_id = resume_id or new_run_id or new_run_id_for(profile.name)
    with lab(profile, env, hold, run_id) as where:
        session = ReproSession(
            case,
            where.profile,
            where.env_file,
            results_root,
            plan,
            run_id=run_id,
            resume=resume_id is not None,
            baseline=base,
            lab_kind=where.kind,
            lab_name=where.name,
            operator=operator,
            progress=_progress,
            guard=where.hold,
        )
        try:
            open_or_fail(session)
            session.iterate()
            code = session.finish()
        finally:
            session.close()
        if where.hold is not None:
            verdict = ReproFolder(results_root / run_id).read_run().verdict
            where.hold.result = {
                "run_id": run_id,
                "verdict": verdict,
                # no iteration could be counted: the lab's problem, as for an incomplete run
                "error_class": "infrastructure" if verdict == "incomplete" else None,
                "reason": session.stop_reason,
            }
    folder = results_root / run_id
    html = write_report(folder)
    run = ReproFolder(folder).read_run()
    summary = run.summary
    interval = summary.interval if summary else None
    click.echo(
        f"{run.verdict}: {summary.reproduced if summary else 0}/"
        f"{summary.iterations if summary else 0} reproduced, "
        f"rate {_pct(summary.rate if summary else None)}"
        + (f" (95% CI {_pct(interval.low)}-{_pct(interval.high)})" if interval else "")
        + f"; {session.stop_reason}; report: {html}",
        err=True,
    )
    if not no_submit:
        submit(folder)
    if code == EXIT_INFRA and run.verdict == "incomplete":
        raise InfraError(f"no iteration could be counted; continue with --resume {run_id}")
    return code


def _over_builds(
    case: Any,
    profile: Any,
    builds: list[str],
    bisect: bool,
    results_root: Path,
    plan: Plan,
    env: Path | None,
    place: str | None,
    resume_id: str | None,
    base: Any,
) -> int:
    """A/B (two builds) or bisection (--bisect, two or more) on virtual boards."""
    from harness.repro.builds import ab_table, run_build
    from harness.repro.builds import bisect as run_bisect

    if env is not None or place is not None or resume_id is not None or base is not None:
        raise UserError(
            "--build runs on virtual boards the harness starts: not with --env, --place, "
            "--resume or --verify",
            Location(field="--build"),
        )
    if profile.lab.virtual is None or profile.lab.virtual.machine == "sim":
        raise UserError(
            f"board {profile.name!r} is not a QEMU virtual board: builds are kernel packages "
            "booted on the virtual lab",
            Location(field="--board"),
        )
    if len(set(builds)) != len(builds) or len(builds) < 2 or (not bisect and len(builds) != 2):
        raise UserError(
            "give two different builds for A/B, or two or more with --bisect",
            Location(field="--build"),
        )
    if bisect:
        table = run_bisect(case, profile, builds, results_root, plan, _progress)
        _print_table(table)
        return 0 if table["answer"].startswith("first bad build") else 3
    runs = [run_build(case, profile, build, results_root, plan, _progress) for build in builds]
    table = ab_table(*runs)
    for run in runs:
        write_report(results_root / run.run_id, table)
    _print_table(table)
    return 0


def _print_table(table: dict[str, Any]) -> None:
    click.echo(table["title"], err=True)
    click.echo("  " + " | ".join(table["columns"]), err=True)
    for row in table["rows"]:
        click.echo("  " + " | ".join(str(cell) for cell in row), err=True)
    click.echo(table["note"], err=True)


def _fan_out(
    case_file: Path,
    board_ref: str,
    place_names: tuple[str, ...],
    place_patterns: tuple[str, ...],
    parallel: int,
    results_root: Path,
    options: list[str],
) -> int:
    """The case on every place: the same options per board, with its place and run id."""
    import sys

    from harness.farm.fanout import fan_out
    from harness.run.place import require_coordinator

    require_coordinator("--places")

    def command(board: str, place: str, run_id: str) -> list[str]:
        return [
            sys.executable, "-m", "harness", "repro", str(case_file), "--board", board,
            "--place", place, "--wait", "--run-id", run_id, "--results", str(results_root),
            *options,
        ]  # fmt: skip

    return fan_out(
        command=command,
        patterns=list(place_patterns),
        names=list(place_names),
        board_ref=board_ref,
        parallel=parallel,
        results_root=results_root,
        label=f"case {case_file}",
    )


def _options(
    repeat: int | None,
    until_first: bool,
    max_time: float | None,
    between: str | None,
    baseline: Path | None,
    no_submit: bool,
    operator: str | None,
) -> list[str]:
    """The per-board options of a repro fan-out, as a command line."""
    argv: list[str] = []
    if repeat is not None:
        argv += ["--repeat", str(repeat)]
    if until_first:
        argv.append("--until-first")
    if max_time is not None:
        argv += ["--max-time", str(max_time)]
    if between is not None:
        argv += ["--between", between]
    if baseline is not None:
        argv += ["--verify", "--baseline", str(baseline)]
    if no_submit:
        argv.append("--no-submit")
    if operator:
        argv += ["--operator", operator]
    return argv
