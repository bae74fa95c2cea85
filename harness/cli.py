"""The `harness` command.

Sub-commands live next to the stage they drive and are imported only when
used, so `harness --help` and `harness check` stay fast and a broken optional
stack (say, no PostgreSQL driver) cannot break unrelated commands. The group's
`--verbose` / `--log-file` set up the harness's own diagnostics (harness/diagnostics.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import click

from harness import __version__
from harness.diagnostics import configure
from harness.errors import EXIT_BAD_INPUT, HarnessError

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "check": "harness.model.check:check",
    "lab": "harness.vlab.cli:lab",
    "run": "harness.run.cli:run",
    "repro": "harness.repro.cli:repro",
    "scan": "harness.lab.scan_cli:scan",
    "bundle": "harness.report.bundle_cli:bundle",
    "registry": "harness.registry.cli:registry",
    "eligible": "harness.registry.live:eligible",
    "certify": "harness.certify:certify",
    "farm": "harness.farm.cli:farm",
    "board": "harness.discover.cli:board",
    "report": "harness.report.report_cli:report",
}


def _exists(target: str) -> bool:
    return importlib.util.find_spec(target.split(":")[0]) is not None


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, target in COMMANDS.items() if _exists(target))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="show the harness's own diagnostics on standard error (-vv: debug, with tracebacks)",
)
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="append the harness's own diagnostics (debug and up, with tracebacks) to this file",
)
def cli(verbose: int, log_file: Path | None) -> None:
    """Board certification harness: certify boards, reproduce customer cases, answer eligibility."""
    configure(verbose, log_file)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes and lab faults become one paragraph and an exit code, not a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except HarnessError as exc:
        click.echo(f"harness: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("harness: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("harness: interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)
