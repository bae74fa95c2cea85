"""Importing a plan's `python: module:function` steps, looking next to the plan file first.

Kept apart from the plan schema so loading a plan and running a step share one import rule.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any


def import_python_step(target: str, base: Path | None = None) -> Any:
    """Import `module:function`, looking next to the plan file first so plans can carry helpers."""
    module_name, attr = target.split(":")
    added = base is not None and str(base) not in sys.path
    if added:
        sys.path.insert(0, str(base))
    try:
        module = importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(str(base))
    return getattr(module, attr)


def python_step_problem(target: str, base: Path | None) -> str | None:
    try:
        function = import_python_step(target, base)
    except ModuleNotFoundError as exc:
        return f"cannot import python step {target!r}: no module named {exc.name!r}"
    except AttributeError:
        return f"python step {target!r}: the module has no such function"
    except Exception as exc:  # the user's module itself is broken; say how, without a traceback
        return f"cannot import python step {target!r}: {type(exc).__name__}: {exc}"
    if not callable(function):
        return f"python step {target!r} is not a function"
    return None
