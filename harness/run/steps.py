"""The step kinds of a plan: run, reboot, power-cycle, put, get, python, manual.

Each step either returns normally (maybe with problems, which make the test
fail), or lets a typed exception through: `BoardFault` (the board misbehaved:
the executor makes it a `fail`), `InfraError` (the lab did: `error`, retried),
`StepFailed` (a python step said no: `fail`), `OperatorUnavailable` (nobody to ask a manual
step: `not-run`). Nothing here decides outcomes;
it only reports what happened.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.model.plan import Step
from harness.model.pysteps import import_python_step
from harness.model.stepspecs import OPERATOR_NOT_ASKED
from harness.run.context import StepFailed, TestContext
from harness.run.expect import Measurement, check_expectations, take_measurements
from harness.run.operator import OperatorUnavailable

MIN_STEP_TIMEOUT = 1.0


@dataclass
class StepsResult:
    problems: list[str] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    last_output: str = ""


class TestTimedOut(StepFailed):
    """The test used up its own timeout before its last step: the board was too slow."""


def run_steps(
    ctx: TestContext, steps: list[Step], deadline: float, scope: Mapping[str, Any]
) -> StepsResult:
    """Run the steps in order; stop at the first step with a problem."""
    result = StepsResult()
    put_digests: dict[str, str] = {}
    for index, step in enumerate(steps, start=1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TestTimedOut(
                f"test timeout of {ctx.test.timeout:g} s used up before step {index} ({step.kind})"
            )
        # Rounded so messages say "within 2 s", not "within 1.99997 s".
        step_timeout = max(round(remaining, 1), MIN_STEP_TIMEOUT)
        started = time.monotonic()
        problems = _run_one(ctx, step, step_timeout, scope, result, put_digests)
        if step.kind == "manual":  # a person's thinking time is not the board's slowness
            deadline += time.monotonic() - started
        if problems:
            result.problems.extend(f"step {index} ({step.kind}): {problem}" for problem in problems)
            break
    result.measurements = [*result.measurements, *ctx.measurements]
    return result


def _run_one(
    ctx: TestContext,
    step: Step,
    timeout: float,
    scope: Mapping[str, Any],
    result: StepsResult,
    put_digests: dict[str, str],
) -> list[str]:
    kind = step.kind
    if kind == "run":
        return _run_command(ctx, step, timeout, scope, result)
    if kind in ("reboot", "power-cycle"):
        return _boot(ctx, step, result)
    if kind == "put":
        return _put(ctx, step, put_digests)
    if kind == "get":
        return _get(ctx, step, put_digests)
    if kind == "python":
        function = import_python_step(
            step.python or "", ctx.test.source_file.parent if ctx.test.source_file else None
        )
        ctx.transcript.note(f"python {step.python}")
        function(ctx)
        return []
    if kind == "manual":
        return _manual(ctx, step)
    raise ValueError(f"unknown step kind {kind!r}")


def _manual(ctx: TestContext, step: Step) -> list[str]:
    spec = step.manual
    assert spec is not None
    if ctx.desk is None:
        raise OperatorUnavailable(f"{OPERATOR_NOT_ASKED}: this run has nobody to ask")
    answer = ctx.desk.ask(ctx.test.id, spec)
    attached = f", attached {answer.attachment.file}" if answer.attachment else ""
    ctx.transcript.note(
        f"operator {answer.operator} answered {answer.answer} to {spec.verify!r}{attached}"
    )
    if answer.answer == "no":
        return [f"operator {answer.operator} answered no to {spec.verify!r}"]
    return []


def _run_command(
    ctx: TestContext, step: Step, timeout: float, scope: Mapping[str, Any], result: StepsResult
) -> list[str]:
    via = step.transport or ctx.transport
    session = ctx.board.ssh if via == "ssh" else ctx.board.console
    command = step.run or ""
    outcome = session.run(command, timeout=timeout)
    ctx.transcript.command(
        via, command, outcome.exit_status, outcome.stdout + outcome.stderr, outcome.duration
    )
    result.last_output = outcome.stdout + (
        ("\n[stderr]\n" + outcome.stderr) if outcome.stderr else ""
    )
    problems: list[str] = []
    if step.expect is not None:
        found, measured = check_expectations(
            step.expect, outcome.exit_status, outcome.stdout, outcome.stderr, scope
        )
        problems.extend(found)
        result.measurements.extend(measured)
    elif outcome.exit_status != 0:
        problems.append(f"exit status {outcome.exit_status}, expected 0")
    missing, measured = take_measurements(step.measure, outcome.stdout, outcome.stderr)
    result.measurements.extend(measured)
    return problems + missing


def _boot(ctx: TestContext, step: Step, result: StepsResult) -> list[str]:
    spec = step.reboot if step.kind == "reboot" else step.power_cycle
    before = ctx.board.boot_id()
    ctx.transcript.note(f"{step.kind} (boot id before: {before})")
    seconds = ctx.board.reboot() if step.kind == "reboot" else ctx.board.power_cycle()
    after = ctx.board.boot_id()
    ctx.transcript.note(f"back after {seconds:.2f} s (boot id after: {after})")
    result.measurements.append(Measurement("boot_time", round(float(seconds), 3), "s"))
    problems = []
    if after == before:
        problems.append(f"boot id unchanged ({after}): the board did not really restart")
    if spec is not None and spec.max_boot_time is not None and seconds > spec.max_boot_time:
        problems.append(
            f"boot took {seconds:.1f} s, more than the allowed {spec.max_boot_time:g} s"
        )
    return problems


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _put(ctx: TestContext, step: Step, put_digests: dict[str, str]) -> list[str]:
    spec = step.put
    assert spec is not None
    if spec.random_bytes is not None:
        local = ctx.artifacts / f"{ctx.test.id}-put-{os.getpid()}.bin"
        local.write_bytes(os.urandom(spec.random_bytes))
    else:
        base = ctx.test.source_file.parent if ctx.test.source_file else Path.cwd()
        local = base / (spec.local or "")
    started = time.monotonic()
    ctx.board.ssh.put(str(local), spec.remote)
    elapsed = time.monotonic() - started
    put_digests[spec.remote] = _digest(local)
    size = local.stat().st_size
    ctx.transcript.note(f"put {local.name} -> {spec.remote} ({size} bytes, {elapsed:.3f} s)")
    if spec.random_bytes is not None:
        local.unlink()
    return []


def _get(ctx: TestContext, step: Step, put_digests: dict[str, str]) -> list[str]:
    spec = step.get
    assert spec is not None
    local = ctx.artifacts / (spec.local or f"{ctx.test.id}-{Path(spec.remote).name}")
    started = time.monotonic()
    ctx.board.ssh.get(spec.remote, str(local))
    elapsed = time.monotonic() - started
    ctx.transcript.note(
        f"get {spec.remote} -> {local.name} ({local.stat().st_size} bytes, {elapsed:.3f} s)"
    )
    if spec.same_as_put:
        if spec.remote not in put_digests:
            return [f"nothing was put to {spec.remote} earlier in this test to compare with"]
        if _digest(local) != put_digests[spec.remote]:
            return [f"{spec.remote} came back different from what was put there (sha256 mismatch)"]
        if spec.local is None:
            local.unlink()
    return []
