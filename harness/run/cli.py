"""`harness run`: run a plan on a board and leave a complete run folder behind.

Everything that can be wrong with the input (board profile, plan, env file,
resume id, options) is checked before a board is touched or a folder is
created, so a typo costs nothing and exits 2. Then the pytest plugin does
the run; this command adds the parts a person at a bench wants: live progress,
starting a virtual board when no lab was given, submitting to the registry.

Exit codes: 0 certified and nothing failed; 1 a test failed; 2 bad input;
3 infrastructure error or incomplete run. A registry that cannot be reached
never changes the exit code (the submission is queued by the client).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pytest

from harness.errors import EXIT_BAD_INPUT, EXIT_INFRA, InfraError, Location, UserError
from harness.model.board import BoardProfile, find_board
from harness.model.labenv import check_env_file, power_needs_a_person
from harness.model.plan import Plan, load_plan
from harness.report.runfolder import RUN_ID, SUBMISSION, RunFolder, iso, new_run_id, utc_now
from harness.run.place import place_env_file, require_coordinator
from harness.run.progress import RunProgress

if TYPE_CHECKING:
    from harness.farm.hold import HoldRequest, PlaceHold


def _load_board(ref: str) -> BoardProfile:
    try:
        return find_board(ref)
    except UserError:
        # Built-in virtual boards that live with the virtual lab (e.g. `sim`).
        try:
            from harness.vlab.bench import resolve_board
        except ImportError:
            raise
        return resolve_board(ref)


def _check_resume(results_root: Path, run_id: str, plan: Plan, profile: BoardProfile) -> None:
    if not RUN_ID.match(run_id):
        raise UserError(
            f"{run_id!r} is not a run id (like 20261128T071500Z-qemu-x86_64-3f2a)",
            Location(field="--resume"),
        )
    run = RunFolder.open_existing(results_root, run_id).read_run()
    if run.plan.sha256 != plan.sha256:
        raise UserError(
            f"plan {plan.file} has changed since run {run_id} started (sha256 {run.plan.sha256[:12]}… "
            f"then, {plan.sha256[:12]}… now); a resumed run must use the same plan",
            Location(str(plan.file), None, "--plan"),
        )
    if run.board.name != profile.name:
        raise UserError(
            f"run {run_id} was on board {run.board.name!r}, not {profile.name!r}",
            Location(field="--board"),
        )


def _check_env_file(path: Path, target: str, needs_power: bool = False) -> None:
    """A broken environment file is bad input (exit 2), found before a run folder exists;
    so is a plan that power-cycles on a target whose power switch is a person nobody can ask."""
    report = check_env_file(path, target, "--env")
    if needs_power and power_needs_a_person(report, target):
        raise UserError(
            f"the plan power-cycles the board, but target {target!r}'s power driver is "
            "ManualPowerDriver, which asks a person, and this run has no terminal: give the "
            "target a power switch the harness can drive (NetworkPowerDriver, ExternalPowerDriver, "
            "PDUDaemonDriver) or run it from a terminal",
            Location(str(path), None, f"targets.{target}.drivers"),
        )


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[list[str]]:
    """SIGTERM stops a run as Ctrl-C does: the test under way is abandoned, nothing is written.

    Without this, SIGTERM killed the process outright, leaving the console
    logged in; with it, the board is closed properly and the exit code says why
    (130 for SIGINT, 143 for SIGTERM). Either way the run stays resumable.
    """
    stopped_by = ["SIGINT"]

    def on_sigterm(signum: int, frame: Any) -> None:
        stopped_by[0] = "SIGTERM"
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield stopped_by
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Lab:
    """How a run reaches its unit: the (served) profile, the env file, and what run.json says."""

    profile: BoardProfile
    env_file: Path
    kind: str
    name: str
    hold: PlaceHold | None = None  # the place held on a coordinator, and the run's lab guard


def hold_request(
    place: str | None,
    reserve: str | None,
    wait: bool,
    wait_timeout: float | None,
    health_check: bool = False,
) -> HoldRequest | None:
    """The place to hold, from --place/--reserve/--wait; bad combinations exit 2 here."""
    if place is None and reserve is None:
        if wait or wait_timeout is not None:
            raise UserError("--wait needs --place or --reserve", Location(field="--wait"))
        return None
    from harness.farm.hold import HoldRequest

    request = HoldRequest(  # a malformed --reserve is found here
        place=place,
        reserve=reserve,
        wait=wait or wait_timeout is not None,
        wait_timeout=wait_timeout,
        health_check=health_check,
    )
    require_coordinator("--place" if place is not None else "--reserve")
    return request


@contextlib.contextmanager
def _lab(
    profile: BoardProfile,
    env: Path | None,
    hold: HoldRequest | None,
    run_id: str,
    needs_power: bool = False,
) -> Iterator[Lab]:
    """The lab of a run; starts and stops a virtual board, or holds a place, if need be."""
    if env is not None:
        _check_env_file(env, profile.lab.target, needs_power)
        yield Lab(profile, env, "env", str(env))
        return
    if hold is None and profile.lab.env is not None:
        path = profile.resolve(profile.lab.env)
        _check_env_file(path, profile.lab.target, needs_power)
        yield Lab(profile, path, "env", str(path))
        return
    if hold is None and profile.lab.place is not None:
        hold = hold_request(profile.lab.place, None, False, None)
    if hold is not None:
        from harness.farm.hold import hold_place

        with (
            hold_place(hold) as held,
            place_env_file(held.name, run_id, held.resource_classes()) as path,
        ):
            yield Lab(profile, path, "place", held.name, held)
        return
    from harness.vlab import bench
    from harness.vlab import state as lab_state

    name = f"run-{run_id.rsplit('-', 1)[-1]}-{os.getpid()}"
    click.echo(f"starting virtual board {profile.name} as {name} …", err=True)
    started = bench.start_bench(profile, name, lab_dir=lab_state.lab_dir(), owner=os.getpid())
    try:
        served = profile
        if Path(started.profile).is_file() and Path(started.profile) != profile.source:
            served = find_board(started.profile)  # e.g. the sim board, with the host's real numbers
        yield Lab(served, Path(started.env_file), "virtual", profile.name)
    finally:
        bench.stop_bench(started)


def _submit(run_dir: Path) -> str:
    try:
        from harness.registry.client import submit_run
    except ImportError:
        return "unavailable: this harness has no registry client"
    try:
        return str(submit_run(run_dir))
    except Exception as exc:  # the registry never changes the verdict, and never loses the run
        return f"unavailable: {type(exc).__name__}: {exc}"


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
@click.option(
    "--reserve",
    metavar="TAGS",
    help="any place with these tags, e.g. 'board=qemu-x86_64' (a labgrid reservation)",
)
@click.option(
    "--wait", is_flag=True, help="queue for the place if it is taken (labgrid reserve --wait)"
)
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=1),
    help="give up waiting for a place after this many seconds (implies --wait)",
)
@click.option("--health-check", is_flag=True, hidden=True, help="this run is a board health check")
@click.option("--run-id", "new_run_id_", hidden=True, help="id for the new run (fan-out sets it)")
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
@click.option(
    "--results",
    "results_root",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="folder that holds the run folders",
)
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
    new_run_id_: str | None,
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
    if env is not None and (place is not None or reserve is not None):
        raise UserError("give --env or --place/--reserve, not both", Location(field="--place"))
    if place is not None and reserve is not None:
        raise UserError("give --place or --reserve, not both", Location(field="--reserve"))
    if env is not None and not env.is_file():
        raise UserError("labgrid environment file not found", Location(str(env), None, "--env"))
    hold = hold_request(place, reserve, wait, wait_timeout, health_check)
    profile = _load_board(board_ref)
    plan = load_plan(plan_file)
    if resume_id is not None:
        _check_resume(results_root, resume_id, plan, profile)
    if new_run_id_ is not None and not RUN_ID.match(new_run_id_):
        raise UserError(f"{new_run_id_!r} is not a run id", Location(field="--run-id"))
    run_id = resume_id or new_run_id_ or new_run_id(profile.name)
    progress = RunProgress(live=False if plain else None)
    folder = results_root / run_id
    with _stop_on_sigterm() as stopped_by:
        try:
            needs_power = any(s.kind == "power-cycle" for t in plan.tests for s in t.steps)
            with _lab(profile, env, hold, run_id, needs_power) as lab:
                args = _pytest_args(
                    plan,
                    lab.profile,
                    lab.env_file,
                    results_root,
                    run_id,
                    resume_id is not None,
                    retries,
                    operator,
                    lab.kind,
                    lab.name,
                    keyword,
                    markexpr,
                    exitfirst,
                    last_failed,
                    junitxml,
                )
                guards = [lab.hold] if lab.hold is not None else []
                status = pytest.main(args, plugins=[progress, *guards])
                if lab.hold is not None:
                    from harness.farm.hold import run_outcome

                    lab.hold.result = run_outcome(folder, health_check)
        except KeyboardInterrupt:  # while waiting for a place, before any run existed
            click.echo(f"harness: stopped by {stopped_by[0]} before the run started", err=True)
            return 143 if stopped_by[0] == "SIGTERM" else 130
    if (
        status == pytest.ExitCode.INTERRUPTED
        and (folder / "run.json").is_file()
        and RunFolder(folder).read_run().status != "finished"
    ):
        click.echo(
            f"harness: run {run_id} stopped by {stopped_by[0]}; nothing finished is lost: "
            f"continue it with --resume {run_id}",
            err=True,
        )
        return 143 if stopped_by[0] == "SIGTERM" else 130
    if status == pytest.ExitCode.USAGE_ERROR or not (folder / "run.json").is_file():
        raise InfraError(
            f"the run did not start (pytest exit {int(status)}); see the messages above"
        )
    session_folder = RunFolder(folder)
    run_record = session_folder.read_run()
    if run_record.status != "finished":
        raise InfraError(f"run {run_id} did not finish; continue it with --resume {run_id}")
    if not no_submit:
        # run.json is not touched after this point: the bundle the registry holds is exactly
        # the folder; how the delivery went is kept beside it.
        registry = _submit(folder)
        submission = {"status": registry, "at": iso(utc_now())}
        if registry == "queued":
            from harness.registry.delivery import queued_problem_of_folder

            problem = queued_problem_of_folder(folder)
            if problem is not None:  # shown here, not only in the outbox's .error file
                submission.update(reason=problem.reason, what_to_do=problem.what_to_do)
        session_folder.write_json(SUBMISSION, submission)
        click.echo(f"registry: {registry}", err=True)
        if "reason" in submission:
            click.echo(f"  why: {submission['reason']}", err=True)
            click.echo(f"  what to do: {submission['what_to_do']}", err=True)
    code = run_record.exit_code
    return code if code is not None else EXIT_INFRA


def _pytest_args(
    plan: Plan,
    profile: BoardProfile,
    env_file: Path,
    results_root: Path,
    run_id: str,
    resume: bool,
    retries: int,
    operator: str | None,
    lab_kind: str,
    lab_name: str,
    keyword: str | None,
    markexpr: str | None,
    exitfirst: bool,
    last_failed: bool,
    junitxml: Path | None,
) -> list[str]:
    # Our own settings only: the project's pytest.ini/pyproject (addopts, timeouts) and any
    # conftest.py lying around must not change how a certification run behaves.
    args: list[Any] = [
        "-c",
        os.devnull,
        "--noconftest",
        "--rootdir",
        str(Path.cwd()),
        "-p",
        "harness.run.plugin",
        "--capture=no",
        "-p",
        "no:terminal",
        "-p",
        "no:labgrid",
        "-p",
        "no:timeout",
        "-p",
        "no:randomly",
        "--board",
        str(profile.source),
        "--plan",
        str(plan.file),
        "--lg-env",
        str(env_file),
        "--run-dir",
        str(results_root),
        "--run-id",
        run_id,
        "--retries",
        str(retries),
        "--lab-kind",
        lab_kind,
        "--lab-name",
        lab_name,
        "-o",
        "cache_dir=" + str(results_root / ".cache"),
    ]
    if resume:
        args.append("--resume-run")
    if operator:
        args += ["--operator", operator]
    if keyword:
        args += ["-k", keyword]
    if markexpr:
        args += ["-m", markexpr]
    if exitfirst:
        args.append("-x")
    if last_failed:
        args.append("--lf")
    if junitxml is not None:
        args += ["--junitxml", str(junitxml)]
    args.append(str(plan.file))
    return [str(arg) for arg in args]


__all__ = ["EXIT_BAD_INPUT", "run"]
