"""`--image FILE`: bad images and labs that cannot deploy one exit before any board is touched;
an OS image for a virtual board is read the way U-Boot's distro boot reads it.

The run that deploys an image and certifies the board is tests/run/test_image_qemu.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.errors import UserError
from harness.model.records import RunRecord
from harness.run.image import check_resumed_image, image_info
from harness.run.place import place_environment
from harness.vlab.osimage import extract_boot_files, parse_extlinux, read_boot_entry
from tests.run.conftest import PLANS, REPO
from tests.run.image_helpers import small_os_image

BOARD = str(REPO / "boards" / "qemu-x86_64.yaml")
PLAN = str(PLANS / "all-pass.yaml")


def run_harness(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0), capsys.readouterr().err


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder, and a lab folder of our own in which no board may appear."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    return tmp_path


def _no_board_started(folder: Path) -> None:
    lab = folder / "lab"
    assert not lab.exists() or not any(lab.iterdir()), "a virtual board was started"
    assert not (folder / "results").exists() or not any((folder / "results").iterdir())


def _make(kind: str, folder: Path) -> str:
    path = folder / f"image-{kind}"
    if kind == "missing":
        return str(path)
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "character-device":
        return "/dev/zero"
    elif kind == "not-a-disk-image":
        path.write_bytes(b"PK\x03\x04 a zip archive, not a disk\n" * 64)
    elif kind == "no-file-system":
        small_os_image(path, folder)
        with path.open("r+b") as disk:  # wipe the ext2 superblock of the boot partition
            disk.seek(1024 * 1024 + 1024)
            disk.write(b"\0" * 1024)
    elif kind == "no-extlinux":
        small_os_image(path, folder)
        subprocess.run(
            ["debugfs", "-w", "-R", "rm /extlinux/extlinux.conf", f"{path}?offset={1 << 20}"],
            capture_output=True,
            check=True,
        )
    return str(path)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        pytest.param("missing", "no such OS image file", id="missing"),
        pytest.param("directory", "is a directory; give the OS image file itself", id="directory"),
        pytest.param(
            "fifo",
            "is a pipe (FIFO), expected a file: give the OS image as a regular file",
            id="fifo",
        ),
        pytest.param("empty", "the OS image file is empty", id="empty"),
        pytest.param("character-device", "is not a regular file", id="character-device"),
        pytest.param(
            "not-a-disk-image",
            "no DOS partition table (MBR) at the start of the file",
            id="not-a-disk-image",
        ),
        pytest.param(
            "no-file-system",
            "the boot partition holds no ext2/3/4 file system",
            id="no-file-system",
        ),
        pytest.param(
            "no-extlinux",
            "the boot partition has no /extlinux/extlinux.conf or /boot/extlinux/extlinux.conf",
            id="no-extlinux",
        ),
    ],
)
def test_a_bad_image_exits_2_naming_it_before_any_board_starts(
    kind: str, words: str, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _make(kind, isolated)
    code, err = run_harness(
        ["certify", "--board", BOARD, "--plan", PLAN, "--image", image, "--no-submit"], capsys
    )
    assert code == 2, err
    assert f"{image}, field '--image': {words}" in err
    assert "Traceback" not in err
    _no_board_started(isolated)


def test_an_image_for_the_simulated_board_exits_2(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = small_os_image(isolated / "os.img", isolated)
    code, err = run_harness(
        ["run", "--board", "sim", "--plan", PLAN, "--image", str(image)], capsys
    )
    assert code == 2, err
    assert "simulated board without disks" in err
    _no_board_started(isolated)


def _env(folder: Path, drivers: dict[str, object], resources: dict[str, object]) -> Path:
    env = folder / "unit-env.yaml"
    targets = {
        "main": {
            "resources": {"RawSerialPort": {"port": "/dev/null", "speed": 115200}, **resources},
            "drivers": {"SerialDriver": {}, **drivers},
        }
    }
    env.write_text(yaml.safe_dump({"targets": targets}))
    return env


def test_a_unit_without_flashing_drivers_exits_2_naming_the_env_and_what_is_missing(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = small_os_image(isolated / "os.img", isolated)
    env = _env(isolated, {}, {})
    code, err = run_harness(
        ["run", "--board", BOARD, "--plan", PLAN, "--env", str(env), "--image", str(image)], capsys
    )
    assert code == 2, err
    assert f"{env}, field 'targets.main.drivers': --image needs labgrid's flashing drivers" in err
    for missing in ("USBStorageDriver", "USBSDMuxDriver", "a power driver"):
        assert missing in err
    assert "Traceback" not in err
    _no_board_started(isolated)


def test_a_unit_whose_sd_mux_is_not_plugged_in_is_an_infrastructure_error_before_any_test(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The env has labgrid's SD-mux drivers and a power switch; labgrid finds no SD-mux on this
    host (it waits 5 s for it), so nothing is flashed and no run folder is made: exit 3."""
    image = small_os_image(isolated / "os.img", isolated)
    marker = isolated / "power.log"
    env = _env(
        isolated,
        {
            "USBSDMuxDriver": {},
            "USBStorageDriver": {},
            "ExternalPowerDriver": {
                "cmd_on": f"sh -c 'echo on >> {marker}'",
                "cmd_off": f"sh -c 'echo off >> {marker}'",
            },
        },
        {"USBSDMuxDevice": {"match": {"@ID_PATH": "pci-0000:00:14.0-usb-0:9.9"}}},
    )
    code, err = run_harness(
        ["run", "--board", BOARD, "--plan", PLAN, "--env", str(env), "--image", str(image)], capsys
    )
    assert code == 3, err
    assert "cannot reach the flashing hardware of target 'main'" in err
    assert "USBSDMuxDevice" in err
    assert not marker.exists(), "the unit's power was switched although nothing could be flashed"
    _no_board_started(isolated)


def test_a_place_that_exports_an_sd_mux_gets_the_drivers_that_flash_it() -> None:
    drivers = place_environment("rpi4-07", {"NetworkSerialPort", "NetworkUSBSDMuxDevice"})[
        "targets"
    ]["main"]["drivers"]
    assert {"SerialDriver", "USBSDMuxDriver", "USBStorageDriver"} <= set(drivers)
    plain = place_environment("rpi4-08", {"NetworkSerialPort"})["targets"]["main"]["drivers"]
    assert "USBStorageDriver" not in plain


def test_the_boot_entry_of_an_image_is_read_as_distro_boot_reads_it(tmp_path: Path) -> None:
    image = small_os_image(tmp_path / "os.img", tmp_path, append="console=ttyS0 harness.mark=7")
    entry = read_boot_entry(image)
    assert (entry.kernel, entry.initrd) == ("/vmlinux", "/initrd.img")
    assert entry.append == "console=ttyS0 harness.mark=7"
    kernel, initrd = extract_boot_files(image, entry, tmp_path / "out")
    assert kernel.read_bytes() == b"kernel " * 1000
    assert initrd is not None and initrd.read_bytes() == b"initrd " * 500


def test_extlinux_default_label_wins_and_linux_is_a_synonym_for_kernel() -> None:
    text = (
        "# written by hand\nDEFAULT second\nLABEL first\n  KERNEL /a\n"
        "LABEL second\n  LINUX b/Image\n  INITRD /i1,/i2\n  APPEND root=/dev/mmcblk0p2 rw\n"
    )
    assert parse_extlinux(text) == ("b/Image", "/i1", "root=/dev/mmcblk0p2 rw")
    assert parse_extlinux("label only\n  append quiet\n") is None


def test_a_resumed_run_must_deploy_the_image_it_started_with(tmp_path: Path) -> None:
    from harness.run.image import check_image

    first = small_os_image(tmp_path / "a.img", tmp_path)
    other = tmp_path / "b.img"
    other.write_bytes(first.read_bytes()[:-1] + b"x")
    started = image_info(check_image(first), "test")
    check_resumed_image("r1", started, check_image(first))  # the same content: fine
    with pytest.raises(UserError, match=r"started with image a\.img .* gives b\.img"):
        check_resumed_image("r1", started, check_image(other))
    with pytest.raises(UserError, match="gives no --image"):
        check_resumed_image("r1", started, None)
    check_resumed_image("r1", None, None)


def test_run_json_without_an_image_reads_and_writes_back_unchanged() -> None:
    old = {
        "schema": 1,
        "run_id": "20261128T071500Z-qemu-x86_64-3f2a",
        "harness_version": "0.1",
        "status": "finished",
        "plan": {"id": "p", "version": "1", "sha256": "0" * 64, "title": "t"},
        "board": dict.fromkeys(("name", "vendor", "model", "revision", "soc", "compatible"), "x")
        | {"arch": "x86_64", "profile_sha256": ""},
        "lab": {"kind": "env", "name": "e", "host": "h", "operator": "o"},
        "software": {"kernel_release": "6.1", "os_release": "Debian 12"},
        "started_at": "2026-11-28T07:15:00Z",
        "verdict": "certified",
        "counts": {"pass": 1, "fail": 0, "error": 0, "skip": 0, "waived": 0, "not-run": 0},
    }
    record = RunRecord.model_validate(old)
    assert record.image is None
    assert "image" not in record.to_json()


def test_an_unreadable_image_exits_2(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file: no unreadable file can be made")
    image = small_os_image(isolated / "os.img", isolated)
    image.chmod(stat.S_IWUSR)
    code, err = run_harness(
        ["run", "--board", BOARD, "--plan", PLAN, "--image", str(image)], capsys
    )
    assert code == 2, err
    assert "not readable (permission denied)" in err


def test_a_fan_out_with_a_bad_image_exits_2_once_before_holding_any_place(
    isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LG_COORDINATOR", "127.0.0.1:9")  # nothing listens: no place is held
    missing = isolated / "nowhere.img"
    code, err = run_harness(
        ["certify", "--places", "board=qemu-*", "--plan", PLAN, "--image", str(missing)], capsys
    )
    assert code == 2, err
    assert f"{missing}, field '--image': no such OS image file" in err
    assert err.count("no such OS image file") == 1
    _no_board_started(isolated)
