"""Kernel modules for the initramfs, dependencies first.

Debian's kernel packages ship no modules.dep (depmod runs at install time),
and busybox's insmod takes one file and no dependencies, so we read each
module's own `depends=` from its .modinfo section and order the closure.
Compressed modules (.ko.xz) are decompressed because busybox insmod cannot.
"""

from __future__ import annotations

import lzma
from pathlib import Path

from harness.errors import InfraError


def _canonical(name: str) -> str:
    return name.replace("-", "_")


def _module_name(path: Path) -> str:
    return _canonical(path.name.split(".ko")[0])


def _load(path: Path) -> bytes:
    data = path.read_bytes()
    return lzma.decompress(data) if path.name.endswith(".xz") else data


def _depends(image: bytes) -> list[str]:
    """The `depends=` entry of the .modinfo section (NUL-separated key=value strings)."""
    start = image.find(b"\0depends=")
    if start < 0:
        return []
    start += len(b"\0depends=")
    value = image[start : image.index(b"\0", start)].decode()
    return [_canonical(name) for name in value.split(",") if name]


def index_modules(modules_dir: Path) -> dict[str, Path]:
    """Module name -> file, for every module under lib/modules/<release>/."""
    return {_module_name(path): path for path in modules_dir.rglob("*.ko*") if ".ko" in path.name}


def load_order(
    wanted: list[str], modules_dir: Path, optional: set[str] = frozenset()
) -> tuple[list[tuple[str, Path, bytes]], list[str]]:
    """(relative path, source file, module bytes) for `wanted` and its dependencies, dependencies
    first; and the `optional` modules the kernel does not have, which are left out."""
    index = index_modules(modules_dir)
    absent = [name for name in wanted if name in optional and _canonical(name) not in index]
    wanted = [name for name in wanted if name not in absent]
    ordered: list[tuple[str, Path, bytes]] = []
    placed: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = _canonical(name)
        if name in placed:
            return
        if name in chain:
            raise InfraError(f"kernel module dependency loop: {' -> '.join((*chain, name))}")
        path = index.get(name)
        if path is None:
            needed_by = f" (needed by {chain[-1]})" if chain else ""
            raise InfraError(
                f"kernel module {name}{needed_by} is not in the kernel package ({modules_dir})"
            )
        image = _load(path)
        for dependency in _depends(image):
            visit(dependency, (*chain, name))
        placed.add(name)
        relative = path.relative_to(modules_dir).as_posix().removesuffix(".xz")
        ordered.append((relative, path, image))

    for name in wanted:
        visit(name, ())
    return ordered, absent
