"""The `boot:` section of a board profile: bootloaders as data, with file:line:field errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.model.board import load_board

PROFILE = textwrap.dedent(
    """\
    schema: 1
    kind: board
    name: demo-board
    identity:
      vendor: ACME
      model: Pi-ish
      revision: "1.2"
      soc: i.MX8M
      arch: aarch64
      compatible: acme,pi-ish
    boot:
    {boot}
    inventory:
      cpus: 4
      memory_mib: 2048
    lab:
      {lab}
    """
)


def write(tmp_path: Path, boot: str, lab: str = "env: lab/acme.yaml") -> Path:
    file = tmp_path / "board.yaml"
    file.write_text(PROFILE.format(boot=textwrap.indent(boot, "  "), lab=lab))
    return file


def test_a_barebox_board_gets_barebox_prompts_and_can_override_its_boot_command(
    tmp_path: Path,
) -> None:
    board = load_board(write(tmp_path, "flow: barebox\nbootloader:\n  boot_command: boot mmc1"))
    loader = board.boot.loader
    assert loader is not None
    assert loader.name == "barebox"
    assert loader.boot_command == "boot mmc1"
    assert "barebox@" in loader.prompt
    assert loader.on_autoboot == "wait"


def test_a_profile_written_with_the_old_top_level_bootloader_keys_still_loads(
    tmp_path: Path,
) -> None:
    old = 'flow: u-boot\nbootloader_prompt: "U-Boot> "\nboot_command: run distro_bootcmd'
    loader = load_board(write(tmp_path, old)).boot.loader
    assert loader is not None
    assert (loader.prompt, loader.boot_command) == ("U-Boot> ", "run distro_bootcmd")


def test_a_direct_boot_board_has_no_bootloader_to_drive(tmp_path: Path) -> None:
    assert load_board(write(tmp_path, "flow: direct")).boot.loader is None


def test_a_bad_bootloader_regex_names_file_line_and_field(tmp_path: Path) -> None:
    file = write(tmp_path, "flow: u-boot\nbootloader:\n  prompt: '=> ('")
    with pytest.raises(UserError) as error:
        load_board(file)
    message = str(error.value)
    assert "board.yaml" in message
    assert "boot.bootloader.prompt" in message
    assert "regular expression" in message


def test_harness_check_refuses_an_unknown_boot_flow_with_exit_2(tmp_path: Path) -> None:
    file = write(tmp_path, "flow: coreboot")
    done = subprocess.run(
        [sys.executable, "-m", "harness", "check", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "boot.flow" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_the_virtual_lab_refuses_a_bootloader_it_cannot_boot(tmp_path: Path) -> None:
    lab = "virtual: {machine: virt, cpu: cortex-a57}"
    with pytest.raises(UserError) as error:
        load_board(write(tmp_path, "flow: grub", lab=lab))
    assert "boot.flow" in str(error.value)
