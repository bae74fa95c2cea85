"""The built images of one architecture, as the bench and qemu_command see them.

A manifest (artifacts.json) sits next to the files so that a later process
can use a cache entry without rebuilding or re-deriving anything, including
the SSH host key the harness must pin.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from harness.errors import InfraError

MANIFEST = "artifacts.json"

Status = Literal["built", "cached"]


@dataclass
class ArchArtifacts:
    arch: str
    directory: Path
    kernel: Path
    initrd: Path
    kernel_release: str
    kernel_cmdline: str
    console_device: str
    """The guest's console tty (ttyS0 / ttyAMA0): where getty runs and the kernel logs."""
    host_key_line: str
    """The board's SSH host key as `type base64`, for pinning (e.g. paramiko HostKeys.add)."""
    host_key_fingerprint: str
    """OpenSSH-style SHA256 fingerprint of the host key."""
    root_password: str
    os_release: dict[str, str]
    packages: dict[str, str]
    """Debian package name -> version the images were built from."""
    cache_key: str
    boot_disk: Path | None = None
    """Raw distro-boot disk (MBR, ext2, extlinux) for u-boot boards; use it copy-on-write."""
    uboot_bios: Path | None = None
    absent_drivers: list[str] = field(default_factory=list)
    """Optional drivers (USB, watchdog) the chosen kernel flavour does not have."""
    status: Status = field(default="built", compare=False)

    @property
    def host_key_base64(self) -> str:
        return self.host_key_line.split()[1]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("status")
        data.pop("directory")
        for name in ("kernel", "initrd", "boot_disk", "uboot_bios"):
            value = data[name]
            data[name] = (
                None if value is None else Path(value).relative_to(self.directory).as_posix()
            )
        return data

    def save(self) -> None:
        (self.directory / MANIFEST).write_text(
            json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"
        )

    @classmethod
    def load(cls, directory: Path, status: Status = "cached") -> ArchArtifacts:
        try:
            data = json.loads((directory / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise InfraError(
                f"virtual lab cache entry {directory} is unreadable ({exc}); delete it and rebuild"
            ) from None
        for name in ("kernel", "initrd", "boot_disk", "uboot_bios"):
            if data.get(name) is not None:
                data[name] = directory / data[name]
        return cls(directory=directory, status=status, **data)
