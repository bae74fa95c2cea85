"""OS images for virtual boards: what `--image FILE` means in the virtual lab, and making one.

An OS image here is a raw disk image with the layout of an SD-card image for an arm64 board,
and of the vlab's own U-Boot boot disk (harness/vlab/bootdisk.py): a DOS partition table with
one bootable partition (ext2/3/4) holding extlinux/extlinux.conf (or boot/extlinux/...) and
the kernel and initramfs it names. `harness lab image` writes one from the lab's build.

Deploying it is what flashing a card and booting from it would be:
- a U-Boot board (`boot.flow: u-boot`) gets the image as its boot disk (vda, copy-on-write,
  so the file is never written) and U-Boot's distro boot reads extlinux.conf from it;
- a direct-boot board has no firmware bootloader in the vlab, so the bench does what distro
  boot does: it reads extlinux.conf, the kernel and the initramfs out of the image and boots
  them with the command line the image names; the image is attached as the board's last
  disk (copy-on-write too), after the profile's own disks, so their names do not change.

The partition table is parsed here (16 bytes an entry; no library does less) and files are
read with e2fsprogs' debugfs, which needs neither root nor a mount; e2fsprogs is already
what builds the boot disk.
"""

from __future__ import annotations

import shlex
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InfraError, Location, UserError
from harness.vlab.artifacts import ArchArtifacts
from harness.vlab.bootdisk import SECTOR, build_boot_disk, extlinux_conf
from harness.vlab.recipe import BOOT_DISK_MIB

EXTLINUX_PATHS = ("/extlinux/extlinux.conf", "/boot/extlinux/extlinux.conf")
_LINUX_TYPES = {0x83}
_BOOTABLE = 0x80
FORMAT = (
    "a raw disk image with a DOS partition table, a bootable ext2/3/4 partition and "
    "extlinux/extlinux.conf naming the kernel and initrd (make one with `harness lab image`)"
)


@dataclass(frozen=True)
class BootEntry:
    """The entry distro boot would pick from an image's extlinux.conf."""

    offset: int  # the boot partition's first byte in the image
    kernel: str
    initrd: str | None
    append: str


@dataclass(frozen=True)
class DeployedImage:
    """An image on a virtual board: the file, and (direct boot) the files booted from it."""

    path: Path
    kernel: Path | None = None
    initrd: Path | None = None
    append: str | None = None


def _bad(image: Path, message: str, option: str) -> UserError:
    return UserError(
        f"{message}; an OS image for a virtual board is {FORMAT}",
        Location(str(image), None, option),
    )


def _boot_partition(image: Path, option: str) -> int:
    """The byte offset of the bootable Linux partition (else the first Linux one)."""
    with image.open("rb") as disk:
        mbr = disk.read(SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        raise _bad(image, "no DOS partition table (MBR) at the start of the file", option)
    entries = [struct.unpack_from("<B3sB3sII", mbr, 446 + 16 * i) for i in range(4)]
    linux = [e for e in entries if e[2] in _LINUX_TYPES and e[4] > 0]
    if not linux:
        raise _bad(image, "the partition table has no Linux (type 0x83) partition", option)
    chosen = next((e for e in linux if e[0] == _BOOTABLE), linux[0])
    return int(chosen[4]) * SECTOR


def _debugfs(image: Path, offset: int, request: str) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("debugfs") is None:
        raise InfraError("debugfs is not installed (Debian package e2fsprogs); it reads OS images")
    with tempfile.TemporaryDirectory(prefix="harness-image-") as scratch:
        # debugfs reads `?offset=` after the name: a name with its own '?' goes through a link.
        source = image
        if "?" in str(image):
            source = Path(scratch) / "image"
            source.symlink_to(image.resolve())
        return subprocess.run(
            ["debugfs", "-R", request, f"{source}?offset={offset}"],
            capture_output=True,
            check=False,
            timeout=120,
        )


def parse_extlinux(text: str) -> tuple[str, str | None, str] | None:
    """(kernel, initrd, append) of the default label (else the first); None without a kernel."""
    labels: dict[str, dict[str, str]] = {}
    default = current = None
    for raw in text.splitlines():
        words = raw.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        key, value = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
        if key == "default":
            default = value
        elif key == "label":
            current = value
            labels.setdefault(current, {})
        elif current is not None and key in ("kernel", "linux", "initrd", "append"):
            labels[current]["kernel" if key == "linux" else key] = value
    entry = labels.get(default or "") or next(iter(labels.values()), None)
    if not entry or not entry.get("kernel"):
        return None
    initrd = entry.get("initrd", "").split(",")[0] or None
    return entry["kernel"], initrd, entry.get("append", "")


def read_boot_entry(image: Path, option: str = "--image") -> BootEntry:
    """What the image boots; a UserError (exit 2) naming the file when it is not an OS image."""
    offset = _boot_partition(image, option)
    problems = []
    for path in EXTLINUX_PATHS:
        result = _debugfs(image, offset, f"cat {path}")
        error = result.stderr.decode(errors="replace")
        if "Bad magic number" in error or "Couldn't find valid filesystem" in error:
            raise _bad(image, "the boot partition holds no ext2/3/4 file system", option)
        if result.returncode == 0 and result.stdout and "not found" not in error:
            parsed = parse_extlinux(result.stdout.decode(errors="replace"))
            if parsed is None:
                raise _bad(image, f"{path} in the boot partition names no kernel", option)
            kernel, initrd, append = parsed
            return BootEntry(
                offset, _absolute(kernel, path), initrd and _absolute(initrd, path), append
            )
        problems.append(path)
    raise _bad(image, f"the boot partition has no {' or '.join(problems)}", option)


def _absolute(name: str, conf: str) -> str:
    """extlinux paths are relative to the configuration file's folder unless absolute."""
    if name.startswith("/"):
        return name
    return str(Path(conf).parent / name)


def extract_boot_files(image: Path, entry: BootEntry, folder: Path) -> tuple[Path, Path | None]:
    """Copy the kernel and initramfs out of the image into `folder` (for a direct-boot board)."""
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path | None] = []
    for name, inside in (("image-kernel", entry.kernel), ("image-initrd", entry.initrd)):
        if inside is None:
            out.append(None)
            continue
        target = folder / name
        target.unlink(missing_ok=True)
        result = _debugfs(
            image, entry.offset, f"dump {shlex.quote(inside)} {shlex.quote(str(target))}"
        )
        if result.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
            raise InfraError(
                f"could not read {inside} out of OS image {image}: "
                f"{result.stderr.decode(errors='replace').strip()[-300:] or 'debugfs wrote nothing'}"
            )
        out.append(target)
    return out[0], out[1]  # type: ignore[return-value]


def deploy(image: Path, flow: str, folder: Path) -> DeployedImage:
    """The image as a board of boot flow `flow` uses it (see the module docstring)."""
    if flow == "u-boot":
        return DeployedImage(path=image)
    entry = read_boot_entry(image)
    kernel, initrd = extract_boot_files(image, entry, folder)
    return DeployedImage(path=image, kernel=kernel, initrd=initrd, append=entry.append)


def build_os_image(
    artifacts: ArchArtifacts, output: Path, *, append: str = "", size_mib: int = BOOT_DISK_MIB
) -> Path:
    """Write an OS image of the lab's build for `artifacts.arch`: kernel, initramfs and an
    extlinux.conf whose command line is the lab's plus `append`."""
    cmdline = " ".join(part for part in (artifacts.kernel_cmdline, append.strip()) if part)
    kernel_name = "Image" if artifacts.arch == "aarch64" else artifacts.kernel.name
    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = output.with_name(f".{output.name}.tmp")
    build_boot_disk(
        scratch,
        size_mib,
        {kernel_name: artifacts.kernel, "initrd.img": artifacts.initrd},
        extlinux_conf("harness", kernel_name, "initrd.img", cmdline),
    )
    scratch.replace(output)
    return output
