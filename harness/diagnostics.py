"""The harness's own diagnostics, through the standard `logging` module.

What a run proves goes to its run folder (results.jsonl, run.json, console.log); what the
harness itself noticed on the way (a cleanup that failed, a progress view that broke, a
registry client that raised) is logged under the `harness` logger, each module with
`logging.getLogger(__name__)`. `harness --verbose` shows INFO messages on standard error
(`-vv`: DEBUG, with tracebacks); `harness --log-file PATH` appends everything from DEBUG
up, with times, module names and tracebacks, to PATH. Without either, only warnings
reach standard error, one line each, as `harness: ...`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from harness.errors import Location, UserError

LOGGER = "harness"
_OURS = "_harness_handler"  # marks the handlers `configure` added, so a second call replaces them


class _OneLine(logging.Formatter):
    """`harness: message` on a terminal; the traceback only when asked for (-vv)."""

    def __init__(self, tracebacks: bool):
        super().__init__("harness: %(message)s")
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.tracebacks:
            return super().format(record)
        cause = record.exc_info[1] if record.exc_info else None
        line = record.getMessage()
        if cause is not None:
            line += f" ({type(cause).__name__}: {cause})"
        return f"harness: {line}"


def configure(verbosity: int = 0, log_file: Path | None = None) -> None:
    """Set up the `harness` logger for one command: standard error, and `log_file` if given."""
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if getattr(h, _OURS, False)]:
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(
        logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    )
    console.setFormatter(_OneLine(tracebacks=verbosity >= 2))
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            to_file = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise UserError(
                f"cannot write the log file ({exc.strerror})",
                Location(str(log_file), None, "--log-file"),
            ) from None
        to_file.setLevel(logging.DEBUG)
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(to_file)
    for handler in handlers:
        setattr(handler, _OURS, True)
        logger.addHandler(handler)
