"""What goes into a virtual board, per architecture.

Changing anything here that alters the images must bump RECIPE_VERSION: it
is part of the cache key, next to the package versions and the guest files.
"""

from __future__ import annotations

from dataclasses import dataclass

RECIPE_VERSION = "3"

OS_NAME = "Harness Virtual Lab OS"
OS_ID = "harness-vlab"
OS_VERSION = "1.0"

ROOT_PASSWORD = "root"

# Drivers every board in boards/*.yaml may need. Loading a driver for absent
# hardware is harmless, so one list serves all boards of an arch.
MODULES = [
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "virtio_console",  # also carries the fault agent's virtio-serial port
    "qemu_fw_cfg",  # the board's hostname arrives through fw_cfg
    "xhci_pci",
    "usb_storage",
    "sd_mod",
    "i6300esb",
    "kvaser_pci",  # the CAN pair fixture (lab.virtual.can_pair), with sja1000 and can_dev
    "can_raw",  # the raw CAN sockets cansend and candump use
]

# A kernel flavour built without these (e.g. cloud-amd64 via `--package kernel=...`)
# still makes a working lab: boards simply lack that hardware, and their
# inventory checks say so.
OPTIONAL_MODULES = {"xhci_pci", "usb_storage", "sd_mod", "i6300esb", "kvaser_pci", "can_raw"}

# Packages taken for their userland files; the kernel is resolved from a meta package.
USERLAND_PACKAGES = [
    "busybox-static",
    "dropbear-bin",
    "openssh-sftp-server",
    "libc6",
    "libcrypt1",
    "libtomcrypt1",
    "libtommath1",
    "libgmp10",
    "zlib1g",
]

UBOOT_PACKAGE = "u-boot-qemu"

# The CAN pair of qemu-aarch64-uboot needs what a real board's OS has for CAN: iproute2's
# `ip` (busybox's cannot set a CAN bitrate; it replaces busybox's /sbin/ip, whose output it
# shares) and can-utils' cansend/candump, with the libraries `ip` links against.
CAN_PACKAGES = (
    "iproute2", "can-utils", "libbpf1", "libelf1", "libmnl0", "libbsd0", "libmd0", "libcap2",
)  # fmt: skip
CAN_PROGRAMS = (
    ("bin/ip", "sbin/ip"),
    ("usr/bin/cansend", "usr/bin/cansend"),
    ("usr/bin/candump", "usr/bin/candump"),
)


@dataclass(frozen=True)
class ArchRecipe:
    arch: str
    deb_arch: str
    triplet: str
    kernel_meta: str
    kernel_prefix: str
    console: str
    qemu_binary: str
    # u-boot.bin inside u-boot-qemu, for boards whose boot flow is u-boot
    uboot_bios: str | None = None
    # More Debian packages and the programs taken from them (path in the package, path in
    # the image); their shared libraries come along (the packages must provide them).
    extra_packages: tuple[str, ...] = ()
    extra_programs: tuple[tuple[str, str], ...] = ()

    @property
    def library_dirs(self) -> list[str]:
        return [f"lib/{self.triplet}", f"usr/lib/{self.triplet}", "lib", "usr/lib"]


# x86_64 uses Debian's generic amd64 flavour, not cloud-amd64: the cloud
# kernel is built without USB (CONFIG_USB_SUPPORT unset) and without the
# i6300esb watchdog driver, and the x86 boards have both.
ARCHES: dict[str, ArchRecipe] = {
    "x86_64": ArchRecipe(
        arch="x86_64",
        deb_arch="amd64",
        triplet="x86_64-linux-gnu",
        kernel_meta="linux-image-amd64",
        kernel_prefix="linux-image-",
        console="ttyS0",
        qemu_binary="qemu-system-x86_64",
    ),
    "aarch64": ArchRecipe(
        arch="aarch64",
        deb_arch="arm64",
        triplet="aarch64-linux-gnu",
        kernel_meta="linux-image-arm64",
        kernel_prefix="linux-image-",
        console="ttyAMA0",
        qemu_binary="qemu-system-aarch64",
        uboot_bios="usr/lib/u-boot/qemu_arm64/u-boot.bin",
        extra_packages=CAN_PACKAGES,
        extra_programs=CAN_PROGRAMS,
    ),
}

BOOT_DISK_MIB = 128


def kernel_cmdline(recipe: ArchRecipe) -> str:
    # panic=0 keeps a panicked board halted with its message on the console,
    # for the crash watcher to see, until the bench power-cycles it.
    # cryptomgr.notests skips the crypto self-tests: ~0.6 s of every TCG boot,
    # and they test the kernel build, which Debian already did.
    # no_timer_check (x86): under TCG on a loaded host the kernel's IO-APIC timer
    # self-test can miss its window and panic at boot ("IO-APIC + timer doesn't
    # work"); the emulated timer is known good, so the check only adds flakiness.
    extra = " no_timer_check" if recipe.arch == "x86_64" else ""
    return f"console={recipe.console},115200 panic=0 rdinit=/init cryptomgr.notests{extra}"
