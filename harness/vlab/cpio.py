"""A gzip'd newc cpio writer for the initramfs.

Written here rather than shelling out to cpio(1) so that the archive can hold
device nodes without root, every entry gets the same timestamp and owner
(root), and the same tree always gives the same bytes.
"""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path
from typing import BinaryIO

_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


class NewcWriter:
    """Appends entries in the kernel's `newc` format; call `close()` to write the trailer."""

    def __init__(self, out: BinaryIO, mtime: int = 0):
        self._out = out
        self._mtime = mtime
        self._ino = 1

    def _entry(
        self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        encoded = name.encode() + b"\0"
        fields = (
            self._ino,
            mode,
            0,  # uid
            0,  # gid
            2 if stat.S_ISDIR(mode) else 1,  # nlink
            self._mtime,
            len(data),
            0,  # dev major
            0,  # dev minor
            rdev[0],
            rdev[1],
            len(encoded),
            0,  # check
        )
        self._ino += 1
        header = _MAGIC + b"".join(b"%08X" % value for value in fields)
        self._out.write(header + encoded + _pad4(len(header) + len(encoded)))
        self._out.write(data + _pad4(len(data)))

    def directory(self, name: str, perm: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | perm)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def close(self) -> None:
        self._entry(_TRAILER, 0)


def write_initramfs(tree: Path, output: Path, devices: dict[str, tuple[int, int]]) -> None:
    """Pack `tree` (paths relative to its root) plus `devices` (name -> major, minor) as gzip'd newc.

    The kernel opens /dev/console before devtmpfs is mounted, so that node must
    be in the archive itself.
    """
    with (
        output.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz,
    ):
        writer = NewcWriter(gz)
        for path in sorted(tree.rglob("*")):
            name = path.relative_to(tree).as_posix()
            info = path.lstat()
            perm = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                writer.symlink(name, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                writer.directory(name, perm)
            elif stat.S_ISREG(info.st_mode):
                writer.file(name, path.read_bytes(), perm)
        for name, (major, minor) in sorted(devices.items()):
            writer.char_device(name, major, minor)
        writer.close()
