"""`build_lab`: kernels, initramfs and the U-Boot boot disk, from Debian packages, cached.

The cache key is a hash of the exact package versions, the recipe version,
the guest files and the image-building code, so a second build with nothing
changed is a no-op, and an archive update (a new kernel ABI, a security fix in dropbear) is a new entry
rather than a silently different image under an old name. Each architecture
is built in a temporary folder and renamed into place, so a build killed
half-way never leaves a cache entry that looks complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from harness.errors import InfraError, UserError
from harness.vlab import debpkg, guestfs, hosttools, recipe
from harness.vlab.artifacts import ArchArtifacts
from harness.vlab.bootdisk import build_boot_disk, extlinux_conf
from harness.vlab.cpio import write_initramfs
from harness.vlab.kernelimage import extract_vmlinux, has_pvh_note
from harness.vlab.recipe import ARCHES, ArchRecipe

Progress = Callable[[str, str], None]
"""progress(arch, message): one line about what the build is doing now."""

ROLES = ("kernel", *recipe.USERLAND_PACKAGES, recipe.UBOOT_PACKAGE)


def cache_root() -> Path:
    """${HARNESS_CACHE:-${XDG_CACHE_HOME:-~/.cache}/harness}"""
    explicit = os.environ.get("HARNESS_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "harness"


def _quiet(arch: str, message: str) -> None:
    """Default progress sink: builds called from code stay silent."""


Plan = dict[str, tuple[str, str, str]]
"""role -> (package name, deb arch, version): everything one architecture's build downloads."""


def _resolve_plans(arches: Sequence[ArchRecipe], overrides: Mapping[str, str]) -> dict[str, Plan]:
    """Ask apt for every version the builds need: two apt-cache calls for all architectures."""
    metas = {
        arch.arch: (overrides.get("kernel", arch.kernel_meta), arch.deb_arch) for arch in arches
    }
    meta_records = debpkg.show(list(metas.values()))
    wanted: dict[str, dict[str, debpkg.Package]] = {}
    for arch in arches:
        roles = {
            "kernel": (
                debpkg.resolve_meta(meta_records[metas[arch.arch]], arch.kernel_prefix),
                arch.deb_arch,
            )
        }
        for role in (*recipe.USERLAND_PACKAGES, *arch.extra_packages):
            roles[role] = (overrides.get(role, role), arch.deb_arch)
        if arch.uboot_bios:
            roles[recipe.UBOOT_PACKAGE] = (
                overrides.get(recipe.UBOOT_PACKAGE, recipe.UBOOT_PACKAGE),
                "all",
            )
        wanted[arch.arch] = roles
    records = debpkg.show(
        sorted({package for roles in wanted.values() for package in roles.values()})
    )
    return {
        arch: {role: (*package, records[package]["Version"]) for role, package in roles.items()}
        for arch, roles in wanted.items()
    }


def _memoised_plans(
    arches: Sequence[ArchRecipe], overrides: Mapping[str, str], root: Path
) -> dict[str, Plan]:
    """Versions only change when apt's lists do, so a cached build need not ask apt at all."""
    question = json.dumps(
        {
            "lists": debpkg.lists_fingerprint(),
            "arches": [a.arch for a in arches],
            "overrides": dict(overrides),
            "recipe": recipe.RECIPE_VERSION,
        },
        sort_keys=True,
    )
    memo = (
        root / "lab" / "resolved" / (hashlib.sha256(question.encode()).hexdigest()[:20] + ".json")
    )
    with contextlib.suppress(OSError, ValueError):
        return {
            arch: {role: tuple(item) for role, item in plan.items()}
            for arch, plan in json.loads(memo.read_text()).items()
        }
    plans = _resolve_plans(arches, overrides)
    memo.parent.mkdir(parents=True, exist_ok=True)
    scratch = memo.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps(plans))
    os.replace(scratch, memo)
    return plans


def _cache_key(arch: ArchRecipe, plan: dict[str, tuple[str, str, str]]) -> str:
    material = {
        "recipe": recipe.RECIPE_VERSION,
        "arch": arch.arch,
        "packages": sorted(plan.values()),
        "code": guestfs.recipe_digest(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:20]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per cache entry: a second process waits, then finds the entry built."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _kernel_files(unpacked: Path, package: str) -> tuple[Path, Path, str]:
    """(vmlinuz, lib/modules/<release>, release) from an unpacked kernel package."""
    kernels = sorted((unpacked / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise InfraError(
            f"kernel package {package} holds {len(kernels)} vmlinuz files, expected one"
        )
    release = kernels[0].name.removeprefix("vmlinuz-")
    modules = unpacked / "lib" / "modules" / release
    if not modules.is_dir():
        raise InfraError(f"kernel package {package} has no lib/modules/{release}")
    return kernels[0], modules, release


def _build_arch(
    arch: ArchRecipe,
    plan: dict[str, tuple[str, str, str]],
    key: str,
    staging: Path,
    debs: Path,
    progress: Progress,
) -> ArchArtifacts:
    unpacked = staging / "unpacked"
    kernel_unpacked = staging / "kernel-unpacked"
    progress(arch.arch, f"download {len(plan)} packages")
    with _locked(
        debs / ".lock"
    ):  # apt-get writes in place: no reader may see a half-downloaded .deb
        files = debpkg.download(list(plan.values()), debs)
    for role, item in plan.items():
        progress(arch.arch, f"unpack {item[0]} {item[2]}")
        debpkg.extract(files[item], kernel_unpacked if role == "kernel" else unpacked)

    vmlinuz, modules_dir, release = _kernel_files(kernel_unpacked, plan["kernel"][0])
    output = staging / "out"
    output.mkdir()
    # Debian's own compressed image is kept next to what QEMU boots, as the
    # reference a benchmark or a bootloader-based flow can use.
    kernel = output / "vmlinuz"
    shutil.copyfile(vmlinuz, kernel)
    if arch.arch == "x86_64":
        progress(arch.arch, "extract ELF vmlinux for PVH boot")
        elf = output / "vmlinux"
        if extract_vmlinux(vmlinuz, elf) and has_pvh_note(elf):
            kernel = elf
        else:
            elf.unlink(missing_ok=True)

    progress(arch.arch, "host key")
    host_key = staging / "host_key"
    dropbearkey = hosttools.tool("dropbearkey", "dropbear-bin", unpacked, arch)
    host_key_line, fingerprint = guestfs.generate_host_key(host_key, dropbearkey)
    (output / "host_key.pub").write_text(f"{host_key_line} vlab-{arch.arch}\n")

    progress(arch.arch, "initramfs")
    tree = staging / "tree"
    tree.mkdir()
    absent = guestfs.assemble(tree, unpacked, modules_dir, arch, host_key)
    if absent:
        progress(
            arch.arch,
            f"note: kernel {release} has no {', '.join(absent)}; boards lose that hardware",
        )
    write_initramfs(tree, output / "initrd.img", guestfs.DEVICES)

    cmdline = recipe.kernel_cmdline(arch)
    boot_disk = uboot_bios = None
    if arch.uboot_bios:
        progress(arch.arch, "U-Boot distro-boot disk")
        source = unpacked / arch.uboot_bios
        if not source.is_file():
            raise InfraError(f"{recipe.UBOOT_PACKAGE} did not provide /{arch.uboot_bios}")
        uboot_bios = output / "u-boot.bin"
        shutil.copyfile(source, uboot_bios)
        boot_disk = output / "boot-disk.img"
        build_boot_disk(
            boot_disk,
            recipe.BOOT_DISK_MIB,
            {"Image": vmlinuz, "initrd.img": output / "initrd.img"},
            extlinux_conf("vlab", "Image", "initrd.img", cmdline),
        )

    os_release = {"NAME": recipe.OS_NAME, "ID": recipe.OS_ID, "VERSION_ID": recipe.OS_VERSION}
    artifacts = ArchArtifacts(
        arch=arch.arch,
        directory=output,
        kernel=kernel,
        initrd=output / "initrd.img",
        kernel_release=release,
        kernel_cmdline=cmdline,
        console_device=arch.console,
        host_key_line=host_key_line,
        host_key_fingerprint=fingerprint,
        root_password=recipe.ROOT_PASSWORD,
        os_release=os_release,
        packages={name: version for name, _deb_arch, version in plan.values()},
        cache_key=key,
        boot_disk=boot_disk,
        uboot_bios=uboot_bios,
        absent_drivers=absent,
    )
    artifacts.save()
    return artifacts


def _check_request(arches: Sequence[str], overrides: Mapping[str, str]) -> list[ArchRecipe]:
    unknown_arches = [name for name in arches if name not in ARCHES]
    if unknown_arches:
        raise UserError(
            f"the virtual lab has no architecture {', '.join(unknown_arches)} (known: {', '.join(ARCHES)})"
        )
    unknown_roles = sorted(set(overrides) - set(ROLES))
    if unknown_roles:
        raise UserError(
            f"unknown package role(s) {', '.join(unknown_roles)} (known: {', '.join(ROLES)})"
        )
    return [ARCHES[name] for name in dict.fromkeys(arches)]


def _build_or_reuse(arch: ArchRecipe, plan: Plan, root: Path, progress: Progress) -> ArchArtifacts:
    key = _cache_key(arch, plan)
    entry_dir = root / "lab" / key
    final = entry_dir / arch.arch
    with _locked(entry_dir / f".{arch.arch}.lock"):
        if final.is_dir():
            os.utime(entry_dir)  # last use, for prune_cache
            progress(arch.arch, "cached")
            return ArchArtifacts.load(final, status="cached")
        for stale in entry_dir.glob(f".build-{arch.arch}-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed build; we hold the lock
        staging = Path(tempfile.mkdtemp(prefix=f".build-{arch.arch}-", dir=entry_dir))
        try:
            built = _build_arch(arch, plan, key, staging, root / "debs", progress)
            for path in built.directory.iterdir():
                path.chmod(
                    path.stat().st_mode & ~0o222
                )  # shared read-only: runs use copies/overlays
            os.rename(built.directory, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    progress(arch.arch, "built")
    return ArchArtifacts.load(final, status="built")


def build_lab(
    arches: Sequence[str] = ("x86_64", "aarch64"),
    progress: Progress = _quiet,
    *,
    overrides: Mapping[str, str] | None = None,
    cache: Path | None = None,
) -> dict[str, ArchArtifacts]:
    """Build every requested architecture; `status` on each result says "built" or "cached".

    `overrides` maps a package role (see ROLES) to another Debian package name,
    e.g. to try a different kernel flavour or to see how a missing package is reported.
    """
    overrides = dict(overrides or {})
    recipes = _check_request(arches, overrides)
    root = cache or cache_root()
    for arch in recipes:
        progress(arch.arch, "resolve package versions")
    plans = _memoised_plans(recipes, overrides, root)
    return {arch.arch: _build_or_reuse(arch, plans[arch.arch], root, progress) for arch in recipes}


STALE_AFTER_DAYS = 14.0


def prune_cache(
    keep: Iterable[Path],
    *,
    root: Path | None = None,
    unused_days: float | None = STALE_AFTER_DAYS,
) -> list[Path]:
    """Remove cache entries other than `keep` (entry folders), returning what was removed.

    Every change of package version or build code makes a new ~85 MB entry, so
    old ones pile up. By default only entries unused for `unused_days` go: a
    running board may still have an older entry's boot disk as its backing
    file and would fail at its next power-on. `unused_days=None` removes every
    other entry at once (an explicit `harness lab build --prune`).
    """
    lab = (root or cache_root()) / "lab"
    kept = {Path(p).resolve() for p in keep}
    cutoff = None if unused_days is None else time.time() - unused_days * 86400
    removed = []
    for entry in sorted(lab.glob("*")) if lab.is_dir() else []:
        if not entry.is_dir() or entry.resolve() in kept:
            continue
        if cutoff is not None and entry.stat().st_mtime > cutoff:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed
