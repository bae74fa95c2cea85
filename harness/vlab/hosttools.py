"""Build-time tools (dropbearkey, busybox mkpasswd) run on the build host.

The host's own copy is preferred; when it is missing and the build is for the
host's own architecture, the copy just unpacked from the Debian package runs
through the unpacked loader instead, so a host without dropbear-bin or
busybox-static can still build its native images.
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

from harness.errors import InfraError
from harness.vlab import elfdeps
from harness.vlab.recipe import ArchRecipe

_BIN_DIRS = ("usr/bin", "bin", "usr/sbin", "sbin")


def tool(name: str, package: str, unpacked: Path, arch: ArchRecipe) -> list[str]:
    """The argv prefix that runs `name` here; InfraError naming the Debian package if none can."""
    found = shutil.which(name)
    if found:
        return [found]
    if arch.arch == platform.machine():
        for directory in _BIN_DIRS:
            candidate = unpacked / directory / name
            if candidate.is_file():
                loader = elfdeps.interpreter(candidate)
                if loader is None:
                    return [str(candidate)]
                library_path = ":".join(str(unpacked / d) for d in arch.library_dirs)
                loader_file = elfdeps.real_file(unpacked, unpacked / loader.lstrip("/"))
                return [str(loader_file), "--library-path", library_path, str(candidate)]
    raise InfraError(f"{name} is not installed on this host (Debian package {package})")
