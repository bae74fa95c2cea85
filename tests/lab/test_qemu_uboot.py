"""Lab access on the QEMU aarch64 board that boots through U-Boot."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from harness.lab.board import Board
from harness.lab.errors import BoardCrashed
from tests.lab.conftest import began, opened_board

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def vm(qemu_board):
    return qemu_board("qemu-aarch64-uboot")


@pytest.fixture(scope="module")
def board(vm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    with opened_board(
        vm, tmp_path_factory.mktemp("qemu-uboot") / "console.log", login=False
    ) as opened:
        yield opened


def test_boot_goes_through_the_bootloader_to_a_shell(board: Board) -> None:
    seconds = board.boot()
    assert seconds > 0
    identity = board.software_identity()
    assert identity.bootloader is not None and identity.bootloader.startswith("U-Boot 20")
    assert identity.kernel_release.endswith("arm64")
    assert board.console.run("uname -m").stdout == "aarch64\n"
    assert board.crash_events == []  # the deliberate boot's banners are not a reset
    log = board.log.path.read_text()  # type: ignore[union-attr]
    assert re.search(r"state: bootloader -> booting \(kernel\)", log)


def test_an_unexpected_reset_shows_as_the_bootloader_banner_again(
    board: Board, vm, on_console
) -> None:
    board.ensure_shell()
    marker, shown = began("cmd")
    on_console(vm, shown, lambda: vm.fault("reset"))
    with pytest.raises(BoardCrashed) as crash:
        board.console.run(f"{marker}; sleep 600", timeout=150)
    assert crash.value.kind == "unexpected-reset"
    assert "U-Boot" in crash.value.excerpt
    board.ensure_shell()
    assert board.console.run("echo back").stdout == "back\n"
