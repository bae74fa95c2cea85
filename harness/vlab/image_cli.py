"""`harness lab image`: an OS image of the virtual lab's build, for `harness certify --image`.

The image has the layout harness/vlab/osimage.py describes (the one an SD card for an arm64
board has), holding the lab's kernel and initramfs for the board's architecture. `--append`
adds words to the kernel command line in its extlinux.conf: a build tag, or a marker that
shows on the board (/proc/cmdline) that it booted this image and not the lab's default.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from harness.errors import Location, UserError


@click.command("image")
@click.option(
    "--board",
    "board_ref",
    default="qemu-x86_64",
    show_default=True,
    help="QEMU board the image is for (a profile path or a name in boards/)",
)
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="image file to write"
)
@click.option(
    "--append",
    default="",
    help="words added to the kernel command line in the image's extlinux.conf",
)
def image(board_ref: str, output: Path, append: str) -> None:
    """Write an OS image (raw disk: MBR, ext2 boot partition, extlinux) of the lab's build."""
    from harness.vlab.boardhost import board_kind, resolve_board
    from harness.vlab.build import build_lab
    from harness.vlab.osimage import build_os_image

    profile = resolve_board(board_ref)
    if board_kind(profile) != "qemu":
        raise UserError(
            f"board {profile.name} is a simulated board, which boots no OS image",
            Location(field="--board"),
        )
    if output.is_dir():
        raise UserError(
            "is a directory; give the image file to write", Location(str(output), None, "--output")
        )
    if "\n" in append:
        raise UserError("the kernel command line is one line", Location(field="--append"))
    arch = profile.identity.arch
    artifacts = build_lab([arch])[arch]
    build_os_image(artifacts, output, append=append)
    digest = hashlib.sha256()
    with output.open("rb") as written:
        while chunk := written.read(4 << 20):
            digest.update(chunk)
    size_mib = output.stat().st_size / (1 << 20)
    click.echo(f"{output}: {arch} OS image, {size_mib:.0f} MiB, sha256 {digest.hexdigest()}")
