"""Whose code raised: the plan's python step (user) or the harness's own code (harness-bug)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from harness.errors import InfraError, Location, UserError
from harness.model.records import ErrorClass
from harness.run.errorclass import classify, describe


def _plan_module(tmp_path: Path, source: str) -> ModuleType:
    """A python step module living next to a plan, as a plan author writes one."""
    path = tmp_path / "steps_under_test.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("steps_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _raised(function, *args) -> BaseException:
    with pytest.raises(Exception) as caught:
        function(*args)
    return caught.value


def test_a_bug_in_the_plans_own_step_is_the_users(tmp_path: Path) -> None:
    steps = _plan_module(tmp_path, "def check(ctx):\n    return {}['missing']\n")
    exc = _raised(steps.check, None)
    assert classify(exc) is ErrorClass.USER
    assert describe(exc, ErrorClass.USER) == "python step raised KeyError: 'missing'"


def test_a_library_error_counts_against_the_step_that_called_the_library(tmp_path: Path) -> None:
    steps = _plan_module(tmp_path, "import json\ndef check(ctx):\n    return json.loads('{')\n")
    assert classify(_raised(steps.check, None)) is ErrorClass.USER


def test_an_exception_from_harness_code_called_by_a_step_is_a_harness_bug(tmp_path: Path) -> None:
    # the step hands the harness something it did not expect, and the harness's code breaks
    steps = _plan_module(
        tmp_path,
        "from harness.run.outcomes import count_outcomes\n"
        "def check(ctx):\n    return count_outcomes([object()])\n",
    )
    exc = _raised(steps.check, None)
    assert classify(exc) is ErrorClass.HARNESS_BUG
    reason = describe(exc, ErrorClass.HARNESS_BUG)
    assert reason.startswith("harness bug: AttributeError")
    assert "outcomes.py:" in reason and "please report it" in reason


def test_bad_input_and_lab_failures_keep_their_own_class() -> None:
    bad = UserError("console command longer than 4000 bytes", Location(field="steps[0].run"))
    assert classify(bad) is ErrorClass.USER
    assert describe(bad, ErrorClass.USER).startswith("bad input: ")
    assert classify(InfraError("console lost")) is ErrorClass.INFRASTRUCTURE
