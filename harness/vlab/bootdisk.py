"""The aarch64 board's U-Boot distro-boot disk.

U-Boot's distro boot scans a disk's *bootable* partitions for
extlinux/extlinux.conf, so the disk is an MBR with one bootable ext2
partition holding the kernel Image, the initramfs and that file: the same
layout as an SD card image for a real arm64 board.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

from harness.errors import InfraError

SECTOR = 512
FIRST_SECTOR = 2048  # 1 MiB alignment, as partitioning tools default to
_LINUX_PARTITION = 0x83
_BOOTABLE = 0x80


def _mbr(total_sectors: int) -> bytes:
    """A DOS partition table with one bootable Linux partition covering the disk after 1 MiB."""
    count = total_sectors - FIRST_SECTOR
    # CHS fields are ignored by U-Boot and Linux for LBA partitions; 0xFEFFFF means "use LBA".
    entry = struct.pack(
        "<B3sB3sII",
        _BOOTABLE,
        b"\xfe\xff\xff",
        _LINUX_PARTITION,
        b"\xfe\xff\xff",
        FIRST_SECTOR,
        count,
    )
    table = entry + b"\0" * 48
    disk_signature = struct.pack("<I", 0x48564C42)  # fixed: same inputs, same bytes
    return b"\0" * 440 + disk_signature + b"\0\0" + table + b"\x55\xaa"


def extlinux_conf(label: str, kernel: str, initrd: str, append: str) -> str:
    return (
        f"default {label}\n"
        "timeout 0\n"
        f"label {label}\n"
        f"    kernel /{kernel}\n"
        f"    initrd /{initrd}\n"
        f"    append {append}\n"
    )


def build_boot_disk(output: Path, size_mib: int, files: dict[str, Path], extlinux: str) -> None:
    """Write a raw disk image: MBR + ext2 partition with `files` (name -> source) and extlinux.conf."""
    if shutil.which("mke2fs") is None:
        raise InfraError(
            "mke2fs is not installed (Debian package e2fsprogs); it builds the U-Boot boot disk"
        )
    staging = output.parent / (output.name + ".content")
    (staging / "extlinux").mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        shutil.copyfile(source, staging / name)
    (staging / "extlinux" / "extlinux.conf").write_text(extlinux)

    total_sectors = size_mib * 1024 * 1024 // SECTOR
    with output.open("wb") as disk:
        disk.truncate(size_mib * 1024 * 1024)
        disk.write(_mbr(total_sectors))
    fs_kib = (total_sectors - FIRST_SECTOR) * SECTOR // 1024
    result = subprocess.run(
        [
            "mke2fs", "-q", "-F", "-t", "ext2", "-L", "vlab-boot", "-b", "1024",
            "-E", f"offset={FIRST_SECTOR * SECTOR},root_owner=0:0",
            "-d", str(staging), str(output), str(fs_kib),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    shutil.rmtree(staging)
    if result.returncode != 0:
        raise InfraError(f"mke2fs could not build the boot disk {output}: {result.stderr.strip()}")
