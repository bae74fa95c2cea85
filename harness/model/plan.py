"""Test plan schema (`kind: plan`) and loader.

A plan is the versioned contract a board is certified against, so everything
that can be checked without a board is checked when the plan is loaded:
unknown keys, bad regexes, `requires` expressions with unknown names, `${...}`
references to fields that do not exist, python steps that cannot be imported,
files that are not there, include cycles, duplicate test ids and waivers for
tests that do not exist. Each problem is a UserError naming file, line and
field, so `harness check` and `harness run` fail in the same way (exit 2)
before a board is touched. The full format is documented in docs/plan-format.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import re
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from harness.model.board import BoardProfile
from harness.model.facts import Facts
from harness.model.requires import Expr, RequiresError, parse
from harness.model.requires import Path as ExprPath
from harness.model.yamlsource import SourceDoc, load_yaml, validate

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
# Default plans are looked up relative to the working directory, as board names are
# (harness/model/board.py BOARDS_DIR).
PLANS_DIR = Path("testplans")
REFERENCE = re.compile(r"^\$\{([^}]+)\}$")

# The names a `requires` expression or a `${...}` reference may start with, and their schema.
SCOPE_ROOTS: dict[str, type[BaseModel]] = {"board": BoardProfile, "facts": Facts}


def check_name(parts: tuple[str | int, ...]) -> str | None:
    """Return why a dotted name does not exist in the board profile or facts schema, or None."""
    root = parts[0]
    if root not in SCOPE_ROOTS:
        return f"unknown name {root!r} (names start with one of: {', '.join(SCOPE_ROOTS)})"
    current: Any = SCOPE_ROOTS[str(root)]
    walked = str(root)
    for part in parts[1:]:
        current = _unwrap_optional(current)
        if isinstance(part, int) or part == "*":
            if get_origin(current) is not list:
                return f"{walked!r} is not a list, so it cannot be indexed with [{part}]"
            current = get_args(current)[0]
            walked += f"[{part}]"
            continue
        if get_origin(current) is list:
            return f"{walked!r} is a list: use {walked}[*].{part} to look at its items"
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return f"{walked!r} has no field {part!r}"
        fields = {
            name: info
            for name, info in current.model_fields.items()
            if not (info.exclude and name in ("source", "sha256"))
        }
        if part not in fields:
            known = ", ".join(sorted(fields))
            return f"unknown name '{walked}.{part}' (fields of {walked}: {known})"
        current = fields[part].annotation
        walked += f".{part}"
    return None


def _unwrap_optional(annotation: Any) -> Any:
    args = get_args(annotation)
    if args and type(None) in args and get_origin(annotation) is not list:
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def parse_reference(text: str) -> tuple[str | int, ...]:
    """`${board.inventory.cpus}` -> ('board', 'inventory', 'cpus'); raise ValueError if unknown."""
    match = REFERENCE.match(text.strip())
    if not match:
        raise ValueError(
            f"expected a number or a reference like '${{board.inventory.cpus}}', got {text!r}"
        )
    try:
        expr = parse(match.group(1), check_name)
    except RequiresError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(expr.tree, ExprPath):
        raise ValueError(f"a reference must name one field, got {text!r}")
    return expr.tree.parts


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt `expect` must not silently turn a check off."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _compile_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


class Measure(Strict):
    """A number pulled out of a step's output and recorded with its unit."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    regex: str = Field(description="first group (or the group named 'value') is the number")
    stream: Literal["stdout", "stderr"] = "stdout"
    scale: float = Field(
        default=1.0, description="multiply the extracted number, e.g. 1/1024 for KiB -> MiB"
    )
    unit: str = Field(min_length=1)

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        return _compile_regex(value)


class Comparison(Measure):
    """A measured number compared against a constant or a profile/fact value, with tolerance."""

    op: Literal["==", "!=", "<", "<=", ">", ">="] = "=="
    value: float | str = Field(description="a number or '${board.…}' / '${facts.…}'")
    tolerance: float | str = Field(
        default=0, description="absolute, or a percentage of the expected value like '10%'"
    )

    @field_validator("value")
    @classmethod
    def _known_reference(cls, value: float | str) -> float | str:
        if isinstance(value, str):
            parse_reference(value)
        return value

    @field_validator("tolerance")
    @classmethod
    def _tolerance_form(cls, value: float | str) -> float | str:
        if isinstance(value, str) and not re.fullmatch(r"\d+(\.\d+)?%", value.strip()):
            raise ValueError(f"tolerance must be a number or a percentage like '5%', got {value!r}")
        if isinstance(value, (int, float)) and value < 0:
            raise ValueError("tolerance cannot be negative")
        return value


class Expect(Strict):
    """What a `run` step's result must look like; all regexes use re.search with MULTILINE."""

    exit_status: int | list[int] | None = Field(default=0, description="null accepts any status")
    stdout: list[str] = Field(default=[], description="regexes that must match")
    stdout_absent: list[str] = Field(default=[], description="regexes that must not match")
    stderr: list[str] = []
    stderr_absent: list[str] = []
    compare: list[Comparison] = []

    @field_validator("stdout", "stdout_absent", "stderr", "stderr_absent")
    @classmethod
    def _regexes(cls, values: list[str]) -> list[str]:
        return [_compile_regex(value) for value in values]


class BootSpec(Strict):
    """Options of `reboot` / `power-cycle`; the measured boot time is always recorded."""

    max_boot_time: float | None = Field(default=None, gt=0, description="seconds; slower is a fail")


class PutSpec(Strict):
    remote: str = Field(min_length=1)
    local: str | None = Field(default=None, description="file relative to the plan file")
    random_bytes: int | None = Field(default=None, gt=0, le=64 * 1024 * 1024)

    @model_validator(mode="after")
    def _one_source(self) -> PutSpec:
        if (self.local is None) == (self.random_bytes is None):
            raise ValueError("give exactly one of 'local' or 'random_bytes'")
        return self


class GetSpec(Strict):
    remote: str = Field(min_length=1)
    local: str | None = Field(default=None, description="name to keep it under in the run folder")
    same_as_put: bool = Field(
        default=False, description="fail unless identical to what this test put there"
    )


STEP_KINDS = ("run", "reboot", "power-cycle", "put", "get", "python")


class Step(Strict):
    """Exactly one action (`run`, `reboot`, `power-cycle`, `put`, `get`, `python`) plus options."""

    run: str | None = Field(default=None, min_length=1)
    reboot: BootSpec | None = None
    power_cycle: BootSpec | None = Field(default=None, alias="power-cycle")
    put: PutSpec | None = None
    get: GetSpec | None = None
    python: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    transport: Literal["console", "ssh"] | None = None
    expect: Expect | None = None
    measure: list[Measure] = []

    @model_validator(mode="before")
    @classmethod
    def _empty_boot_spec(cls, data: Any) -> Any:
        # `- reboot:` with nothing after it reads as None; treat it as "reboot with defaults".
        if isinstance(data, dict):
            data = dict(data)
            for key in ("reboot", "power-cycle", "power_cycle"):
                if key in data and (data[key] is None or data[key] is True):
                    data[key] = {}
        return data

    @model_validator(mode="after")
    def _exactly_one_action(self) -> Step:
        given = [kind for kind in STEP_KINDS if self.action_value(kind) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a step needs exactly one of: {', '.join(STEP_KINDS)}"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if (self.expect is not None or self.measure) and given[0] != "run":
            raise ValueError("'expect' and 'measure' apply to 'run' steps only")
        return self

    def action_value(self, kind: str) -> Any:
        return getattr(self, kind.replace("-", "_"))

    @property
    def kind(self) -> str:
        return next(kind for kind in STEP_KINDS if self.action_value(kind) is not None)


class TestSpec(Strict):
    """One test of the plan; `blocker`, `timeout`, `transport` default from the plan's `defaults`."""

    __test__ = False  # not a pytest test class

    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    category: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str | None = None
    blocker: bool | None = None
    timeout: float | None = Field(default=None, gt=0, le=24 * 3600)
    requires: str | None = None
    transport: Literal["console", "ssh"] | None = None
    steps: list[Step] = Field(min_length=1)

    _requires_expr: Expr | None = PrivateAttr(default=None)
    _source: Path | None = PrivateAttr(default=None)
    _line: int | None = PrivateAttr(default=None)

    @field_validator("requires")
    @classmethod
    def _valid_requires(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                parse(text, check_name)
            except RequiresError as exc:
                raise ValueError(f"in requires expression: {exc}") from None
        return text

    @property
    def requires_expr(self) -> Expr | None:
        if self.requires is not None and self._requires_expr is None:
            self._requires_expr = parse(self.requires, check_name)
        return self._requires_expr

    @property
    def source(self) -> str:
        return f"{self._source}:{self._line}" if self._source else "?"

    @property
    def source_file(self) -> Path | None:
        return self._source


class Defaults(Strict):
    blocker: bool = True
    timeout: float = Field(default=60.0, gt=0, le=24 * 3600)
    transport: Literal["console", "ssh"] = "console"


class Waiver(Strict):
    """A known failure accepted until `expires` (inclusive); after that it is a plain fail again."""

    test: str = Field(pattern=ID_PATTERN)
    reason: str = Field(min_length=3)
    expires: dt.date
    ticket: str | None = None

    def active_on(self, day: dt.date) -> bool:
        return day <= self.expires


class PlanFile(Strict):
    """One YAML file of kind `plan`, before includes are resolved."""

    schema_version: Literal[1] = Field(default=1, alias="schema")
    kind: Literal["plan"]
    id: str = Field(pattern=ID_PATTERN)
    version: str = Field(min_length=1)
    title: str = Field(min_length=1)
    description: str | None = None
    includes: list[str] = []
    defaults: Defaults = Defaults()
    tests: list[TestSpec] = []
    waivers: list[Waiver] = []

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(
                f'write the version as a quoted string, e.g. "{value}", so 1.10 stays 1.10'
            )
        return value


class Plan(BaseModel):
    """A plan with its includes resolved: the flat, ordered list of tests a run executes."""

    id: str
    version: str
    title: str
    file: Path
    files: list[Path]
    sha256: str = Field(
        description="sha256 over every file of the plan, includes first, in load order"
    )
    tests: list[TestSpec]
    waivers: list[Waiver]

    def test(self, test_id: str) -> TestSpec:
        """The test `test_id`; a KeyError naming the plan and its test ids if there is none."""
        found = next((test for test in self.tests if test.id == test_id), None)
        if found is None:
            known = ", ".join(test.id for test in self.tests) or "none"
            raise KeyError(f"plan {self.id!r} has no test {test_id!r} (its tests: {known})")
        return found

    def waiver_for(self, test_id: str) -> Waiver | None:
        return next((waiver for waiver in self.waivers if waiver.test == test_id), None)


def load_plan(file: str | Path) -> Plan:
    """Load a plan and everything it includes; every problem is a UserError with file, line, field."""
    file = Path(file)
    loaded: list[tuple[Path, bytes]] = []
    tests: list[TestSpec] = []
    waivers: list[tuple[Waiver, SourceDoc, int]] = []
    seen_tests: dict[str, TestSpec] = {}
    top = _load_one(file, [], loaded, tests, waivers, seen_tests)
    for waiver, doc, index in waivers:
        if waiver.test not in seen_tests:
            raise doc.error(
                f"waiver for unknown test id {waiver.test!r}", ("waivers", index, "test")
            )
    digest = hashlib.sha256()
    for path, data in loaded:
        digest.update(path.name.encode() + b"\0" + data + b"\0")
    return Plan(
        id=top.id,
        version=top.version,
        title=top.title,
        file=file.resolve(),
        files=[path for path, _ in loaded],
        sha256=digest.hexdigest(),
        tests=tests,
        waivers=[waiver for waiver, _, _ in waivers],
    )


def _load_one(
    file: Path,
    stack: list[Path],
    loaded: list[tuple[Path, bytes]],
    tests: list[TestSpec],
    waivers: list[tuple[Waiver, SourceDoc, int]],
    seen_tests: dict[str, TestSpec],
) -> PlanFile:
    doc = load_yaml(file)
    if isinstance(doc.data, dict) and "kind" in doc.data and doc.data["kind"] != "plan":
        raise doc.error(f"expected kind 'plan', got {doc.data['kind']!r}", ("kind",))
    plan = validate(doc, PlanFile)
    resolved = file.resolve()
    for index, include in enumerate(plan.includes):
        target = (resolved.parent / include).resolve()
        if target in (*stack, resolved):
            chain = " -> ".join(p.name for p in (*stack, resolved, target))
            raise doc.error(f"include cycle: {chain}", ("includes", index))
        if not target.is_file():
            raise doc.error(
                f"included plan {include!r} not found (looked for {target})", ("includes", index)
            )
        _load_one(target, [*stack, resolved], loaded, tests, waivers, seen_tests)
    loaded.append((resolved, file.read_bytes()))
    for index, test in enumerate(plan.tests):
        where = ("tests", index)
        if test.id in seen_tests:
            raise doc.error(
                f"duplicate test id {test.id!r} (first defined at {seen_tests[test.id].source})",
                (*where, "id"),
            )
        _apply_defaults(test, plan.defaults)
        _check_steps(doc, test, where, resolved.parent)
        test._source = resolved
        test._line = doc.line_of(where)
        seen_tests[test.id] = test
        tests.append(test)
    for index, waiver in enumerate(plan.waivers):
        waivers.append((waiver, doc, index))
    return plan


def _apply_defaults(test: TestSpec, defaults: Defaults) -> None:
    if test.blocker is None:
        test.blocker = defaults.blocker
    if test.timeout is None:
        test.timeout = defaults.timeout
    if test.transport is None:
        test.transport = defaults.transport


def _check_steps(doc: SourceDoc, test: TestSpec, where: tuple[str | int, ...], base: Path) -> None:
    for index, step in enumerate(test.steps):
        at = (*where, "steps", index)
        if (
            step.put is not None
            and step.put.local is not None
            and not (base / step.put.local).is_file()
        ):
            raise doc.error(
                f"file to put not found: {base / step.put.local}", (*at, "put", "local")
            )
        if (
            step.get is not None
            and step.get.local is not None
            and (Path(step.get.local).is_absolute() or ".." in Path(step.get.local).parts)
        ):
            raise doc.error(
                "'local' must be a plain name inside the run folder", (*at, "get", "local")
            )
        if step.python is not None:
            problem = python_step_problem(step.python, base)
            if problem:
                raise doc.error(problem, (*at, "python"))


def import_python_step(target: str, base: Path | None = None) -> Any:
    """Import `module:function`, looking next to the plan file first so plans can carry helpers."""
    module_name, attr = target.split(":")
    added = base is not None and str(base) not in sys.path
    if added:
        sys.path.insert(0, str(base))
    try:
        module = importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(str(base))
    return getattr(module, attr)


def python_step_problem(target: str, base: Path | None) -> str | None:
    try:
        function = import_python_step(target, base)
    except ModuleNotFoundError as exc:
        return f"cannot import python step {target!r}: no module named {exc.name!r}"
    except AttributeError:
        return f"python step {target!r}: the module has no such function"
    except Exception as exc:  # the user's module itself is broken; say how, without a traceback
        return f"cannot import python step {target!r}: {type(exc).__name__}: {exc}"
    if not callable(function):
        return f"python step {target!r} is not a function"
    return None
