"""`harness registry ...`: serve, query and administer the registry.

Commands work against the local SQLite registry by default, a database given
with --db (SQLite path or PostgreSQL URL), or an HTTP registry given with
--url / HARNESS_REGISTRY_URL (token from HARNESS_REGISTRY_TOKEN). Output is a
human table unless --json is given; bad input exits 2 with one paragraph.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from harness.errors import Location, UserError
from harness.registry.config import (
    ENV_REGISTRY_TOKEN,
    ENV_REGISTRY_URL,
    default_db_url,
)
from harness.registry.eligibility import Device
from harness.registry.interface import Registry, open_registry
from harness.registry.rules import CASE_VERDICTS, EXPIRY_DAYS, MAX_ROW_ID, ROLES, SEVERITIES


def _backend(ctx: click.Context) -> Registry:
    """The registry the command talks to (harness/registry/interface.py), closed with the command."""
    options = ctx.find_object(dict) or {}
    registry = open_registry(options.get("db"), options.get("url"), options.get("token"))
    ctx.call_on_close(registry.close)
    return registry


def _emit(
    data: Any, as_json: bool, columns: list[tuple[str, str]] | None = None, title: str = ""
) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
        return
    rows = data if isinstance(data, list) else [data]
    table = Table(title=title or None, show_lines=False)
    columns = columns or [(k, k) for k in (rows[0].keys() if rows else [])]
    for header, _ in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*[_cell(row, path) for _, path in columns])
    Console(width=None if sys.stdout.isatty() else 200, highlight=False).print(
        table
    ) if rows else click.echo("(none)")


def _cell(row: dict[str, Any], path: str) -> str:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="JSON for machines instead of a table"
)


@click.group()
@click.option("--db", help="database: SQLite path or SQLAlchemy URL (default: local registry file)")
@click.option("--url", help=f"HTTP registry (default: ${ENV_REGISTRY_URL})")
@click.option("--token", help=f"bearer token for --url (default: ${ENV_REGISTRY_TOKEN})")
@click.pass_context
def registry(ctx: click.Context, db: str | None, url: str | None, token: str | None) -> None:
    """The eligibility registry: certificates, vendor kernels, cases, eligibility answers."""
    if db and "://" not in db:
        db = f"sqlite:///{Path(db).absolute()}"
    ctx.obj = {"db": db, "url": url, "token": token}


@registry.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--private-reads", is_flag=True, help="reads need a reader token too")
@click.option("--timezone", help="support team's IANA time zone for response targets (default UTC)")
@click.option(
    "--holidays",
    type=click.Path(path_type=Path),
    help="YAML with 'timezone:' and 'holidays:' (ISO dates)",
)
@click.option("--validity-days", default=365, show_default=True, type=click.IntRange(1, 3650))
@click.option(
    "--certfile",
    type=click.Path(path_type=Path),
    help="serve HTTPS: PEM certificate (chain) of this server; needs --keyfile",
)
@click.option("--keyfile", type=click.Path(path_type=Path), help="PEM private key for --certfile")
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    private_reads: bool,
    timezone: str | None,
    holidays: Path | None,
    validity_days: int,
    certfile: Path | None,
    keyfile: Path | None,
) -> None:
    """Run the HTTP registry (OpenAPI at /openapi.json, web page at /); HTTPS with --certfile."""
    import uvicorn

    from harness.registry.api import create_app
    from harness.registry.business_hours import calendar_from_options
    from harness.registry.store import Settings, Store

    tls = _check_tls(certfile, keyfile)
    settings = Settings(
        validity_days=validity_days, calendar=calendar_from_options(timezone, holidays)
    )
    store = Store(ctx.obj["db"] or default_db_url(), settings)
    uvicorn.run(
        create_app(store, public_reads=not private_reads),
        host=host,
        port=port,
        log_level="warning",
        **tls,
    )


def _check_tls(certfile: Path | None, keyfile: Path | None) -> dict[str, str]:
    """uvicorn's TLS options, after loading the pair once so a bad file is exit 2, not a traceback."""
    if certfile is None and keyfile is None:
        return {}
    if certfile is None or keyfile is None:
        missing = "--keyfile" if keyfile is None else "--certfile"
        raise UserError(f"HTTPS needs both --certfile and --keyfile; {missing} is missing",
                        Location(field=missing))  # fmt: skip
    import ssl

    for path, option in ((certfile, "--certfile"), (keyfile, "--keyfile")):
        if not path.is_file():
            raise UserError("no such file", Location(str(path), None, option))
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        raise UserError(
            f"not a PEM certificate and matching private key ({exc.reason or exc})",
            Location(f"{certfile}, {keyfile}", None, "--certfile/--keyfile"),
        ) from None
    except OSError as exc:
        raise UserError(f"cannot read ({exc.strerror})", Location(str(certfile))) from None
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}


@registry.command()
@click.option(
    "--board",
    "profile",
    help="board profile (a YAML path, a name in boards/, or `sim`) for vendor/model/revision",
)
@click.option("--vendor")
@click.option("--model")
@click.option("--revision")
@click.option("--os-release", help='e.g. "Debian GNU/Linux 12 (bookworm)"')
@click.option("--kernel", "kernel_release", help="uname -r of the device")
@click.option("--kernel-version", default="", help="uname -v, to match a vendor build exactly")
@click.option(
    "--build-id", default="", help="GNU build id of the running kernel (/sys/kernel/notes)"
)
@click.option(
    "--run",
    "run_source",
    type=click.Path(path_type=Path, exists=True),
    help="a run folder or evidence bundle to read the device (board, OS, kernel, build id) from",
)
@json_option
@click.pass_context
def eligible(
    ctx: click.Context,
    profile: str | None,
    vendor: str | None,
    model: str | None,
    revision: str | None,
    os_release: str | None,
    kernel_release: str | None,
    kernel_version: str,
    build_id: str,
    run_source: Path | None,
    as_json: bool,
) -> None:
    """Is a device eligible for support, and on what evidence?

    Vendor-kernel eligibility needs the device's running build id: give --build-id, or --run
    with a run folder or bundle that recorded it (`harness eligible` reads it from a live unit).
    """
    given: dict[str, str] = {}
    if run_source is not None:
        from harness.registry.devicefacts import device_from_run

        given = device_from_run(run_source)
    if profile is not None:
        from harness.model.board import find_board

        try:
            identity = find_board(profile).identity
        except UserError:
            if profile != "sim":
                raise
            from harness.vlab.boardhost import resolve_board  # the built-in simulated board

            identity = resolve_board(profile).identity
        given.update(vendor=identity.vendor, model=identity.model, revision=identity.revision)
    explicit = {
        "vendor": vendor,
        "model": model,
        "revision": revision,
        "os_release": os_release,
        "kernel_release": kernel_release,
        "kernel_version": kernel_version,
        "kernel_build_id": build_id,
    }
    given.update({k: v for k, v in explicit.items() if v})
    options = {"os_release": "--os-release", "kernel_release": "--kernel"}
    for name in ("vendor", "model", "revision", "os_release", "kernel_release"):
        if not given.get(name):
            option = options.get(name, f"--{name}")
            raise UserError(
                f"give {option} (or --board with a profile, or --run with a run folder or bundle)",
                Location(field=option),
            )
    device = Device(
        given["vendor"],
        given["model"],
        given["revision"],
        given["os_release"],
        given["kernel_release"],
        given.get("kernel_version", ""),
        given.get("kernel_build_id", ""),
    )
    print_answer(_backend(ctx).eligibility(device), as_json)


def print_answer(answer: dict[str, Any], as_json: bool) -> None:
    """An eligibility answer as JSON, or as a status line with its evidence."""
    if as_json:
        _emit(answer, True)
        return
    click.echo(f"{answer['status']}: {answer['summary']}")
    device = answer.get("device", {})
    if device.get("kernel_build_id"):
        click.echo(
            f"  device runs kernel {device['kernel_release']} build {device['kernel_build_id']}"
        )
    for item in answer["evidence"]:
        click.echo(
            f"  rests on {_describe(item)}" + (f" ({item['note']})" if item.get("note") else "")
        )
    for item in answer["not_counted"]:
        click.echo(f"  did not count: {_describe(item)}: {item['why']}")


def _describe(item: dict[str, Any]) -> str:
    if item["kind"] == "certificate":
        board = item["board"]
        return f"certificate #{item['id']} (run {item['run_id']}, {board['vendor']} {board['model']} rev {board['revision']}, {item['os_release']}, kernel {item['kernel_release']})"
    verified = "" if item.get("build_id_verified") else ", unverified"
    return f"vendor kernel #{item['id']} ({item['kernel_release']}, build {item['build_id']}{verified})"


@registry.command()
@json_option
@click.pass_context
def boards(ctx: click.Context, as_json: bool) -> None:
    """Board models with their revisions and current certification status."""
    data = _backend(ctx).list_boards()
    if as_json:
        _emit(data, True)
        return
    rows = [
        {
            "vendor": b["vendor"],
            "model": b["model"],
            "soc": b["soc"],
            "revision": r["revision"],
            "certified": r["certified_os_releases"] or "not certified",
        }
        for b in data
        for r in (b["revisions"] or [{"revision": "", "certified_os_releases": []}])
    ]
    _emit(rows, False, title="Board models")


@registry.command()
@click.option("--vendor")
@click.option("--model")
@click.option("--revision")
@click.option("--os-release")
@json_option
@click.pass_context
def certs(
    ctx: click.Context,
    vendor: str | None,
    model: str | None,
    revision: str | None,
    os_release: str | None,
    as_json: bool,
) -> None:
    """Certificates (valid, expired and revoked), optionally filtered."""
    data = _backend(ctx).list_certificates(
        vendor=vendor, model=model, revision=revision, os_release=os_release
    )
    _emit(
        data,
        as_json,
        [
            ("id", "id"),
            ("vendor", "board.vendor"),
            ("model", "board.model"),
            ("rev", "board.revision"),
            ("OS release", "os_release"),
            ("kernel", "kernel_release"),
            ("plan", "plan.id"),
            ("ver", "plan.version"),
            ("run", "run_id"),
            ("lab", "lab"),
            ("expires", "expires_at"),
            ("state", "state"),
            ("revoked because", "revoked_reason"),
        ],
        "Certificates",
    )


@registry.command()
@click.argument("cert_id", type=int)
@click.option(
    "--reason", required=True, help="why; shown in every eligibility answer that skips it"
)
@json_option
@click.pass_context
def revoke(ctx: click.Context, cert_id: int, reason: str, as_json: bool) -> None:
    """Revoke a certificate (admin)."""
    cert = _backend(ctx).revoke_certificate(cert_id, reason)
    _emit(
        cert,
        as_json,
        [("id", "id"), ("run", "run_id"), ("revoked", "revoked_at"), ("reason", "revoked_reason")],
    )


@registry.group(invoke_without_command=True)
@json_option
@click.pass_context
def kernels(ctx: click.Context, as_json: bool) -> None:
    """Vendor-built kernels (lists them; `kernels add` registers one)."""
    if ctx.invoked_subcommand is None:
        data = _backend(ctx).list_kernels()
        for k in data:
            k["boards"] = [
                f"{b['vendor']} {b['model']}" + (f" rev {b['revision']}" if b["revision"] else "")
                for b in k["boards"]
            ]
        _emit(
            data,
            as_json,
            [
                ("id", "id"),
                ("release", "kernel_release"),
                ("version", "kernel_version"),
                ("build", "build_id"),
                ("verified", "build_id_verified"),
                ("boards", "boards"),
            ],
            "Vendor kernels",
        )


def _board_spec(spec: str) -> dict[str, str]:
    """VENDOR/MODEL or VENDOR/MODEL@REVISION."""
    head, _, revision = spec.partition("@")
    vendor, sep, model = head.partition("/")
    if not sep or not vendor or not model:
        raise UserError(
            f"board {spec!r} must be VENDOR/MODEL or VENDOR/MODEL@REVISION",
            Location(field="--board"),
        )
    return {"vendor": vendor, "model": model, "revision": revision}


@kernels.command("add")
@click.argument("artifact", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--release",
    default="",
    help="uname -r of the vendor build (read from ARTIFACT; if given too, it must agree)",
)
@click.option(
    "--version", "kversion", default="", help="uname -v, if devices must match the build exactly"
)
@click.option(
    "--build-id",
    default="",
    help="GNU build id typed in instead of an ARTIFACT (recorded as unverified)",
)
@click.option(
    "--board",
    "board_specs",
    multiple=True,
    required=True,
    help="VENDOR/MODEL[@REVISION], repeatable",
)
@json_option
@click.pass_context
def kernels_add(
    ctx: click.Context,
    artifact: Path | None,
    release: str,
    kversion: str,
    build_id: str,
    board_specs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register a vendor-built kernel for some board models (admin).

    ARTIFACT is the vendor's build: a Debian kernel package (.deb), a vmlinuz/bzImage, an arm64
    Image or Image.gz, or a vmlinux; the build id is extracted from it. Without ARTIFACT give
    --release and --build-id: the record is then marked unverified.
    """
    boards = [_board_spec(s) for s in board_specs]
    if artifact is not None:
        if build_id:
            raise UserError(
                "give a kernel ARTIFACT or --build-id, not both: the build id is read from the artifact",
                Location(field="--build-id"),
            )
        if not artifact.is_file():
            raise UserError("kernel artifact not found", Location(str(artifact), None, "ARTIFACT"))
        data = _backend(ctx).register_kernel_artifact(
            artifact,
            boards,
            kernel_release=release,
            kernel_version=kversion,
        )
    else:
        for name, value in (("--release", release), ("--build-id", build_id)):
            if not value:
                raise UserError(
                    f"give a kernel ARTIFACT, or both --release and --build-id ({name} is missing)",
                    Location(field=name),
                )
        data = _backend(ctx).register_kernel(release, kversion, build_id, boards)
    _emit(
        data,
        as_json,
        [
            ("id", "id"),
            ("release", "kernel_release"),
            ("build", "build_id"),
            ("verified", "build_id_verified"),
            ("from", "artifact.format"),
            ("seconds", "extraction_seconds"),
        ],
    )


@registry.group(invoke_without_command=True)
@json_option
@click.pass_context
def cases(ctx: click.Context, as_json: bool) -> None:
    """Customer cases (lists them; see the sub-commands to open, attach runs and verify)."""
    if ctx.invoked_subcommand is None:
        _emit(_backend(ctx).list_cases(), as_json, _CASE_COLUMNS, "Customer cases")


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
    data = _backend(ctx).open_case({**fields, "opened_at": opened_at})
    _emit(data, as_json, _CASE_COLUMNS)


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
    data = _backend(ctx).get_case(case_id)
    _emit(data, as_json, [*_CASE_COLUMNS, ("runs", "reproduction_runs")])


@cases.command("attach")
@click.argument("case_id")
@click.argument("run_id")
@json_option
@click.pass_context
def cases_attach(ctx: click.Context, case_id: str, run_id: str, as_json: bool) -> None:
    """Attach a stored reproduction run to a case."""
    _emit(_backend(ctx).attach_run(case_id, run_id), as_json, _CASE_COLUMNS)


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
    _emit(_backend(ctx).verify_case(case_id, verdict, run_id), as_json, _CASE_COLUMNS)


@registry.command()
@json_option
@click.pass_context
def runs(ctx: click.Context, as_json: bool) -> None:
    """Every stored run: run id, lab, verdict, bundle hash, when it was received."""
    _emit(
        _backend(ctx).list_runs(),
        as_json,
        [("run", "run_id"), ("lab", "lab"), ("verdict", "verdict"), ("received", "received_at"),
         ("bundle sha256", "bundle_sha256")],
        "Runs",
    )  # fmt: skip


@registry.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@json_option
@click.pass_context
def audit(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The newest entries of the audit log (admin): who changed what, and when."""
    _emit(
        _backend(ctx).audit_entries(limit),
        as_json,
        [("at", "at"), ("actor", "actor"), ("action", "action"), ("entity", "entity"),
         ("key", "entity_key"), ("detail", "detail")],
        "Audit log",
    )  # fmt: skip


@registry.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@json_option
def submit(run_dir: Path, as_json: bool) -> None:
    """Bundle, sign and deliver one run folder (what `harness run` does at the end).

    Exit 0 when delivered, 3 when it stays queued (the reason and what to do are printed).
    """
    from harness.registry.client import submit_run
    from harness.registry.delivery import queued_problem_of_folder
    from harness.report.bundle import read_run_json

    run_id = read_run_json(run_dir)["run_id"]
    status = submit_run(run_dir)
    problem = queued_problem_of_folder(run_dir) if status == "queued" else None
    if as_json:
        data: dict[str, Any] = {"run_id": run_id, "status": status}
        if problem is not None:
            data.update(reason=problem.reason, what_to_do=problem.what_to_do)
        _emit(data, True)
    else:
        click.echo(f"{status}: {run_dir}")
        if problem is not None:
            click.echo(f"  why: {problem.reason}", err=True)
            click.echo(f"  what to do: {problem.what_to_do}", err=True)
    sys.exit(3 if status == "queued" else 0)


@registry.command()
@click.option(
    "--results",
    "results",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="also submit finished runs here that were never submitted (harness killed before it could)",
)
@json_option
def sync(results: tuple[Path, ...], as_json: bool) -> None:
    """Deliver every queued run in the outbox, exactly once. Exit 3 if some remain queued."""
    from harness.registry.client import sync as do_sync
    from harness.registry.delivery import Problem

    report = do_sync(list(results))
    problems = [(run_id, Problem.parse(error)) for run_id, error in report.queued]
    if as_json:
        _emit(
            {
                "delivered": report.delivered,
                "queued": [
                    {"run_id": r, "reason": p.reason, "what_to_do": p.what_to_do}
                    for r, p in problems
                ],
            },
            True,
        )
    else:
        for run_id in report.delivered:
            click.echo(f"delivered: {run_id}")
        for run_id, problem in problems:
            click.echo(f"still queued: {run_id}: {problem.reason}", err=True)
            click.echo(f"  what to do: {problem.what_to_do}", err=True)
        click.echo(f"{len(report.delivered)} delivered, {len(report.queued)} still queued")
    sys.exit(3 if report.queued else 0)


@registry.group(invoke_without_command=True)
@json_option
@click.pass_context
def labs(ctx: click.Context, as_json: bool) -> None:
    """Labs allowed to submit (lists them; `labs add` registers one, `labs self` shows this machine's)."""
    if ctx.invoked_subcommand is None:
        _emit(
            _backend(ctx).list_labs(),
            as_json,
            [
                ("name", "name"),
                ("key fingerprint", "fingerprint"),
                ("public key", "public_key"),
                ("since", "created_at"),
            ],
            "Labs",
        )


@labs.command("add")
@click.argument("name", required=False)
@click.option(
    "--from-file",
    "enrolment_file",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="the lab's `harness registry labs self --json` output ('-': standard input)",
)
@json_option
@click.pass_context
def labs_add(ctx: click.Context, name: str | None, enrolment_file: Path, as_json: bool) -> None:
    """Register a lab from its signed enrolment (admin); prints the lab's submit token once.

    The enrolment carries the name the lab signs its bundles with, so the registry cannot
    know the lab under another name. NAME, if given, must be that name.
    """
    from harness.registry.enrolment import read_enrolment

    enrolment = read_enrolment(enrolment_file)
    if name is not None and name != enrolment.name:
        raise UserError(
            f"the lab signs its bundles as {enrolment.name!r}, not {name!r}; a lab registered "
            f"as {name!r} would have every submission refused",
            Location(str(enrolment_file), None, "name"),
            f"register it as {enrolment.name!r} (leave NAME out), or on the lab run "
            f"`harness registry labs self --name {name} --json` and register that output",
        )
    data = _backend(ctx).add_lab(enrolment.name, enrolment.public_key, enrolment.signature)
    if as_json:
        _emit(data, True)
        return
    click.echo(
        f"lab {data['name']!r} registered (key {data['fingerprint']}); "
        "its submit token (shown once) follows on standard output",
        err=True,
    )
    click.echo(data["token"])


@labs.command("self")
@click.option(
    "--name",
    help="name this lab signs its bundles with (default: the name chosen on first use: "
    "$HARNESS_LAB_NAME or the host name)",
)
@json_option
def labs_self(name: str | None, as_json: bool) -> None:
    """This machine's signed enrolment (name and public key) to register it with a registry.

    Give the `--json` output to the registry admin for `harness registry labs add --from-file`.
    """
    from harness.labkey import load_or_create_identity, rename_identity

    identity = load_or_create_identity()
    if name is not None and name != identity.name:
        identity = rename_identity(name)
    data = identity.enrolment()
    _emit(
        data,
        as_json,
        [("name", "name"), ("public key", "public_key"), ("fingerprint", "fingerprint")],
    )


_TOKEN_COLUMNS = [
    ("id", "id"),
    ("role", "role"),
    ("label", "label"),
    ("lab", "lab"),
    ("created", "created_at"),
    ("expires", "expires_at"),
    ("last used", "last_used_at"),
    ("revoked", "revoked_at"),
    ("state", "state"),
]

expires_option = click.option(
    "--expires-in",
    "expires_in_days",
    type=click.IntRange(*EXPIRY_DAYS),
    help="days until the token stops working (default: never, until revoked)",
)


@registry.group()
def tokens() -> None:
    """Bearer tokens for the HTTP registry: create, list, revoke, rotate (admin)."""


def _emit_secret(data: dict[str, Any], as_json: bool, what: str) -> None:
    """The secret alone on stdout (for `$(...)`), what it is on stderr; or all of it as JSON."""
    if as_json:
        _emit(data, True)
        return
    expires = data.get("expires_at") or "never (until revoked)"
    click.echo(
        f"{what} token #{data['id']} ({data['role']}, {data['label']}); expires {expires}; "
        "shown once, only its hash is stored",
        err=True,
    )
    click.echo(data["token"])


@tokens.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--label", required=True, help="who holds it, for the audit log")
@click.option("--lab", help="lab name (lab tokens only)")
@expires_option
@json_option
@click.pass_context
def tokens_create(
    ctx: click.Context,
    role: str,
    label: str,
    lab: str | None,
    expires_in_days: int | None,
    as_json: bool,
) -> None:
    """Create a token (printed once; only its hash is stored)."""
    data = _backend(ctx).create_token(role, label, lab, expires_in_days=expires_in_days)
    _emit_secret(data, as_json, "new")


@tokens.command("list")
@json_option
@click.pass_context
def tokens_list(ctx: click.Context, as_json: bool) -> None:
    """Every token issued (never the secret): role, holder, expiry, last use and state."""
    _emit(_backend(ctx).list_tokens(), as_json, _TOKEN_COLUMNS, "Tokens")


@tokens.command("revoke")
@click.argument("token_id", type=click.IntRange(1, MAX_ROW_ID))
@json_option
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: int, as_json: bool) -> None:
    """Revoke a token now (e.g. a leaked one); its next request is refused with 401."""
    _emit(_backend(ctx).revoke_token(token_id), as_json, _TOKEN_COLUMNS)


@tokens.command("rotate")
@click.argument("token_id", type=click.IntRange(1, MAX_ROW_ID))
@expires_option
@json_option
@click.pass_context
def tokens_rotate(
    ctx: click.Context, token_id: int, expires_in_days: int | None, as_json: bool
) -> None:
    """Revoke a token and issue its replacement (same role, holder and lab); prints the new one."""
    data = _backend(ctx).rotate_token(token_id, expires_in_days=expires_in_days)
    _emit_secret(data, as_json, f"replacement of #{token_id}:")
