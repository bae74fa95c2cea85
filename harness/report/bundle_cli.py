"""`harness bundle make|verify`: evidence bundles from the command line.

Exit codes are part of the interface so scripts can tell an altered bundle
(1) from a path that is not a bundle at all (2).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from harness.errors import EXIT_TEST_FAILED, Location, UserError
from harness.labkey import decode_public_key, load_or_create_identity
from harness.report.bundle import make_bundle
from harness.report.bundle_read import verify_bundle


@click.group()
def bundle() -> None:
    """Pack a run folder into a signed evidence bundle, or check one."""


@bundle.command("make")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="bundle file (default: RUN_DIR.bundle.tar next to it)",
)
def make_cmd(run_dir: Path, output: Path | None) -> None:
    """Pack RUN_DIR with a sha256 manifest and sign it with this lab's key (created on first use)."""
    info = make_bundle(run_dir, output)
    click.echo(f"{info.path}  sha256={info.sha256}  run={info.run_id}  lab={info.lab}")


@bundle.command("verify")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--public-key", "public_key", help="trusted signer key 'ed25519:...' or a file holding it"
)
@click.option("--lab-key", is_flag=True, help="trust only this machine's own lab key")
@click.option("--json", "as_json", is_flag=True, help="machine-readable result")
def verify_cmd(file: Path, public_key: str | None, lab_key: bool, as_json: bool) -> None:
    """Check every byte of FILE. Exit 0 intact, 1 tampered or forged, 2 not a readable bundle."""
    trusted = _trusted_key(public_key, lab_key)
    report = verify_bundle(file, trusted)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "file": str(file),
                    "ok": report.ok,
                    "sha256": report.sha256,
                    "run_id": report.run_id,
                    "lab": report.manifest.get("lab"),
                    "signer": report.signer_fingerprint,
                    "key_pinned": trusted is not None,
                    "problems": report.problems,
                }
            )
        )
    elif report.ok:
        pinned = (
            "trusted key" if trusted else "key embedded in the bundle (pass --public-key to pin it)"
        )
        click.echo(
            f"ok: {file} run={report.run_id} lab={report.manifest.get('lab')} signed by {pinned} {report.signer_fingerprint}"
        )
    else:
        click.echo(f"TAMPERED: {file}", err=True)
        for problem in report.problems:
            click.echo(f"  - {problem}", err=True)
    sys.exit(0 if report.ok else EXIT_TEST_FAILED)


def _trusted_key(public_key: str | None, lab_key: bool) -> str | None:
    if lab_key:
        return load_or_create_identity().public_key_text
    if public_key is None:
        return None
    text = public_key
    if not public_key.startswith("ed25519:"):
        path = Path(public_key)
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise UserError(
                f"cannot read public key file: {exc.strerror}", Location(path, field="--public-key")
            ) from None
    decode_public_key(text, Location(field="--public-key"))
    return text
