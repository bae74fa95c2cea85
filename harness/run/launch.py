"""Running a plan on a board from start to submission: what `harness run` and `harness certify` do.

Kept apart from the click command (harness/run/cli.py) so other commands reuse it without
importing a CLI module. Everything that can be wrong with the input (board profile, plan,
env file, resume id) is checked before a board is touched or a folder is created, so a
typo costs nothing and exits 2. Then the pytest plugin (harness/run/plugin.py) does the
run; this adds what a person at a bench wants around it: live progress, a virtual board
started when no lab was given, and the submission to the registry.

Exit codes: 0 certified and nothing failed; 1 a test failed; 2 bad input;
3 infrastructure error or incomplete run; 130/143 stopped by SIGINT/SIGTERM (resumable).
A registry that cannot be reached never changes the exit code (the client queues the run).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pytest

from harness.errors import EXIT_INFRA, InfraError, Location, UserError
from harness.model.board import BoardProfile, find_board
from harness.model.expand import expand_plan, parse_overrides
from harness.model.labenv import check_env_file, power_needs_a_person
from harness.model.plan import Plan, load_plan
from harness.model.records import ImageInfo
from harness.report.runfolder import (
    RUN_ID,
    RunFolder,
    check_results_root,
    new_run_id,
    write_submission,
)
from harness.run.image import (
    OsImage,
    check_image,
    check_resumed_image,
    check_virtual_image,
    deploy_on_unit,
)
from harness.run.place import place_env_file, require_coordinator
from harness.run.progress import RunProgress

if TYPE_CHECKING:
    from harness.farm.hold import HoldRequest, PlaceHold

log = logging.getLogger(__name__)


@dataclass
class RunRequest:
    """One `harness run`: the board, the plan, where the unit is, and pytest's selection."""

    board_ref: str
    plan_file: Path
    env: Path | None = None
    place: str | None = None
    results_root: Path = Path("results")
    reserve: str | None = None  # any place with these tags (a labgrid reservation)
    wait: bool = False  # queue for a place that is taken
    wait_timeout: float | None = None
    health_check: bool = False  # this run is a board health check (harness farm health)
    run_id: str | None = None  # id of the new run (a fan-out names its runs)
    retries: int = 1
    resume_id: str | None = None
    no_submit: bool = False
    keyword: str | None = None
    markexpr: str | None = None
    exitfirst: bool = False
    last_failed: bool = False
    junitxml: Path | None = None
    operator: str | None = None
    plain: bool = False
    params: tuple[str, ...] = ()  # plan parameter overrides, NAME=VALUE (--param)
    unattended: bool = False  # ask no operator steps: their tests are not-run
    answers: str | None = None  # operator answers from '-' (stdin) or a file; default: a terminal
    image: Path | None = None  # OS image to deploy before the board boots (--image)


def load_board(ref: str) -> BoardProfile:
    """A profile path, a name in boards/, or a built-in virtual board (`sim`)."""
    try:
        return find_board(ref)
    except UserError:
        # Built-in virtual boards that live with the virtual lab (e.g. `sim`).
        from harness.vlab.boardhost import resolve_board

        return resolve_board(ref)


def _check_resume(
    results_root: Path, run_id: str, plan: Plan, profile: BoardProfile, image: OsImage | None
) -> None:
    """A resumed run must run what it started with: the same plan, board, parameters and image
    (`plan` is the expanded plan, with this invocation's parameters)."""
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
    if run.plan.parameters and run.plan.parameters != plan.parameters:
        changed = sorted(
            name
            for name in {*run.plan.parameters, *plan.parameters}
            if run.plan.parameters.get(name) != plan.parameters.get(name)
        )
        was = ", ".join(f"{name}={run.plan.parameters.get(name)}" for name in changed)
        raise UserError(
            f"run {run_id} started with {was}; a resumed run must use the same plan "
            "parameters (give the same --param options, and the same lab values)",
            Location(field="--param"),
        )
    check_resumed_image(run_id, run.image, image)


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


_AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"


@contextlib.contextmanager
def installed_plugins_not_loaded() -> Iterator[None]:
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
def stop_on_sigterm() -> Iterator[list[str]]:
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
    image: ImageInfo | None = None  # the OS image deployed for the run, as run.json records it


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
def lab(
    profile: BoardProfile,
    env: Path | None,
    hold: HoldRequest | None,
    run_id: str,
    needs_power: bool = False,
    image: OsImage | None = None,
) -> Iterator[Lab]:
    """The lab of a run; starts and stops a virtual board, or holds a place, if need be.
    With `image`, the OS image is deployed before the board is used (docs/os-image.md)."""
    target = profile.lab.target
    if env is None and hold is None and profile.lab.env is not None:
        env = profile.resolve(profile.lab.env)
    if env is not None:
        _check_env_file(env, target, needs_power)
        deployed = deploy_on_unit(image, env, target)
        yield Lab(profile, env, "env", str(env), image=deployed)
        return
    if hold is None and profile.lab.place is not None:
        hold = hold_request(profile.lab.place, None, False, None)
    if hold is not None:
        from harness.farm.hold import hold_place

        with (
            hold_place(hold) as held,
            place_env_file(held.name, run_id, held.resource_classes()) as path,
        ):
            deployed = deploy_on_unit(image, path, target)
            yield Lab(profile, path, "place", held.name, held, deployed)
        return
    from harness.vlab import boardhost
    from harness.vlab import state as lab_state

    deployed = check_virtual_image(profile, image)
    name = f"run-{run_id.rsplit('-', 1)[-1]}-{os.getpid()}"
    click.echo(f"starting virtual board {profile.name} as {name} …", err=True)
    started = boardhost.start_bench(
        profile,
        name,
        lab_dir=lab_state.lab_dir(),
        owner=os.getpid(),
        os_image=image.path if image is not None else None,
    )
    try:
        served = profile
        if Path(started.profile).is_file() and Path(started.profile) != profile.source:
            served = find_board(started.profile)  # e.g. the sim board, with the host's real numbers
        yield Lab(served, Path(started.env_file), "virtual", profile.name, image=deployed)
    finally:
        boardhost.stop_bench(started)


def _check_answers(request: RunRequest) -> None:
    """--answers names a readable file (or `-`), and does not contradict --unattended."""
    if request.answers is None:
        return
    if request.unattended:
        raise UserError("give --unattended or --answers, not both", Location(field="--answers"))
    if request.answers != "-" and not Path(request.answers).is_file():
        raise UserError(
            "no such file of operator answers (give a file, or '-' for stdin)",
            Location(request.answers, None, "--answers"),
        )


def _deliver(run_dir: Path) -> str:
    """Deliver the run to the registry: its delivery status, never an exception."""
    try:
        from harness.registry.client import submit_run
    except ImportError:
        return "unavailable: this harness has no registry client"
    try:
        return str(submit_run(run_dir))
    except Exception as exc:  # the registry never changes the verdict, and never loses the run
        log.info("submitting %s failed", run_dir, exc_info=True)
        return f"unavailable: {type(exc).__name__}: {exc}"


def submit(run_dir: Path) -> str:
    """Deliver a finished run, record how it went in its submission.json and tell the user.

    A queued run's reason and what to do are printed here, not only kept in the outbox's
    .error file. run.json is not touched: the bundle the registry holds is exactly the folder.
    """
    status = _deliver(run_dir)
    problem = None
    if status == "queued":
        from harness.registry.delivery import queued_problem_of_folder

        problem = queued_problem_of_folder(run_dir)
    if problem is None:
        write_submission(run_dir, status)
    else:
        write_submission(run_dir, status, problem.reason, problem.what_to_do)
    click.echo(f"registry: {status}", err=True)
    if problem is not None:
        click.echo(f"  why: {problem.reason}", err=True)
        click.echo(f"  what to do: {problem.what_to_do}", err=True)
    return status


def run_plan(request: RunRequest) -> tuple[int, Path]:
    """Run the plan on the board and submit the run: the exit code (see the module docstring)
    and the run folder."""
    env, place, resume_id = request.env, request.place, request.resume_id
    results_root = request.results_root
    if env is not None and (place is not None or request.reserve is not None):
        raise UserError("give --env or --place/--reserve, not both", Location(field="--place"))
    if place is not None and request.reserve is not None:
        raise UserError("give --place or --reserve, not both", Location(field="--reserve"))
    if env is not None and not env.is_file():
        raise UserError("labgrid environment file not found", Location(str(env), None, "--env"))
    check_results_root(results_root)
    _check_answers(request)
    hold = hold_request(
        place, request.reserve, request.wait, request.wait_timeout, request.health_check
    )
    profile = load_board(request.board_ref)
    plan = load_plan(request.plan_file)
    expanded = expand_plan(plan, profile, parse_overrides(request.params))  # bad ones: exit 2
    image = check_image(request.image) if request.image is not None else None  # hashed once
    if resume_id is not None:
        _check_resume(results_root, resume_id, expanded, profile, image)
    if request.run_id is not None and not RUN_ID.match(request.run_id):
        raise UserError(f"{request.run_id!r} is not a run id", Location(field="--run-id"))
    run_id = resume_id or request.run_id or new_run_id(profile.name)
    progress = RunProgress(live=False if request.plain else None)
    folder = results_root / run_id
    needs_power = any(s.kind == "power-cycle" for t in plan.tests for s in t.steps)
    with stop_on_sigterm() as stopped_by:
        try:
            with lab(profile, env, hold, run_id, needs_power, image) as where:
                args = _pytest_args(
                    request, plan, where.profile, where.env_file, run_id, where.kind, where.name
                )
                if where.image is not None:
                    args[-1:-1] = ["--image-info", where.image.model_dump_json()]
                guards = [where.hold] if where.hold is not None else []
                with installed_plugins_not_loaded():
                    status = pytest.main(args, plugins=[progress, *guards])
                if where.hold is not None:
                    from harness.farm.hold import run_outcome

                    where.hold.result = run_outcome(folder, request.health_check)
        except KeyboardInterrupt:  # while waiting for a place, before any run existed
            click.echo(f"harness: stopped by {stopped_by[0]} before the run started", err=True)
            return (143 if stopped_by[0] == "SIGTERM" else 130), folder
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
        return (143 if stopped_by[0] == "SIGTERM" else 130), folder
    if status == pytest.ExitCode.USAGE_ERROR or not (folder / "run.json").is_file():
        raise InfraError(
            f"the run did not start (pytest exit {int(status)}); see the messages above"
        )
    run_record = RunFolder(folder).read_run()
    if run_record.status != "finished":
        raise InfraError(f"run {run_id} did not finish; continue it with --resume {run_id}")
    if not request.no_submit:
        submit(folder)
    code = run_record.exit_code
    return (code if code is not None else EXIT_INFRA), folder


def _pytest_args(
    request: RunRequest,
    plan: Plan,
    profile: BoardProfile,
    env_file: Path,
    run_id: str,
    lab_kind: str,
    lab_name: str,
) -> list[str]:
    results_root = request.results_root
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
        # pytest's check for unraisable exceptions ends every session with five full garbage
        # collections (0.7 s of CPU per run, a tenth of a fan-out board's); it reports on a
        # test suite's hygiene, not on the board.
        "-p",
        "no:unraisableexception",
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
        str(request.retries),
        "--lab-kind",
        lab_kind,
        "--lab-name",
        lab_name,
        "-o",
        "cache_dir=" + str(results_root / ".cache"),
    ]
    if request.resume_id is not None:
        args.append("--resume-run")
    if request.operator:
        args += ["--operator", request.operator]
    if request.keyword:
        args += ["-k", request.keyword]
    if request.markexpr:
        args += ["-m", request.markexpr]
    if request.exitfirst:
        args.append("-x")
    if request.last_failed:
        args.append("--lf")
    if request.junitxml is not None:
        args += ["--junitxml", str(request.junitxml)]
    for pair in request.params:
        args += ["--param", pair]
    if request.unattended:
        args.append("--unattended")
    if request.answers is not None:
        args += ["--answers", request.answers]
    args.append(str(plan.file))
    return [str(arg) for arg in args]
