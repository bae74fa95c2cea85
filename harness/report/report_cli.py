"""`harness report RUN|BUNDLE`: the HTML report of any run folder or signed bundle.

A run writes report.html itself when it finishes; this builds the same page for an older
folder, a run id under --results, or a bundle someone sent. A bundle is verified first
(every byte and the signature, as `harness bundle verify` does) and read from a private
unpacked copy; an altered bundle gets no report, so a page never vouches for evidence
that was changed. Exit codes: 0 written, 1 the bundle was altered, 2 bad input.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from harness.errors import EXIT_TEST_FAILED, Location, UserError
from harness.options import results_option
from harness.report.html import REPORT_HTML, write_report
from harness.report.runfolder import RUN_ID, RUN_JSON


@click.command()
@click.argument("source")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="file to write (default: report.html in the run folder; NAME.report.html beside a bundle)",
)
@results_option
def report(source: str, out: Path | None, results_root: Path) -> None:
    """Write the HTML report of SOURCE: a run folder, a run id in --results, or a bundle."""
    path = Path(source)
    if not path.exists() and RUN_ID.match(source):
        path = results_root / source
    if out is not None and not out.parent.is_dir():
        raise UserError("its folder does not exist", Location(str(out), None, "--out"))
    if path.is_dir():
        if not (path / RUN_JSON).is_file():
            raise UserError(
                "not a run folder (no run.json)", Location(str(path), None, "RUN|BUNDLE")
            )
        _not_a_repro_run(path)
        written = write_report(path, out)
    elif path.is_file():
        written = _from_bundle(path, out)
    else:
        raise UserError(
            "no such run folder, run id or bundle", Location(str(path), None, "RUN|BUNDLE")
        )
    click.echo(f"report: {written}")


def _not_a_repro_run(folder: Path) -> None:
    """A reproduction run has its own report (harness/repro/report.py), written by its run."""
    try:
        kind = json.loads((folder / RUN_JSON).read_text(encoding="utf-8")).get("kind")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return  # not JSON, or not an object: the run folder reader names the problem
    if kind == "repro":
        raise UserError(
            "a reproduction run: its report.html is written by `harness repro` itself",
            Location(str(folder / RUN_JSON), None, "kind"),
        )


def _from_bundle(bundle: Path, out: Path | None) -> Path:
    from harness.report.bundle_read import unpack_bundle

    with tempfile.TemporaryDirectory(prefix="harness-report-") as scratch:
        checked = unpack_bundle(bundle, Path(scratch) / "run")
        if not checked.ok:
            click.echo(f"TAMPERED: {bundle}: no report of altered evidence", err=True)
            for problem in checked.problems:
                click.echo(f"  - {problem}", err=True)
            sys.exit(EXIT_TEST_FAILED)
        stem = bundle.name.removesuffix(".tar").removesuffix(".bundle")
        target = out or bundle.with_name(f"{stem}.{REPORT_HTML}")
        facts = {
            "path": str(bundle),
            "sha256": checked.sha256,
            "lab": checked.manifest.get("lab"),
            "signer": checked.signer_fingerprint,
        }
        return write_report(Path(scratch) / "run", target, bundle=facts)
