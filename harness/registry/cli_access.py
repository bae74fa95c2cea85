"""`harness registry labs` and `tokens`: who may submit and who may call the HTTP API (admin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.errors import Location, UserError
from harness.registry.cli_common import backend, emit, json_option
from harness.registry.rules import EXPIRY_DAYS, MAX_ROW_ID, ROLES


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def labs(ctx: click.Context, as_json: bool) -> None:
    """Labs allowed to submit (lists them; `labs add` registers one, `labs self` shows this machine's)."""
    if ctx.invoked_subcommand is None:
        emit(
            backend(ctx).list_labs(),
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
    data = backend(ctx).add_lab(enrolment.name, enrolment.public_key, enrolment.signature)
    _emit_secret(
        data,
        as_json,
        f"lab {data['name']!r} registered (key {data['fingerprint']}); "
        "its submit token (shown once) follows on standard output",
    )


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
    emit(
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


@click.group()
def tokens() -> None:
    """Bearer tokens for the HTTP registry: create, list, revoke, rotate (admin)."""


def _emit_secret(data: dict[str, Any], as_json: bool, said: str) -> None:
    """The secret alone on stdout (for `$(...)`), `said` (what it is) on stderr; or all as JSON."""
    if as_json:
        emit(data, True)
        return
    click.echo(said, err=True)
    click.echo(data["token"])


def _token_said(data: dict[str, Any], what: str) -> str:
    expires = data.get("expires_at") or "never (until revoked)"
    return (
        f"{what} token #{data['id']} ({data['role']}, {data['label']}); expires {expires}; "
        "shown once, only its hash is stored"
    )


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
    data = backend(ctx).create_token(role, label, lab, expires_in_days=expires_in_days)
    _emit_secret(data, as_json, _token_said(data, "new"))


@tokens.command("list")
@json_option
@click.pass_context
def tokens_list(ctx: click.Context, as_json: bool) -> None:
    """Every token issued (never the secret): role, holder, expiry, last use and state."""
    emit(backend(ctx).list_tokens(), as_json, _TOKEN_COLUMNS, "Tokens")


@tokens.command("revoke")
@click.argument("token_id", type=click.IntRange(1, MAX_ROW_ID))
@json_option
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: int, as_json: bool) -> None:
    """Revoke a token now (e.g. a leaked one); its next request is refused with 401."""
    emit(backend(ctx).revoke_token(token_id), as_json, _TOKEN_COLUMNS)


@tokens.command("rotate")
@click.argument("token_id", type=click.IntRange(1, MAX_ROW_ID))
@expires_option
@json_option
@click.pass_context
def tokens_rotate(
    ctx: click.Context, token_id: int, expires_in_days: int | None, as_json: bool
) -> None:
    """Revoke a token and issue its replacement (same role, holder and lab); prints the new one."""
    data = backend(ctx).rotate_token(token_id, expires_in_days=expires_in_days)
    _emit_secret(data, as_json, _token_said(data, f"replacement of #{token_id}:"))
