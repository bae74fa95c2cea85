"""A small OS image in the virtual lab's format (harness/vlab/osimage.py), built in well under
a second with stand-in kernel and initrd files: for tests that read or attach an image without
booting it."""

from __future__ import annotations

from pathlib import Path

from harness.vlab.bootdisk import build_boot_disk, extlinux_conf


def small_os_image(path: Path, tmp_path: Path, append: str = "console=ttyS0 marker") -> Path:
    """An OS image in the virtual lab's format, with stand-in kernel and initrd files."""
    kernel, initrd = tmp_path / "kernel.bin", tmp_path / "initrd.bin"
    kernel.write_bytes(b"kernel " * 1000)
    initrd.write_bytes(b"initrd " * 500)
    build_boot_disk(
        path,
        8,
        {"vmlinux": kernel, "initrd.img": initrd},
        extlinux_conf("harness", "vmlinux", "initrd.img", append),
    )
    return path
