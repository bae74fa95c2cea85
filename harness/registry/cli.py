"""`harness registry ...`: serve, query and administer the registry.

Commands work against the local SQLite registry by default, a database given
with --db (SQLite path or PostgreSQL URL), or an HTTP registry given with
--url / HARNESS_REGISTRY_URL (token from HARNESS_REGISTRY_TOKEN). Output is a
human table unless --json is given; bad input exits 2 with one paragraph.
The command groups live beside it: cli_kernels.py (vendor kernels), cli_cases.py
(customer cases), cli_access.py (labs and tokens); shared helpers in cli_common.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from harness.errors import Location, UserError
from harness.registry.cli_access import labs, tokens
from harness.registry.cli_cases import cases
from harness.registry.cli_common import backend, emit, json_option
from harness.registry.cli_kernels import kernels
from harness.registry.config import (
    ENV_REGISTRY_TOKEN,
    ENV_REGISTRY_URL,
    default_db_url,
)
from harness.registry.eligibility import Device


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
    print_answer(backend(ctx).eligibility(device), as_json)


def print_answer(answer: dict[str, Any], as_json: bool) -> None:
    """An eligibility answer as JSON, or as a status line with its evidence."""
    if as_json:
        emit(answer, True)
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
    data = backend(ctx).list_boards()
    if as_json:
        emit(data, True)
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
    emit(rows, False, title="Board models")


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
    data = backend(ctx).list_certificates(
        vendor=vendor, model=model, revision=revision, os_release=os_release
    )
    emit(
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
    cert = backend(ctx).revoke_certificate(cert_id, reason)
    emit(
        cert,
        as_json,
        [("id", "id"), ("run", "run_id"), ("revoked", "revoked_at"), ("reason", "revoked_reason")],
    )


@registry.command()
@json_option
@click.pass_context
def runs(ctx: click.Context, as_json: bool) -> None:
    """Every stored run: run id, lab, verdict, bundle hash, when it was received."""
    emit(
        backend(ctx).list_runs(),
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
    emit(
        backend(ctx).audit_entries(limit),
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
        emit(data, True)
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
        emit(
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


for group in (kernels, cases, labs, tokens):
    registry.add_command(group)
