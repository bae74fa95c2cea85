"""The QEMU command line that realises a board profile's `lab.virtual` machine.

One function builds the whole command so that what a board *is* (CPUs,
memory, disks, USB, UARTs, watchdog) is decided by its profile alone, and the
bench that launches QEMU only decides where the sockets and files go. Disks
live in the run folder so their contents survive a power cycle (a relaunch)
the way a real board's storage does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from harness.errors import InfraError, Location, UserError
from harness.model.board import BoardProfile, Virtual
from harness.model.yamlsource import load_yaml
from harness.vlab.artifacts import ArchArtifacts
from harness.vlab.osimage import DeployedImage
from harness.vlab.recipe import ARCHES

AGENT_PORT_NAME = "org.harness.agent"
GUEST_MAC = "52:54:00:12:34:56"  # eth0's; NIC N has the last byte + N
# Translation-block cache per VM: QEMU's default (1 GiB cap, grown on demand)
# costs ~50 MiB RSS more per VM than this for a fraction of a second of boot.
TB_SIZE_MIB = 32
_UNIX_PATH_MAX = 107


def console_device(profile: BoardProfile) -> str:
    """The guest tty the console is on (ttyS0 on x86_64, ttyAMA0 on aarch64)."""
    return ARCHES[profile.identity.arch].console


def _profile_error(profile: BoardProfile, message: str, field: tuple[str, ...]) -> UserError:
    line = None
    if profile.source is not None and profile.source.exists():
        line = load_yaml(profile.source).line_of(field)
    return UserError(message, Location(profile.source, line, ".".join(field)))


def _virtual(profile: BoardProfile) -> Virtual:
    if profile.lab.virtual is None:
        raise _profile_error(
            profile, "this board is not a virtual-lab board (no lab.virtual)", ("lab",)
        )
    if profile.identity.arch not in ARCHES:
        raise _profile_error(
            profile,
            f"the virtual lab cannot run arch {profile.identity.arch} (known: {', '.join(ARCHES)})",
            ("identity", "arch"),
        )
    return profile.lab.virtual


def _escape(value: str) -> str:
    """QEMU option values use ',' as separator; a literal comma is written ',,'."""
    return value.replace(",", ",,")


def _sparse_file(path: Path, size_mib: int) -> None:
    """Create a zero-filled raw disk once; a relaunch in the same run keeps its contents."""
    if not path.exists():
        with path.open("wb") as disk:
            disk.truncate(size_mib * 1024 * 1024)


def boot_overlay(run_dir: Path) -> Path:
    return run_dir / "boot-disk.qcow2"


def uart_loop(run_dir: Path) -> Path:
    """The FIFO behind the extra UART's loopback."""
    return run_dir / "uart1.fifo"


def prepare_run_dir(
    profile: BoardProfile,
    artifacts: ArchArtifacts,
    run_dir: Path,
    image: DeployedImage | None = None,
) -> None:
    """Create the board's disks in `run_dir` if they are not there yet (idempotent).

    The U-Boot boot disk is a copy-on-write qcow2 overlay over the shared,
    read-only cached image, so every run starts from the built image and
    nothing a board writes leaks into the cache or another run. An OS image
    deployed with `--image` (harness/vlab/osimage.py) takes the cached image's
    place as the overlay's backing file, on any board.
    """
    virtual = _virtual(profile)
    run_dir.mkdir(parents=True, exist_ok=True)
    if virtual.extra_uart and not uart_loop(run_dir).exists():
        os.mkfifo(uart_loop(run_dir))
    for index, disk in enumerate(virtual.disks):
        _sparse_file(run_dir / f"disk{index}.img", disk.size_mib)
    if virtual.usb_storage is not None:
        _sparse_file(run_dir / "usb0.img", virtual.usb_storage.size_mib)
    wants_overlay = profile.boot.flow == "u-boot" or image is not None
    if wants_overlay and not boot_overlay(run_dir).exists():
        backing = image.path if image is not None else artifacts.boot_disk
        if backing is None:
            raise InfraError(
                f"the {artifacts.arch} build has no U-Boot boot disk; rebuild with `harness lab build`"
            )
        if shutil.which("qemu-img") is None:
            raise InfraError("qemu-img is not installed (Debian package qemu-utils)")
        scratch = boot_overlay(run_dir).with_suffix(".tmp")
        result = subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str(backing),
                str(scratch),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InfraError(
                f"qemu-img could not create the boot disk overlay: {result.stderr.strip()}"
            )
        scratch.rename(boot_overlay(run_dir))


def _socket_path(path: Path, what: str) -> str:
    text = str(path)
    if len(text.encode()) > _UNIX_PATH_MAX:
        raise InfraError(
            f"{what} socket path is longer than UNIX sockets allow ({len(text)} > {_UNIX_PATH_MAX}): {text}"
        )
    return text


def _boot_args(
    profile: BoardProfile, artifacts: ArchArtifacts, run_dir: Path, image: DeployedImage | None
) -> tuple[list[str], list[Path]]:
    """Firmware/kernel arguments, and the disks that must come first (the boot disk is vda)."""
    if profile.boot.flow == "u-boot":
        if artifacts.uboot_bios is None:
            raise _profile_error(
                profile,
                f"the virtual lab has no U-Boot for {profile.identity.arch} boards",
                ("boot", "flow"),
            )
        return ["-bios", str(artifacts.uboot_bios)], [boot_overlay(run_dir)]
    if image is not None and image.kernel is not None:  # what distro boot would load from it
        initrd = ["-initrd", str(image.initrd)] if image.initrd is not None else []
        return ["-kernel", str(image.kernel), *initrd, "-append", image.append or ""], []
    return [
        "-kernel", str(artifacts.kernel),
        "-initrd", str(artifacts.initrd),
        "-append", artifacts.kernel_cmdline,
    ], []  # fmt: skip


def nic_network(index: int) -> str:
    """The user network of NIC `index` (ethN): 10.0.(2+N).0/24, the lab host at .2, the board .15.

    One network per NIC, so the route to the lab host's address on a NIC's network leaves
    through that NIC, and a transfer to it proves that interface moves data (the guest's
    init gives each ethN its .15 address; harness/vlab/guest/init.sh).
    """
    return f"10.0.{2 + index}.0/24"


def _nics(virtual: Virtual, ssh_port: int) -> list[str]:
    """Each NIC on its own QEMU user network; SSH is forwarded to the first only."""
    argv: list[str] = []
    last = int(GUEST_MAC.rsplit(":", 1)[1], 16)
    for index in range(virtual.nics):
        options = f"user,id=net{index}"
        if index == 0:
            options += f",hostfwd=tcp:127.0.0.1:{ssh_port}-:22"
        else:
            options += f",net={nic_network(index)}"
        mac = f"{GUEST_MAC.rsplit(':', 1)[0]}:{last + index:02x}"
        argv += [
            "-netdev", options,
            "-device", f"virtio-net-pci,netdev=net{index},mac={mac},romfile=",
        ]  # fmt: skip
    return argv


def qemu_command(
    profile: BoardProfile,
    artifacts: ArchArtifacts,
    *,
    run_dir: Path,
    console_socket: Path,
    ssh_port: int,
    qmp_socket: Path,
    agent_socket: Path,
    console_log: Path,
    image: DeployedImage | None = None,
) -> list[str]:
    """The full argv to launch this board; creates its disks in `run_dir` first (see prepare_run_dir).

    The console is a UNIX socket (one reader: the bench) whose `logfile` keeps
    every byte, appended across relaunches so a power cycle does not erase the
    evidence of what came before it. `-no-reboot` is deliberately absent: a
    reset (watchdog, sysrq, U-Boot `reset`) must reboot as on a real board.
    """
    virtual = _virtual(profile)
    arch = ARCHES[profile.identity.arch]
    if artifacts.arch != arch.arch:
        raise InfraError(
            f"board {profile.name} is {arch.arch} but the artifacts given are for {artifacts.arch}"
        )
    if virtual.extra_uart and arch.arch != "x86_64":
        raise _profile_error(
            profile,
            f"QEMU's {virtual.machine} machine has a single UART; extra_uart works on x86_64 boards only",
            ("lab", "virtual", "extra_uart"),
        )
    prepare_run_dir(profile, artifacts, run_dir, image)
    boot, boot_disks = _boot_args(profile, artifacts, run_dir, image)

    argv = [
        arch.qemu_binary,
        "-name", f"{profile.name},process=vlab-{profile.name}",
        "-M", virtual.machine,
        "-accel", f"tcg,tb-size={TB_SIZE_MIB}",
        "-smp", str(virtual.smp),
        "-m", str(virtual.memory_mib),
        "-nodefaults", "-no-user-config", "-display", "none",
    ]  # fmt: skip
    if virtual.cpu:
        argv += ["-cpu", virtual.cpu]
    if arch.arch == "x86_64":
        identity = profile.identity
        argv += [
            "-smbios",
            f"type=1,manufacturer={_escape(identity.vendor)},product={_escape(identity.compatible)},version={_escape(identity.revision)}",
        ]
    argv += boot
    argv += ["-fw_cfg", f"name=opt/org.harness/hostname,string={_escape(profile.name)}"]

    # Console first: on both machines the first -serial is the kernel's console UART.
    argv += [
        "-chardev",
        f"socket,id=console0,path={_escape(_socket_path(console_socket, 'console'))},server=on,wait=off,"
        f"logfile={_escape(str(console_log))},logappend=on",
        "-serial", "chardev:console0",
    ]  # fmt: skip
    if virtual.extra_uart:
        # The second UART's TX is wired back to its own RX (a loopback fixture): one FIFO that
        # QEMU both writes and reads, so every byte the board sends arrives on the same port.
        argv += [
            "-chardev", f"pipe,id=uart1,path={_escape(str(uart_loop(run_dir)))}",
            "-serial", "chardev:uart1",
        ]  # fmt: skip
    argv += ["-qmp", f"unix:{_escape(_socket_path(qmp_socket, 'QMP'))},server=on,wait=off"]

    disks = boot_disks + [run_dir / f"disk{index}.img" for index in range(len(virtual.disks))]
    if image is not None and not boot_disks:  # a direct-boot board: its image comes last
        disks.append(boot_overlay(run_dir))
    for index, disk in enumerate(disks):
        fmt = "qcow2" if disk.suffix == ".qcow2" else "raw"
        argv += [
            "-drive", f"if=none,id=vdisk{index},format={fmt},file={_escape(str(disk))}",
            "-device", f"virtio-blk-pci,drive=vdisk{index},serial=vlab-vd{index}",
        ]  # fmt: skip
    if virtual.usb_storage is not None:
        argv += [
            "-device", "qemu-xhci,id=xhci",
            "-drive", f"if=none,id=usbdisk0,format=raw,file={_escape(str(run_dir / 'usb0.img'))}",
            "-device", "usb-storage,bus=xhci.0,drive=usbdisk0,serial=vlab-usb0",
        ]  # fmt: skip
    argv += _nics(virtual, ssh_port)
    if virtual.watchdog == "i6300esb":
        argv += ["-device", "i6300esb", "-action", "watchdog=reset"]
    if virtual.rtc:
        argv += ["-rtc", "base=utc,clock=host"]
    if virtual.can_pair:
        # A CAN pair fixture: two SJA1000-based Kvaser PCI cards on one emulated bus, so every
        # frame one sends the other receives (and acknowledges), as two wired controllers.
        argv += ["-object", "can-bus,id=canbus0"]
        argv += ["-device", "kvaser_pci,canbus=canbus0"] * 2
    argv += [
        "-device", "virtio-serial-pci,id=agentbus",
        "-chardev", f"socket,id=agent0,path={_escape(_socket_path(agent_socket, 'agent'))},server=on,wait=off",
        "-device", f"virtserialport,bus=agentbus.0,chardev=agent0,name={AGENT_PORT_NAME}",
    ]  # fmt: skip
    argv += list(virtual.extra_args)
    return argv
