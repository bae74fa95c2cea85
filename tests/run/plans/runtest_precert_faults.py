"""Python steps for the pre-certification failure paths: a disk that corrupts, a dead watchdog.

The board is found through the virtual lab (HARNESS_LAB_DIR + HARNESS_TEST_BOARD, set by the
test), as in runtest_faults. Both faults are real: the disk image QEMU serves is altered under
the running guest between the write and the read-back, and QEMU's watchdog is told to do nothing
when it expires (the bench's `watchdog-inert` fault), so the board really stays up.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from harness.run.checks.watchdog import fires_and_resets
from harness.run.context import TestContext

MIB = 1024 * 1024
# Where in the test area the byte is flipped; cmp reports it 1-based.
CORRUPT_AT = 3 * 4096 + 17


def _board() -> Any:
    from harness.vlab.handle import find_running

    return find_running(os.environ["HARNESS_TEST_BOARD"], Path(os.environ["HARNESS_LAB_DIR"]))


def corrupt_test_area(ctx: TestContext) -> None:
    """Flip one byte of what write_pattern just wrote, in the raw image behind the device.

    The virtual disks carry the serial `vlab-vdN` (N counts QEMU's virtio disks), and on a
    board that boots directly they are the bench's `diskN.img` files.
    """
    state = ctx.state["storage"]
    if ctx.profile.boot.flow != "direct":
        ctx.fail("this fault step knows the disk layout of directly booting QEMU boards only")
    serial = ctx.run(f"cat /sys/block/{state['dev']}/serial").stdout.strip()
    match = re.fullmatch(r"vlab-vd(\d+)", serial)
    if match is None:
        ctx.fail(f"/dev/{state['dev']} is not a virtual lab disk (serial {serial!r})")
    image = Path(_board().state().state_dir) / f"disk{match.group(1)}.img"
    position = state["offset"] * MIB + CORRUPT_AT
    with image.open("r+b") as disk:
        disk.seek(position)
        byte = disk.read(1)
        disk.seek(position)
        disk.write(bytes([byte[0] ^ 0xFF]))
        disk.flush()
        os.fsync(disk.fileno())
    ctx.log.info("flipped byte %d of %s under the running board", position, image.name)


def watchdog_that_does_not_reset(ctx: TestContext) -> None:
    """The precert watchdog check on a board whose watchdog expires without resetting it."""
    board = _board()
    board.fault("watchdog-inert")
    try:
        fires_and_resets(ctx)
    finally:
        board.fault("watchdog-live")
