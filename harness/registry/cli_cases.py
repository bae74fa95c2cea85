"""`harness registry cases`: open customer cases, attach reproduction runs, record verification."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from harness.errors import Location, UserError
from harness.registry.cli_common import backend, emit, json_option
from harness.registry.rules import CASE_VERDICTS, SEVERITIES


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def cases(ctx: click.Context, as_json: bool) -> None:
    """Customer cases (lists them; see the sub-commands to open, attach runs and verify)."""
    if ctx.invoked_subcommand is None:
        emit(backend(ctx).list_cases(), as_json, _CASE_COLUMNS, "Customer cases")


_CASE_COLUMNS = [
    ("case", "case_id"),
    ("customer", "customer_ref"),
    ("severity", "severity"),
    ("sub-system", "subsystem"),
    ("board", "board.model"),
    ("rev", "board.revision"),
    ("opened", "opened_at"),
    ("respond by", "response_target_at"),
    ("business hours left", "response.business_hours_left"),
    ("eligibility at intake", "eligibility.status"),
    ("verified", "verification.verdict"),
]


@cases.command("open")
@click.argument("case_file", required=False, type=click.Path(path_type=Path))
@click.option("--id", "case_id")
@click.option("--customer-ref")
@click.option("--severity", type=click.Choice(SEVERITIES))
@click.option("--subsystem")
@click.option("--summary", default="")
@click.option("--vendor")
@click.option("--model")
@click.option("--revision")
@click.option("--os-release", default="", help="the customer's OS release (eligibility)")
@click.option("--kernel", "kernel_release", default="", help="the customer's uname -r")
@click.option(
    "--opened-at",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"]),
    help="default: now",
)
@json_option
@click.pass_context
def cases_open(
    ctx: click.Context,
    case_file: Path | None,
    as_json: bool,
    opened_at: datetime | None,
    **fields: Any,
) -> None:
    """Open a customer case from its case file (or from the options).

    Checks the device's eligibility at intake and prints the initial response target
    (12 business hours) and the business time left.
    """
    if case_file is not None:
        fields = _case_file_fields(case_file)
    else:
        for name in (
            "case_id",
            "customer_ref",
            "severity",
            "subsystem",
            "vendor",
            "model",
            "revision",
        ):
            if not fields.get(name):
                option = "--id" if name == "case_id" else "--" + name.replace("_", "-")
                raise UserError(
                    f"give a case file, or {option} and the other case fields",
                    Location(field=option),
                )
    data = backend(ctx).open_case({**fields, "opened_at": opened_at})
    emit(data, as_json, _CASE_COLUMNS)


def _case_file_fields(case_file: Path) -> dict[str, Any]:
    """The registry's fields of a case, from a `kind: case` file (loaded as untrusted input)."""
    from harness.model.case import load_case

    spec = load_case(case_file).spec
    seen = spec.seen_on
    return {
        "case_id": spec.case.id,
        "customer_ref": spec.case.customer_ref,
        "severity": SEVERITIES[spec.case.severity - 1],
        "subsystem": spec.case.subsystem,
        "summary": spec.description.summary,
        "vendor": seen.vendor,
        "model": seen.model,
        "revision": seen.revision,
        "os_release": seen.os_release or "",
        "kernel_release": seen.kernel or "",
        "kernel_version": seen.kernel_version or "",
    }


@cases.command("show")
@click.argument("case_id")
@json_option
@click.pass_context
def cases_show(ctx: click.Context, case_id: str, as_json: bool) -> None:
    """One case with its response target, reproduction runs and verification."""
    data = backend(ctx).get_case(case_id)
    emit(data, as_json, [*_CASE_COLUMNS, ("runs", "reproduction_runs")])


@cases.command("attach")
@click.argument("case_id")
@click.argument("run_id")
@json_option
@click.pass_context
def cases_attach(ctx: click.Context, case_id: str, run_id: str, as_json: bool) -> None:
    """Attach a stored reproduction run to a case."""
    emit(backend(ctx).attach_run(case_id, run_id), as_json, _CASE_COLUMNS)


@cases.command("verify")
@click.argument("case_id")
@click.option("--verdict", required=True, type=click.Choice(CASE_VERDICTS))
@click.option("--run", "run_id", required=True, help="the run that verified the resolution")
@json_option
@click.pass_context
def cases_verify(
    ctx: click.Context, case_id: str, verdict: str, run_id: str, as_json: bool
) -> None:
    """Record the customer's verification of the resolution."""
    emit(backend(ctx).verify_case(case_id, verdict, run_id), as_json, _CASE_COLUMNS)
