"""Shared-library closure of a dynamically linked binary, for any architecture.

`readelf` reads foreign-architecture ELF files, so the same code finds what
an arm64 dropbear needs on an x86 build host; `ldd` could not, since it runs
the binary's loader.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from harness.errors import InfraError

_NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[(.+?)\]")
_INTERP = re.compile(r"Requesting program interpreter: (.+?)\]")


def _readelf(flag: str, binary: Path) -> str:
    try:
        result = subprocess.run(
            ["readelf", flag, "-W", str(binary)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise InfraError("readelf is not installed (Debian package binutils)") from None
    if result.returncode != 0:
        raise InfraError(f"readelf cannot read {binary}: {result.stderr.strip()}")
    return result.stdout


def interpreter(binary: Path) -> str | None:
    """The absolute path of the program's loader (PT_INTERP), or None for a static binary."""
    match = _INTERP.search(_readelf("-l", binary))
    return match.group(1) if match else None


def needed(binary: Path) -> list[str]:
    return _NEEDED.findall(_readelf("-d", binary))


def find_library(soname: str, root: Path, search_dirs: list[str]) -> Path:
    for directory in search_dirs:
        candidate = root / directory / soname
        if candidate.exists():
            return candidate
    raise InfraError(
        f"shared library {soname} not found in the downloaded packages (looked in {', '.join(search_dirs)} under {root})"
    )


def library_closure(binaries: list[Path], root: Path, search_dirs: list[str]) -> dict[str, Path]:
    """soname -> file under `root` for every library the binaries need, transitively."""
    found: dict[str, Path] = {}
    pending = [lib for binary in binaries for lib in needed(binary)]
    while pending:
        soname = pending.pop()
        if soname in found:
            continue
        path = find_library(soname, root, search_dirs)
        found[soname] = path
        pending.extend(needed(real_file(root, path)))
    return found


def _resolve_in(root: Path, path: Path) -> Path:
    """Follow a symlink inside the unpacked tree: absolute targets point into `root`, not the host."""
    seen = 0
    while path.is_symlink():
        target = Path(path.readlink())
        path = root / target.relative_to("/") if target.is_absolute() else path.parent / target
        seen += 1
        if seen > 16:
            raise InfraError(f"symlink loop at {path}")
    return path


def real_file(root: Path, path: Path) -> Path:
    """The regular file a path in the unpacked tree stands for."""
    return _resolve_in(root, path)
