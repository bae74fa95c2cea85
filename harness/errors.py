"""Error kinds that decide the exit code.

A lab engineer must be able to tell a typo in their plan (exit 2) from a lab
that fell over (exit 3) from a board that failed a test (exit 1), so every
error the harness raises on purpose is one of these.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_TEST_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INFRA = 3


class HarnessError(Exception):
    """Base of the errors the CLI turns into a one-paragraph message and an exit code."""

    exit_code = EXIT_INFRA


@dataclass
class Location:
    """Where in a user's file a problem sits; `line` is 1-based, `field` a dotted path."""

    file: str | Path | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(str(self.file) + (f":{self.line}" if self.line else ""))
        if self.field:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)


class UserError(HarnessError):
    """Bad input from the user: a malformed file, option or request. Exit 2, never a traceback."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None):
        self.message = message
        self.location = location or Location()
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = str(self.location)
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class InfraError(HarnessError):
    """The lab or the harness failed (board unreachable, QEMU missing, registry down). Exit 3."""

    exit_code = EXIT_INFRA


@contextmanager
def reading_user_file(
    path: str | Path,
    expected: str,
    error: type[UserError] = UserError,
    missing: str = "file not found",
) -> Iterator[None]:
    """Opening or reading a file the user named: an OS error is one `error` naming the file
    (missing, a directory where `expected` was wanted, unreadable), never a traceback."""
    try:
        yield
    except FileNotFoundError:
        raise error(missing, Location(path)) from None
    except IsADirectoryError:
        raise error(f"is a directory, expected {expected}", Location(path)) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", Location(path)) from None


class LabLost(BaseException):
    """The lab went away under a test (its place was taken over, its exporter died).

    Raised in the run's main thread by the lab guard (harness/farm/hold.py) to stop
    the test under way at once: nothing may touch a board the run no longer holds,
    so it is a BaseException that the executor's recovery (which catches Exception)
    lets through, like KeyboardInterrupt. The run engine records the test as an
    infrastructure error and stops.
    """
