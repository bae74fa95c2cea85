"""`build_lab` and `harness lab build`: images from Debian packages, cached, never half-written.

The images are inspected with independent tools (cpio, debugfs, ssh-keygen),
not with the code that wrote them, so a bug in our writers cannot hide itself.
The default cache is used on purpose: the cold build is paid once per machine.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main as harness_main
from harness.errors import InfraError, UserError
from harness.vlab.artifacts import ArchArtifacts
from harness.vlab.build import build_lab, cache_root
from harness.vlab.build_cli import build as build_command

MISSING = "harness-no-such-package"


def _snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    return {
        path.name: (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(directory.iterdir())
    }


def _initramfs_names(initrd: Path) -> set[str]:
    listing = subprocess.run(
        ["cpio", "-it", "--quiet"],
        input=gzip.decompress(initrd.read_bytes()),
        capture_output=True,
        check=True,
    )
    return set(listing.stdout.decode().split())


def _initramfs_file(initrd: Path, name: str) -> str:
    extracted = subprocess.run(
        ["cpio", "-i", "--quiet", "--to-stdout", name],
        input=gzip.decompress(initrd.read_bytes()),
        capture_output=True,
        check=True,
    )
    return extracted.stdout.decode()


@pytest.fixture(scope="module")
def lab() -> dict[str, ArchArtifacts]:
    return build_lab(("x86_64", "aarch64"))


@pytest.mark.qemu  # builds or reads the lab's images
def test_second_build_is_a_cache_hit_with_unchanged_files(lab: dict[str, ArchArtifacts]) -> None:
    before = {arch: _snapshot(artifacts.directory) for arch, artifacts in lab.items()}
    seen: list[tuple[str, str]] = []
    again = build_lab(("x86_64", "aarch64"), lambda arch, message: seen.append((arch, message)))
    assert {arch: artifacts.status for arch, artifacts in again.items()} == {
        "x86_64": "cached",
        "aarch64": "cached",
    }
    assert ("x86_64", "cached") in seen and ("aarch64", "cached") in seen
    assert not any(message.startswith(("download", "unpack")) for _arch, message in seen)
    for arch, artifacts in again.items():
        assert artifacts.directory == lab[arch].directory
        assert _snapshot(artifacts.directory) == before[arch]
        assert artifacts.directory.parent.parent == cache_root() / "lab"


@pytest.mark.qemu  # builds or reads the lab's images
@pytest.mark.parametrize(
    ("arch", "libdir", "loader", "console"),
    [
        ("x86_64", "lib/x86_64-linux-gnu", "lib64/ld-linux-x86-64.so.2", "ttyS0"),
        ("aarch64", "lib/aarch64-linux-gnu", "lib/ld-linux-aarch64.so.1", "ttyAMA0"),
    ],
)
def test_initramfs_holds_busybox_dropbear_with_its_libraries_sftp_server_and_modules(
    lab: dict[str, ArchArtifacts], arch: str, libdir: str, loader: str, console: str
) -> None:
    artifacts = lab[arch]
    names = _initramfs_names(artifacts.initrd)
    expected = {
        "init", "bin/busybox", "bin/sh", "dev/console", "sbin/harness-agent",
        "usr/sbin/dropbear", "usr/lib/sftp-server", "usr/lib/openssh/sftp-server", loader,
        f"{libdir}/libc.so.6", f"{libdir}/libcrypt.so.1", f"{libdir}/libtomcrypt.so.1",
        f"{libdir}/libtommath.so.1", f"{libdir}/libz.so.1", f"{libdir}/libgmp.so.10",
        "etc/dropbear/dropbear_ed25519_host_key", "etc/shadow", "lib/modules/load-order",
    }  # fmt: skip
    assert expected <= names
    order = [
        Path(line).name
        for line in _initramfs_file(artifacts.initrd, "lib/modules/load-order").split()
    ]
    for dependency, user in [
        ("virtio_pci_modern_dev.ko", "virtio_pci.ko"),
        ("usbcore.ko", "usb-storage.ko"),
        ("scsi_mod.ko", "sd_mod.ko"),
    ]:
        assert order.index(dependency) < order.index(user)
    assert {
        "virtio_net.ko",
        "virtio_blk.ko",
        "virtio_console.ko",
        "xhci-pci.ko",
        "i6300esb.ko",
    } <= set(order)
    if arch == "aarch64":  # the CAN pair of qemu-aarch64-uboot: drivers and userland
        assert order.index("sja1000.ko") < order.index("kvaser_pci.ko")
        assert {"can-raw.ko", "can-dev.ko"} <= set(order)
        assert {"sbin/ip", "usr/bin/cansend", "usr/bin/candump", f"{libdir}/libmnl.so.0"} <= names
        assert "iproute2" in artifacts.packages and "can-utils" in artifacts.packages
    assert f"getty -L 115200 {console}" in _initramfs_file(artifacts.initrd, "sbin/console-getty")
    shadow = _initramfs_file(artifacts.initrd, "etc/shadow")
    assert shadow.startswith("root:$6$")
    assert artifacts.console_device == console
    assert artifacts.packages  # exact versions recorded for the evidence trail
    assert any(name.startswith("linux-image-") for name in artifacts.packages)


@pytest.mark.qemu  # builds or reads the lab's images
def test_host_key_fingerprint_matches_what_ssh_keygen_computes(
    lab: dict[str, ArchArtifacts],
) -> None:
    for artifacts in lab.values():
        public = artifacts.directory / "host_key.pub"
        assert public.read_text().split()[:2] == artifacts.host_key_line.split()
        shown = subprocess.run(
            ["ssh-keygen", "-lf", str(public)], capture_output=True, text=True, check=True
        )
        assert shown.stdout.split()[1] == artifacts.host_key_fingerprint


@pytest.mark.qemu  # builds or reads the lab's images
def test_aarch64_boot_disk_is_a_bootable_partition_with_extlinux_kernel_and_initrd(
    lab: dict[str, ArchArtifacts], tmp_path: Path
) -> None:
    artifacts = lab["aarch64"]
    assert artifacts.boot_disk is not None and artifacts.uboot_bios is not None
    disk = artifacts.boot_disk.read_bytes()
    assert disk[510:512] == b"\x55\xaa"
    entry = disk[446:462]
    assert entry[0] == 0x80 and entry[4] == 0x83  # bootable, Linux
    start = int.from_bytes(entry[8:12], "little") * 512
    partition = tmp_path / "part.img"
    partition.write_bytes(disk[start:])
    listing = subprocess.run(
        ["debugfs", "-R", "ls -l /", str(partition)], capture_output=True, text=True, check=True
    )
    assert "Image" in listing.stdout and "initrd.img" in listing.stdout
    conf = subprocess.run(
        ["debugfs", "-R", "cat /extlinux/extlinux.conf", str(partition)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "kernel /Image" in conf and "initrd /initrd.img" in conf
    assert "console=ttyAMA0,115200" in conf


def test_missing_package_is_reported_with_its_name_and_apts_message(tmp_path: Path) -> None:
    with pytest.raises(InfraError) as caught:
        build_lab(("x86_64",), overrides={"kernel": MISSING}, cache=tmp_path)
    message = str(caught.value)
    assert MISSING in message and "amd64" in message
    assert "No packages found" in message  # apt's own words
    assert not list((tmp_path / "lab").glob("*/x86_64"))


def test_missing_package_from_the_command_line_exits_3_with_one_paragraph(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        harness_main(["lab", "build", "--arch", "x86_64", "--package", f"kernel={MISSING}"])
    assert caught.value.code == 3
    err = capsys.readouterr().err
    assert f"harness: Debian package '{MISSING}'" in err
    assert "Traceback" not in err


def test_malformed_package_option_and_unknown_role_are_user_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        harness_main(["lab", "build", "--package", "kernel"])
    assert caught.value.code == 2
    assert "ROLE=DEBIAN-PACKAGE" in capsys.readouterr().err
    with pytest.raises(UserError, match="unknown package role"):
        build_lab(("x86_64",), overrides={"bootloader": "grub"})


@pytest.mark.qemu  # builds or reads the lab's images
def test_build_command_reports_cached_images(lab: dict[str, ArchArtifacts]) -> None:
    result = CliRunner().invoke(build_command, ["--arch", "x86_64", "--json"])
    assert result.exit_code == 0, result.output
    assert '"status": "cached"' in result.output
    assert str(lab["x86_64"].directory) in result.output


def _path_without(tmp_path: Path, missing: set[str]) -> str:
    """A PATH with every host command except `missing`: a host without those Debian packages."""
    farm = tmp_path / "bin"
    farm.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        folder = Path(directory)
        if not folder.is_dir():
            continue
        for tool in folder.iterdir():
            if (
                tool.name not in missing
                and not (farm / tool.name).exists()
                and os.access(tool, os.X_OK)
            ):
                (farm / tool.name).symlink_to(tool)
    return str(farm)


@pytest.mark.qemu  # builds or reads the lab's images
def test_killed_build_leaves_no_cache_entry_and_a_host_without_dropbear_or_busybox_still_completes_it(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "debs").symlink_to(cache_root() / "debs")  # the packages are already downloaded
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from harness.vlab.build import build_lab\n"
        "build_lab(('x86_64',), lambda arch, msg: print(msg, flush=True), cache=Path(sys.argv[1]))\n"
    )
    builder = subprocess.Popen(
        [sys.executable, "-c", script, str(cache)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert builder.stdout is not None
    for line in builder.stdout:
        if line.startswith("unpack linux-image"):
            os.killpg(builder.pid, signal.SIGKILL)  # mid-way through unpacking the kernel
            break
    builder.wait()
    assert builder.returncode == -signal.SIGKILL
    assert not list((cache / "lab").glob("*/x86_64"))
    assert list(
        (cache / "lab").glob("*/.build-x86_64-*")
    )  # the torn staging folder, never the entry

    # The rebuild runs where dropbearkey and busybox are not installed: the
    # unpacked amd64 packages stand in for them.
    env = {**os.environ, "PATH": _path_without(tmp_path, {"dropbearkey", "busybox"})}
    rebuild = subprocess.run(
        [sys.executable, "-c", script, str(cache)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert rebuild.returncode == 0, rebuild.stderr
    assert rebuild.stdout.splitlines()[-1] == "built"
    assert not list((cache / "lab").glob("*/.build-x86_64-*"))
    rebuilt = ArchArtifacts.load(next((cache / "lab").glob("*/x86_64")))
    shown = subprocess.run(
        ["ssh-keygen", "-lf", str(rebuilt.directory / "host_key.pub")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.split()[1] == rebuilt.host_key_fingerprint
    assert _initramfs_file(rebuilt.initrd, "etc/shadow").startswith("root:$6$")
