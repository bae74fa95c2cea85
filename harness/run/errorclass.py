"""Whose code raised: the plan's python step (a user error) or the harness itself (a harness bug).

A test's python step is the plan author's code; everything it calls on `ctx` is the
harness's. When an unexpected exception escapes a step, the traceback says who owns the
innermost frame that is neither the standard library nor a third-party package: a frame
in the `harness` package means the harness broke (report it), any other frame is the
plan's own code (fix the plan). Library frames are skipped because an exception raised
inside, say, `json` belongs to whoever called it. The error class is recorded as a field
(harness/model/records.py `ErrorClass`), not only inside the reason text.
"""

from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path

import harness
from harness.errors import InfraError, UserError
from harness.model.records import ErrorClass

HARNESS_DIR = Path(harness.__file__).resolve().parent
_LIBRARY_DIRS = tuple(
    Path(p).resolve()
    for p in {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
)


def _is_library(path: Path) -> bool:
    return not path.is_relative_to(HARNESS_DIR) and any(
        path.is_relative_to(lib) for lib in _LIBRARY_DIRS
    )


def culprit_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of `exc`'s traceback that belongs to the harness or to the plan."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        path = Path(frame.filename).resolve()
        if frame.filename.startswith("<") or _is_library(path):
            continue
        return frame
    return None


def is_harness_frame(frame: traceback.FrameSummary) -> bool:
    return Path(frame.filename).resolve().is_relative_to(HARNESS_DIR)


def classify(exc: BaseException) -> ErrorClass:
    """The error class of an exception that ended a test attempt as an `error`."""
    if isinstance(exc, UserError):
        return ErrorClass.USER
    if isinstance(exc, InfraError):
        return ErrorClass.INFRASTRUCTURE
    frame = culprit_frame(exc)
    if frame is not None and is_harness_frame(frame):
        return ErrorClass.HARNESS_BUG
    return ErrorClass.USER


def describe(exc: BaseException, error_class: ErrorClass) -> str:
    """The reason text: who raised what, and where when it was the harness."""
    what = f"{type(exc).__name__}: {exc}"
    if error_class is ErrorClass.HARNESS_BUG:
        frame = culprit_frame(exc)
        where = f" in {Path(frame.filename).name}:{frame.lineno}" if frame else ""
        return f"harness bug: {what}{where} (please report it)"
    if isinstance(exc, UserError):
        return f"bad input: {exc}"
    return f"python step raised {what}"
