"""A loaded plan made concrete for one board: parameters resolved, template tests expanded.

Template tests (`for_each: board.inventory.block_devices`) become one test per item of that
list in the board profile, `storage-rw[vda]`, `storage-rw[vdb]`: each instance has its own id,
outcome and evidence, so a failure on one disk is never folded into a test about all disks,
and `-k 'storage-rw[vdb]'` selects one. A template may also run over one field of a list's items
(`for_each: board.inventory.usb_devices[*].block_device`: one instance per USB device that
names its disk). Templates expand over the *profile*, not over what
the unit shows: a disk the profile promises and the unit lacks is then a failing instance
named after that disk, which is what certification must say.

Parameters (`parameters:` in the plan) have the plan's defaults; the board profile's
`parameters:` (the lab's values) override them, and `--param name=value` overrides both.
`${param.NAME}` and, in a template, `${item}` / `${item.FIELD}` are replaced in titles,
descriptions, `run` commands and `manual` texts; python steps read `ctx.params` and `ctx.item`.
"""

from __future__ import annotations

import re
from typing import Any

from harness.errors import Location, UserError
from harness.model.board import BoardProfile
from harness.model.plan import Plan, TestSpec, parse_reference
from harness.model.requires import resolve_path

PLACEHOLDER = re.compile(r"\$\{(param|item)(?:\.([a-z_][a-z0-9_]*))?\}")


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`--param NAME=VALUE` options as a dict; a malformed one is a UserError naming it."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9_]*", name.strip()):
            raise UserError(
                f"expected NAME=VALUE with a lower-case name, got {pair!r}",
                Location(field="--param"),
            )
        overrides[name.strip()] = value.strip()
    return overrides


def resolve_parameters(
    plan: Plan, profile: BoardProfile, overrides: dict[str, str]
) -> dict[str, int | float | str]:
    """Plan defaults, then the lab's (profile) values, then the command line; typed like the default."""
    values: dict[str, int | float | str] = dict(plan.parameters)
    sources = [(str(profile.source or profile.name), "parameters", profile.parameters)]
    sources.append(("command line", "--param", dict(overrides)))
    for where, field, given in sources:
        for name, value in given.items():
            if name not in plan.parameters:
                if field == "parameters":
                    continue  # a lab file may carry values for other plans
                known = ", ".join(sorted(plan.parameters)) or "none"
                raise UserError(
                    f"plan {plan.id!r} has no parameter {name!r} (its parameters: {known})",
                    Location(where, None, field),
                )
            values[name] = _typed(plan.parameters[name], value, name, where, field)
    return values


def check_overrides(plan: Plan, pairs: list[str] | tuple[str, ...]) -> None:
    """Refuse `--param` values this plan cannot take, before any board is touched.

    A fan-out checks here once, instead of letting every board's run fail on the same typo.
    """
    overrides = parse_overrides(pairs)
    for name, value in overrides.items():
        if name not in plan.parameters:
            known = ", ".join(sorted(plan.parameters)) or "none"
            raise UserError(
                f"plan {plan.id!r} has no parameter {name!r} (its parameters: {known})",
                Location("command line", None, "--param"),
            )
        _typed(plan.parameters[name], value, name, "command line", "--param")


def _typed(
    default: int | float | str, value: Any, name: str, where: str, field: str
) -> int | float | str:
    if isinstance(default, str):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(
            f"parameter {name!r} must be a number (default {default!r}), got {value!r}",
            Location(where, None, field),
        ) from None
    if number < 0:
        raise UserError(f"parameter {name!r} cannot be negative", Location(where, None, field))
    return int(number) if number == int(number) else number


def expand_plan(plan: Plan, profile: BoardProfile, overrides: dict[str, str] | None = None) -> Plan:
    """The plan as it runs on this board: every template instance, every placeholder filled."""
    params = resolve_parameters(plan, profile, overrides or {})
    scope = {"board": profile.model_dump(mode="json", by_alias=False)}
    tests: list[TestSpec] = []
    for test in plan.tests:
        if test.for_each is None:
            tests.append(_instance(test, test.id, None, params))
            continue
        items = resolve_path(parse_reference("${" + test.for_each + "}"), scope)
        # A projection (`usb_devices[*].block_device`) gives None for items without the field:
        # those are not instances (a USB hub shows as no disk).
        for item in [i for i in items if i is not None] if isinstance(items, list) else []:
            key = item.get("name") if isinstance(item, dict) else item
            tests.append(_instance(test, f"{test.id}[{key}]", item, params))
    return plan.model_copy(update={"tests": tests, "parameters": params})


def _instance(
    test: TestSpec, test_id: str, item: Any, params: dict[str, int | float | str]
) -> TestSpec:
    def fill(text: str | None) -> str | None:
        if text is None:
            return None
        return PLACEHOLDER.sub(lambda match: _value(match, test, item, params), text)

    copy = test.model_copy(deep=True)
    copy.id = test_id
    copy.title = fill(test.title) or test.title
    copy.description = fill(test.description)
    for step in copy.steps:
        if step.run is not None:
            step.run = fill(step.run)
        if step.manual is not None:  # "look at the activity LED of ${item}"
            step.manual.instructions = fill(step.manual.instructions) or ""
            step.manual.verify = fill(step.manual.verify) or ""
    copy._item = item
    copy._params = params
    copy._source, copy._line = test._source, test._line
    return copy


def _value(
    match: re.Match[str], test: TestSpec, item: Any, params: dict[str, int | float | str]
) -> str:
    kind, name = match.group(1), match.group(2)
    where = Location(str(test.source_file or "?"), test._line, f"tests[{test.id}]")
    if kind == "param":
        if name is None or name not in params:
            known = ", ".join(sorted(params)) or "none"
            raise UserError(f"unknown parameter {match.group(0)} (known: {known})", where)
        return str(params[name])
    if test.for_each is None:
        raise UserError(f"{match.group(0)} is only meaningful in a test with for_each", where)
    if name is None:
        return str(item.get("name") if isinstance(item, dict) else item)
    if not isinstance(item, dict) or name not in item:
        raise UserError(f"the items of {test.for_each} have no field {name!r}", where)
    return str(item[name])
