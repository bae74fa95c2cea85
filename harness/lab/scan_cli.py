"""`harness scan LOG [--json]`: crashes and resets in any console log, with the fingerprint
of each crash (harness/repro/fingerprint.py) that a repro run matches its board's crash against.

Exit 0 when the log is clean, 1 when something was found, 2 when the input
cannot be read, so a CI job or a support script can branch on it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from harness.errors import EXIT_OK, EXIT_TEST_FAILED
from harness.lab.scan import ScanReport, read_log, scan_text


def _print_table(report: ScanReport) -> None:
    if report.clean:
        click.echo(f"{report.file}: clean ({report.lines} lines, no crash or reset found)")
        return
    click.echo(f"{report.file}: {len(report.events)} finding(s) in {report.lines} lines")
    click.echo(f"{'line':>7}  {'severity':<8}  {'kind':<17}  text")
    for event in report.events:
        click.echo(
            f"{event.line_number:>7}  {event.severity:<8}  {event.kind:<17}  {event.line.strip()[:100]}"
        )
    for event in report.events:
        click.echo(f"\n--- line {event.line_number}: {event.kind} ({event.description})")
        click.echo(event.excerpt)


def _print_fingerprints(prints: list[Any]) -> None:
    if not prints:
        return
    click.echo("\ncrash fingerprints (what `harness repro` matches a board's crash against):")
    for found in prints:
        frames = " <- ".join(found.frames) or found.message or ""
        click.echo(f"  {found.id}  {found.kind} in {found.function or '?'}  {frames}".rstrip())


@click.command()
@click.argument("log", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def scan(log: Path, as_json: bool) -> int:
    """Find kernel crashes and unexpected resets in the console LOG (plain, .gz, .xz or .bz2),
    and fingerprint each crash (kind, faulting function, top frames) as `harness repro` does."""
    from harness.repro.fingerprint import fingerprints

    text = read_log(log)
    report = scan_text(text, log)
    prints = fingerprints(text, log)
    if as_json:
        data = report.to_dict()
        data["fingerprints"] = [found.model_dump(mode="json") for found in prints]
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(report)
        _print_fingerprints(prints)
    return EXIT_OK if report.clean else EXIT_TEST_FAILED
