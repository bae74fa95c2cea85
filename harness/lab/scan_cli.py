"""`harness scan LOG [--json]`: crashes and resets in any console log.

Exit 0 when the log is clean, 1 when something was found, 2 when the input
cannot be read, so a CI job or a support script can branch on it.
"""

from __future__ import annotations

import json
import sys

import click

from harness.errors import EXIT_OK, EXIT_TEST_FAILED
from harness.lab.scan import ScanReport, scan_file


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


@click.command()
@click.argument("log", type=click.Path(dir_okay=True, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def scan(log: str, as_json: bool) -> int:
    """Find kernel crashes and unexpected resets in the console LOG (plain, .gz, .xz or .bz2)."""
    report = scan_file(log)
    if as_json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(report)
    return EXIT_OK if report.clean else EXIT_TEST_FAILED
