"""The OS image under test (`--image FILE`): checked, named and hashed before any board is touched.

A certificate must name exactly what was certified, so the image's sha256 is taken from the
file the user gave, once, before it is deployed; run.json, the certificate and the report
carry that hash. The file is opened through `open_input`, so a FIFO (which would block the
harness forever), a directory, a missing or an unreadable file is bad input (exit 2) named
in one paragraph, and nothing has been started or flashed when that happens.

How the image reaches the board is the lab's business: labgrid's flashing drivers on a
physical unit (harness/lab/flash.py), the board's boot disk on a virtual one
(harness/vlab/osimage.py).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import click

from harness.errors import Location, UserError
from harness.model.board import BoardProfile
from harness.model.records import ImageInfo
from harness.userfile import open_input

_CHUNK = 4 << 20


@dataclass(frozen=True)
class OsImage:
    """An image file as it was when the run started: where it is, its name, size and sha256."""

    path: Path
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name


def check_image(file: Path, option: str = "--image") -> OsImage:
    """Read `file` once to hash it; a UserError (exit 2) names the file when it is no image file."""
    where = Location(str(file), None, option)
    try:
        handle = open_input(file)
    except FileNotFoundError:
        raise UserError("no such OS image file", where) from None
    except IsADirectoryError:
        raise UserError("is a directory; give the OS image file itself", where) from None
    except PermissionError:
        raise UserError("the OS image file is not readable (permission denied)", where) from None
    except UserError as exc:  # a FIFO
        raise UserError(f"{exc.message}: give the OS image as a regular file", where) from None
    except OSError as exc:
        raise UserError(f"cannot open the OS image: {exc.strerror or exc}", where) from None
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # /dev/zero would never end
        handle.close()
        raise UserError("is not a regular file; give the OS image file itself", where)
    digest = hashlib.sha256()
    size = 0
    try:
        with handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise UserError(f"cannot read the OS image: {exc.strerror or exc}", where) from None
    if size == 0:
        raise UserError("the OS image file is empty", where)
    return OsImage(path=file.resolve(), sha256=digest.hexdigest(), size=size)


def image_info(image: OsImage, deployed_by: str) -> ImageInfo:
    """run.json's record of the image (harness/model/records.py `ImageInfo`)."""
    return ImageInfo(name=image.name, sha256=image.sha256, size=image.size, deployed_by=deployed_by)


def check_resumed_image(run_id: str, recorded: ImageInfo | None, image: OsImage | None) -> None:
    """A resumed run deploys the image of its start again (someone may have had the board
    meanwhile), so --image must name the same file content, or be absent as it was."""
    had = recorded.sha256 if recorded is not None else None
    if had == (image.sha256 if image is not None else None):
        return
    then = f"image {recorded.name} (sha256 {had[:12]}…)" if recorded and had else "no --image"
    now = f"{image.name} (sha256 {image.sha256[:12]}…)" if image is not None else "no --image"
    raise UserError(
        f"run {run_id} started with {then}, and this resume gives {now}: give the --image "
        "the run started with (it is deployed again before the run continues)",
        Location(field="--image"),
    )


def deploy_on_unit(image: OsImage | None, env_file: Path, target: str) -> ImageInfo | None:
    """Write the image to a physical unit through labgrid's flashing drivers; exit 2 before
    anything is touched when the environment has none (harness/lab/flash.py)."""
    if image is None:
        return None
    from harness.lab.flash import check_flashing, flash_image

    check_flashing(env_file, target)
    click.echo(f"writing OS image {image.name} to the unit …", err=True)
    return image_info(image, flash_image(env_file, target, image.path).describe())


def check_virtual_image(profile: BoardProfile, image: OsImage | None) -> ImageInfo | None:
    """The record of an image a virtual board will boot; exit 2 before the board starts when
    the board cannot take one or the file is not an OS image (harness/vlab/osimage.py)."""
    if image is None:
        return None
    from harness.vlab.boardhost import board_kind
    from harness.vlab.osimage import read_boot_entry

    if board_kind(profile) != "qemu":
        raise UserError(
            f"board {profile.name} is a simulated board without disks; an OS image can be "
            "deployed on the QEMU boards and on physical units",
            Location(field="--image"),
        )
    read_boot_entry(image.path)
    how = (
        "virtual board: the image is its boot disk (U-Boot distro boot)"
        if profile.boot.flow == "u-boot"
        else "virtual board: kernel, initrd and command line from the image's extlinux.conf; "
        "the image is the board's last disk"
    )
    return image_info(image, how)
