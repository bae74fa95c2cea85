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
from pathlib import Path
from typing import Any

import click
import pytest

from harness.errors import EXIT_BAD_INPUT, EXIT_INFRA, InfraError, Location, UserError
from harness.model.board import BoardProfile, find_board
from harness.model.labenv import check_env_file
from harness.model.plan import Plan, load_plan
from harness.report.runfolder import RUN_ID, SUBMISSION, RunFolder, iso, new_run_id, utc_now
from harness.run.place import place_env_file
from harness.run.progress import RunProgress


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


def _check_env_file(path: Path, target: str) -> None:
    """A broken environment file is bad input (exit 2), found before a run folder exists."""
    check_env_file(path, target, "--env")


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


_AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"


@contextlib.contextmanager
def _installed_plugins_not_loaded() -> Iterator[None]:
    """Run pytest with our plugin only, not every pytest plugin installed on the host.

    pytest imports (and assertion-rewrites) each installed plugin at start: on the lab's
    Python that was 5 of the 8.5 s of CPU a smoke-plan run on the simulated board took
    (schemathesis, hypothesis...), and a stray plugin could change how a run behaves.
    """
    previous = os.environ.get(_AUTOLOAD)
    os.environ[_AUTOLOAD] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_AUTOLOAD, None)
        else:
            os.environ[_AUTOLOAD] = previous


@contextlib.contextmanager
def _lab(
    profile: BoardProfile, env: Path | None, place: str | None, run_id: str
) -> Iterator[tuple[BoardProfile, Path, str, str]]:
    """Yield (profile, env file, lab kind, lab name); start and stop a virtual board if needed."""
    if env is not None:
        _check_env_file(env, profile.lab.target)
        yield profile, env, "env", str(env)
        return
    if place is not None:
        with place_env_file(place, run_id) as path:
            yield profile, path, "place", place
        return
    if profile.lab.env is not None:
        path = profile.resolve(profile.lab.env)
        _check_env_file(path, profile.lab.target)
        yield profile, path, "env", str(path)
        return
    if profile.lab.place is not None:
        with place_env_file(profile.lab.place, run_id) as path:
            yield profile, path, "place", profile.lab.place
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
        yield served, Path(started.env_file), "virtual", profile.name
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
@click.option("--place", help="labgrid coordinator place (acquire it first with labgrid-client)")
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

    The unit is reached through --env (a labgrid environment file), --place (a place on
    the coordinator in $LG_COORDINATOR, acquired beforehand), the profile's own `lab:`
    entry, or, for a virtual board, a bench this command starts and stops itself.

    Exit status: 0 certified and nothing failed, 1 a test failed, 2 bad input,
    3 infrastructure error or incomplete run (continue it with --resume RUN_ID).
    """
    if env is not None and place is not None:
        raise UserError("give --env or --place, not both", Location(field="--place"))
    if env is not None and not env.is_file():
        raise UserError("labgrid environment file not found", Location(str(env), None, "--env"))
    profile = _load_board(board_ref)
    plan = load_plan(plan_file)
    if resume_id is not None:
        _check_resume(results_root, resume_id, plan, profile)
    run_id = resume_id or new_run_id(profile.name)
    progress = RunProgress(live=False if plain else None)
    with _lab(profile, env, place, run_id) as (served, env_file, lab_kind, lab_name):
        args = _pytest_args(
            plan,
            served,
            env_file,
            results_root,
            run_id,
            resume_id is not None,
            retries,
            operator,
            lab_kind,
            lab_name,
            keyword,
            markexpr,
            exitfirst,
            last_failed,
            junitxml,
        )
        with _stop_on_sigterm() as stopped_by, _installed_plugins_not_loaded():
            status = pytest.main(args, plugins=[progress])
    folder = results_root / run_id
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
