"""The initramfs tree of the virtual lab OS: busybox, dropbear + sftp-server, modules, config.

Only files taken from the unpacked Debian packages and from harness/vlab/guest/
go in, so what runs on a virtual board is traceable to package versions and
this repository.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

from harness.errors import InfraError
from harness.vlab import elfdeps, hosttools, kmods, recipe
from harness.vlab.recipe import ArchRecipe

GUEST_FILES = Path(__file__).with_name("guest")
HOST_KEY_PATH = "etc/dropbear/dropbear_ed25519_host_key"
# Debian's dropbear execs this path for the sftp subsystem; openssh-sftp-server ships it as a symlink.
SFTP_SERVER_PATH = "usr/lib/sftp-server"
# The kernel opens /dev/console before /init can mount devtmpfs.
DEVICES = {"dev/console": (5, 1), "dev/null": (1, 3)}


# The modules whose code decides what the images contain: editing any of them
# (or a guest file) must give a new cache entry, never reuse an old image.
RECIPE_MODULES = (
    "recipe",
    "guestfs",
    "build",
    "kmods",
    "cpio",
    "bootdisk",
    "kernelimage",
    "elfdeps",
    "debpkg",
)


def recipe_digest() -> str:
    """Hash of the guest files and the image-building code, part of the cache key."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    sources = [here / f"{name}.py" for name in RECIPE_MODULES]
    sources += sorted(path for path in GUEST_FILES.rglob("*") if path.is_file())
    for path in sources:
        digest.update(path.relative_to(here).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _render(name: str, values: dict[str, str]) -> str:
    text = (GUEST_FILES / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def _put(tree: Path, relative: str, data: bytes | str, mode: int = 0o644) -> None:
    target = tree / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)
    target.chmod(mode)


def _copy(tree: Path, relative: str, source: Path, mode: int = 0o755) -> None:
    _put(tree, relative, source.read_bytes(), mode)


def _symlink(tree: Path, relative: str, target: str) -> None:
    link = tree / relative
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def password_hash(password: str, salt: str, busybox: list[str]) -> str:
    """SHA-512 crypt hash, as both busybox login and dropbear (via libcrypt) verify it."""
    result = subprocess.run(
        [*busybox, "mkpasswd", "-m", "sha512", password, salt],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.startswith("$6$"):
        raise InfraError(
            f"busybox mkpasswd failed: {result.stderr.strip() or result.stdout.strip()}"
        )
    return result.stdout.strip()


def generate_host_key(private_key: Path, dropbearkey: list[str]) -> tuple[str, str]:
    """Create the board's ed25519 host key; returns (`type base64` public key, SHA256 fingerprint)."""
    made = subprocess.run(
        [*dropbearkey, "-t", "ed25519", "-f", str(private_key)],
        capture_output=True,
        text=True,
        check=False,
    )
    shown = subprocess.run(
        [*dropbearkey, "-y", "-f", str(private_key)], capture_output=True, text=True, check=False
    )
    line = next(
        (text for text in shown.stdout.splitlines() if text.startswith("ssh-ed25519 ")), None
    )
    if made.returncode != 0 or line is None:
        raise InfraError(
            f"dropbearkey could not make a host key: {made.stderr.strip() or shown.stderr.strip()}"
        )
    key_type, blob = line.split()[:2]
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    fingerprint = "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    return f"{key_type} {blob}", fingerprint


_DIRECTORIES = (
    "bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "run", "tmp", "root", "var/log", "var/run", "mnt",
)  # fmt: skip


def _base_system(tree: Path, unpacked: Path, arch: ArchRecipe, values: dict[str, str]) -> None:
    """Busybox, the init scripts and /etc: everything a login on the console needs."""
    for directory in _DIRECTORIES:
        (tree / directory).mkdir(parents=True, exist_ok=True)
    (tree / "tmp").chmod(0o1777)
    (tree / "root").chmod(0o700)
    busybox = unpacked / "bin" / "busybox"
    if not busybox.is_file():
        raise InfraError(f"busybox-static ({arch.deb_arch}) did not provide bin/busybox")
    _copy(tree, "bin/busybox", busybox)
    _symlink(tree, "bin/sh", "busybox")
    _put(tree, "init", _render("init.sh", values), 0o755)
    _put(tree, "sbin/harness-agent", _render("agent.sh", values), 0o755)
    _put(tree, "sbin/console-getty", _render("console-getty.sh", values), 0o755)
    for name in (
        "inittab",
        "issue",
        "profile",
        "passwd",
        "group",
        "shells",
        "nsswitch.conf",
        "hosts",
    ):
        _put(tree, f"etc/{name}", _render(name, values))
    mkpasswd = hosttools.tool("busybox", "busybox-static", unpacked, arch)
    root_hash = password_hash(recipe.ROOT_PASSWORD, "vlab" + arch.arch.replace("_", ""), mkpasswd)
    shadow = f"root:{root_hash}:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"
    _put(tree, "etc/shadow", shadow, 0o600)


def _ssh_server(tree: Path, unpacked: Path, arch: ArchRecipe, host_key: Path) -> None:
    """dropbear and sftp-server, with the shared libraries and loader they need, and the host key."""
    dropbear = unpacked / "usr/sbin/dropbear"
    if not (unpacked / SFTP_SERVER_PATH).exists():
        raise InfraError(
            f"openssh-sftp-server ({arch.deb_arch}) did not provide /{SFTP_SERVER_PATH}"
        )
    sftp_server = elfdeps.real_file(unpacked, unpacked / SFTP_SERVER_PATH)
    _copy(tree, "usr/sbin/dropbear", dropbear)
    sftp_relative = sftp_server.relative_to(unpacked).as_posix()
    _copy(tree, sftp_relative, sftp_server)
    _symlink(tree, SFTP_SERVER_PATH, "/" + sftp_relative)
    _copy(tree, HOST_KEY_PATH, host_key, 0o600)

    loader = elfdeps.interpreter(dropbear)
    if loader is None:
        raise InfraError(f"dropbear ({arch.deb_arch}) has no program interpreter")
    libraries = elfdeps.library_closure([dropbear, sftp_server], unpacked, arch.library_dirs)
    for soname, path in libraries.items():
        _copy(tree, f"lib/{arch.triplet}/{soname}", elfdeps.real_file(unpacked, path))
    loader_path = loader.lstrip("/")
    if not (tree / loader_path).exists():
        _copy(tree, loader_path, elfdeps.real_file(unpacked, unpacked / loader_path))


def _extra_programs(tree: Path, unpacked: Path, arch: ArchRecipe) -> None:
    """The recipe's extra programs (iproute2's ip, can-utils), and the libraries they need."""
    programs = []
    for source, target in arch.extra_programs:
        path = elfdeps.real_file(unpacked, unpacked / source)
        if not path.is_file():
            raise InfraError(f"no /{source} in the extra packages of {arch.arch}")
        _copy(tree, target, path)
        programs.append(path)
    libraries = elfdeps.library_closure(programs, unpacked, arch.library_dirs)
    for soname, path in libraries.items():
        if not (tree / f"lib/{arch.triplet}/{soname}").exists():
            _copy(tree, f"lib/{arch.triplet}/{soname}", elfdeps.real_file(unpacked, path))


def _kernel_modules(tree: Path, modules_dir: Path) -> list[str]:
    """The drivers in recipe.MODULES plus their dependencies, and the order /init loads them in.

    Returns the optional drivers this kernel lacks.
    """
    modules, absent = kmods.load_order(recipe.MODULES, modules_dir, recipe.OPTIONAL_MODULES)
    for relative, _source, image in modules:
        _put(tree, f"lib/modules/{relative}", image)
    _put(tree, "lib/modules/load-order", "".join(f"{relative}\n" for relative, _s, _i in modules))
    return absent


def assemble(
    tree: Path, unpacked: Path, modules_dir: Path, arch: ArchRecipe, host_key: Path
) -> list[str]:
    """Fill `tree` with the guest's root filesystem from the unpacked packages in `unpacked`.

    Returns the optional drivers the kernel lacks (see recipe.OPTIONAL_MODULES).
    """
    values = {
        "CONSOLE": arch.console,
        "ARCH": arch.arch,
        "OS_NAME": recipe.OS_NAME,
        "OS_ID": recipe.OS_ID,
        "OS_VERSION": recipe.OS_VERSION,
    }
    _base_system(tree, unpacked, arch, values)
    _ssh_server(tree, unpacked, arch, host_key)
    _extra_programs(tree, unpacked, arch)
    return _kernel_modules(tree, modules_dir)
