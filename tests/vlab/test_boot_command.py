"""qemu_command(): each board profile becomes the machine it describes, without booting it.

The boot tests prove the machines boot; these pin the parts of the command a
bench relies on (sockets, port forward, appended console log, reset
behaviour, per-run disks) and how a profile the virtual lab cannot realise is
reported.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.errors import InfraError, UserError
from harness.model.board import BoardProfile, find_board, load_board
from harness.vlab.artifacts import ArchArtifacts
from harness.vlab.build import build_lab
from harness.vlab.qemu_cmd import AGENT_PORT_NAME, boot_overlay, console_device, qemu_command

# Every test here reads the built lab's images: not part of the fast `-m "not qemu"` suite.
pytestmark = pytest.mark.qemu

BOARDS = Path(__file__).resolve().parents[2] / "boards"


@pytest.fixture(scope="module")
def lab() -> dict[str, ArchArtifacts]:
    return build_lab(("x86_64", "aarch64"))


def command(
    profile: BoardProfile, artifacts: ArchArtifacts, run_dir: Path, port: int = 40022
) -> list[str]:
    return qemu_command(
        profile,
        artifacts,
        run_dir=run_dir,
        console_socket=run_dir / "console.sock",
        ssh_port=port,
        qmp_socket=run_dir / "qmp.sock",
        agent_socket=run_dir / "agent.sock",
        console_log=run_dir / "console.log",
    )


def option_values(argv: list[str], option: str) -> list[str]:
    return [argv[index + 1] for index, value in enumerate(argv) if value == option]


def test_x86_64_board_command_has_its_cpus_memory_disks_nics_watchdog_uarts_and_sockets(
    lab: dict[str, ArchArtifacts], tmp_path: Path
) -> None:
    profile = find_board("qemu-x86_64", BOARDS)
    argv = command(profile, lab["x86_64"], tmp_path, port=40123)
    assert argv[0] == "qemu-system-x86_64"
    assert option_values(argv, "-smp") == ["2"] and option_values(argv, "-m") == ["256"]
    assert option_values(argv, "-kernel") == [str(lab["x86_64"].kernel)]
    assert "-no-reboot" not in argv  # a reset must reboot, as on a real board
    assert "i6300esb" in option_values(argv, "-device")
    assert option_values(argv, "-serial") == ["chardev:console0", "chardev:uart1"]
    console = next(
        value for value in option_values(argv, "-chardev") if value.startswith("socket,id=console0")
    )
    assert f"path={tmp_path / 'console.sock'}" in console and "logappend=on" in console
    # Two NICs, each on its own user network (eth1 reaches the lab host at 10.0.3.2); SSH is
    # forwarded to the first only.
    assert option_values(argv, "-netdev") == [
        "user,id=net0,hostfwd=tcp:127.0.0.1:40123-:22",
        "user,id=net1,net=10.0.3.0/24",
    ]
    nics = [d for d in option_values(argv, "-device") if d.startswith("virtio-net-pci,")]
    assert [nic.split(",")[2] for nic in nics] == ["mac=52:54:00:12:34:56", "mac=52:54:00:12:34:57"]
    assert option_values(argv, "-qmp") == [f"unix:{tmp_path / 'qmp.sock'},server=on,wait=off"]
    assert f"name={AGENT_PORT_NAME}" in " ".join(option_values(argv, "-device"))
    assert [(tmp_path / f"disk{i}.img").stat().st_size for i in (0, 1)] == [64 << 20, 32 << 20]
    assert (tmp_path / "usb0.img").stat().st_size == 16 << 20
    assert console_device(profile) == "ttyS0"


def test_x86_64_mini_board_command_has_two_disks_usb_storage_and_no_watchdog(
    lab: dict[str, ArchArtifacts], tmp_path: Path
) -> None:
    argv = command(find_board("qemu-x86_64-mini", BOARDS), lab["x86_64"], tmp_path)
    devices = option_values(argv, "-device")
    assert "i6300esb" not in devices
    assert "qemu-xhci,id=xhci" in devices
    assert any(device.startswith("usb-storage,") for device in devices)
    assert [(tmp_path / f"disk{i}.img").stat().st_size for i in (0, 1)] == [32 << 20, 48 << 20]
    assert (tmp_path / "usb0.img").stat().st_size == 16 << 20


def test_uboot_board_boots_u_boot_from_a_copy_on_write_overlay_of_the_cached_disk(
    lab: dict[str, ArchArtifacts], tmp_path: Path
) -> None:
    artifacts = lab["aarch64"]
    profile = find_board("qemu-aarch64-uboot", BOARDS)
    argv = command(profile, artifacts, tmp_path)
    assert argv[0] == "qemu-system-aarch64"
    assert option_values(argv, "-bios") == [str(artifacts.uboot_bios)]
    assert "-kernel" not in argv
    assert option_values(argv, "-cpu") == ["cortex-a57"]
    first_drive = option_values(argv, "-drive")[0]
    assert f"file={boot_overlay(tmp_path)}" in first_drive  # the boot disk is vda
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(boot_overlay(tmp_path))],
            capture_output=True,
            check=True,
        ).stdout
    )
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(artifacts.boot_disk)
    assert console_device(profile) == "ttyAMA0"
    # Its CAN pair fixture: two controllers on one emulated bus.
    assert option_values(argv, "-object") == ["can-bus,id=canbus0"]
    assert option_values(argv, "-device").count("kvaser_pci,canbus=canbus0") == 2


def test_disks_of_a_run_keep_their_contents_when_the_command_is_built_again(
    lab: dict[str, ArchArtifacts], tmp_path: Path
) -> None:
    profile = find_board("qemu-x86_64", BOARDS)
    command(profile, lab["x86_64"], tmp_path)
    with (tmp_path / "disk0.img").open("r+b") as disk:
        disk.write(b"data a test wrote")
    command(profile, lab["x86_64"], tmp_path)  # a power cycle relaunches QEMU with a new command
    assert (tmp_path / "disk0.img").read_bytes().startswith(b"data a test wrote")


def test_extra_uart_on_an_aarch64_board_is_a_user_error_naming_file_line_and_field(
    lab: dict[str, ArchArtifacts], tmp_path: Path
) -> None:
    text = (
        (BOARDS / "qemu-aarch64-uboot.yaml")
        .read_text()
        .replace("    smp: 2\n", "    smp: 2\n    extra_uart: true\n")
    )
    profile_file = tmp_path / "arm-two-uarts.yaml"
    profile_file.write_text(text)
    line = text.splitlines().index("    extra_uart: true") + 1
    with pytest.raises(UserError) as caught:
        command(load_board(profile_file), lab["aarch64"], tmp_path / "run")
    message = str(caught.value)
    assert f"{profile_file}:{line}" in message and "lab.virtual.extra_uart" in message
    assert caught.value.exit_code == 2


def test_artifacts_of_the_wrong_architecture_are_refused(
    lab: dict[str, ArchArtifacts], tmp_path: Path
) -> None:
    with pytest.raises(InfraError, match="aarch64 but the artifacts given are for x86_64"):
        command(find_board("qemu-aarch64-uboot", BOARDS), lab["x86_64"], tmp_path)


def test_an_aarch64_board_with_direct_boot_gets_the_kernel_and_initrd_without_u_boot(
    lab: dict[str, ArchArtifacts], tmp_path: Path
) -> None:
    text = (
        (BOARDS / "qemu-aarch64-uboot.yaml")
        .read_text()
        .replace("  flow: u-boot\n", "  flow: direct\n")
    )
    profile_file = tmp_path / "arm-direct.yaml"
    profile_file.write_text(text)
    artifacts = lab["aarch64"]
    argv = command(load_board(profile_file), artifacts, tmp_path / "run")
    assert "-bios" not in argv
    assert option_values(argv, "-kernel") == [str(artifacts.kernel)]
    assert option_values(argv, "-initrd") == [str(artifacts.initrd)]
    assert "console=ttyAMA0,115200" in option_values(argv, "-append")[0]
    assert not boot_overlay(tmp_path / "run").exists()


def test_an_os_image_backs_the_uboot_boot_disk_and_boots_a_direct_board_from_its_extlinux(
    lab: dict[str, ArchArtifacts], tmp_path: Path
) -> None:
    """`--image` on a virtual board (harness/vlab/osimage.py): U-Boot finds the image as vda;
    a direct-boot board is given the image's kernel, initrd and command line, and the image
    as its last disk, after the profile's own."""
    from harness.vlab.osimage import deploy
    from tests.run.image_helpers import small_os_image

    image = small_os_image(tmp_path / "os.img", tmp_path, append="console=ttyS0 harness.m=1")
    uboot = find_board("qemu-aarch64-uboot", BOARDS)
    run_dir = tmp_path / "uboot"
    qemu_command(
        uboot, lab["aarch64"], run_dir=run_dir, console_socket=run_dir / "c.sock",
        ssh_port=40022, qmp_socket=run_dir / "q.sock", agent_socket=run_dir / "a.sock",
        console_log=run_dir / "console.log", image=deploy(image, "u-boot", run_dir / "image"),
    )  # fmt: skip
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(boot_overlay(run_dir))],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(info.stdout)["backing-filename"] == str(image)

    direct = find_board("qemu-x86_64", BOARDS)
    run_dir = tmp_path / "direct"
    argv = qemu_command(
        direct, lab["x86_64"], run_dir=run_dir, console_socket=run_dir / "c.sock",
        ssh_port=40022, qmp_socket=run_dir / "q.sock", agent_socket=run_dir / "a.sock",
        console_log=run_dir / "console.log", image=deploy(image, "direct", run_dir / "image"),
    )  # fmt: skip
    kernel = Path(option_values(argv, "-kernel")[0])
    assert kernel.read_bytes() == b"kernel " * 1000
    assert option_values(argv, "-append") == ["console=ttyS0 harness.m=1"]
    virtio = [d for d in option_values(argv, "-drive") if ",id=vdisk" in d]
    assert virtio[0].endswith(f"file={run_dir / 'disk0.img'}")
    last = len(direct.lab.virtual.disks)  # after the profile's disks, so their names stay
    assert virtio[-1] == f"if=none,id=vdisk{last},format=qcow2,file={boot_overlay(run_dir)}"
