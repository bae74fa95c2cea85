"""The helper toolset: static binaries, per architecture, for commands a board's OS lacks.

A plan names the commands its checks use (`tools:` in the plan); where the unit lacks one,
the run copies a static helper to it (harness/run/tools.py). The helper is Debian's
`busybox-static` for the board's architecture: one statically linked file with the
applets the checks call (sha256sum, dd, cmp, nc, taskset, stty, timeout, watchdog, ...),
from the same archive the virtual lab is built from, so the version a certificate names
can be looked up and reproduced.

Built by `harness lab build` (and on first need by a run), cached like the lab images
under `<cache>/tools/<arch>/<package>_<version>/` with a `toolset.json` that records the
package, its version and the binary's sha256. A run takes the newest cached entry for its
architecture without asking apt, so a lab without network access still gets its helpers
once they were built.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InfraError, UserError
from harness.vlab import debpkg
from harness.vlab.build import _locked, cache_root

PACKAGE = "busybox-static"
BINARY = "busybox"
MANIFEST = "toolset.json"

# `uname -m` (a board profile's identity.arch) -> Debian architecture.
DEB_ARCHES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "armhf",
    "riscv64": "riscv64",
    "i686": "i386",
}


@dataclass(frozen=True)
class Toolset:
    """One architecture's helper binary, as cached."""

    arch: str
    deb_arch: str
    package: str
    version: str
    binary: Path
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {
            "arch": self.arch,
            "deb_arch": self.deb_arch,
            "package": self.package,
            "version": self.version,
            "binary": self.binary.name,
            "sha256": self.sha256,
        }


def _root(cache: Path | None) -> Path:
    return (cache or cache_root()) / "tools"


def deb_arch_of(arch: str) -> str:
    try:
        return DEB_ARCHES[arch]
    except KeyError:
        raise UserError(
            f"no helper toolset for architecture {arch!r} (known: {', '.join(DEB_ARCHES)})"
        ) from None


def _load(entry: Path) -> Toolset:
    data = json.loads((entry / MANIFEST).read_text())
    return Toolset(
        arch=data["arch"],
        deb_arch=data["deb_arch"],
        package=data["package"],
        version=data["version"],
        binary=entry / data["binary"],
        sha256=data["sha256"],
    )


def cached_toolset(arch: str, cache: Path | None = None) -> Toolset | None:
    """The most recently built toolset for `arch`, or None (nothing asked of apt)."""
    folder = _root(cache) / arch
    entries = [e for e in folder.glob("*") if (e / MANIFEST).is_file()] if folder.is_dir() else []
    if not entries:
        return None
    return _load(max(entries, key=lambda e: (e / MANIFEST).stat().st_mtime))


def _candidate_version(deb_arch: str, root: Path) -> str:
    """apt's candidate version, memoised until apt's lists change (apt-cache is slow here)."""
    question = f"{debpkg.lists_fingerprint()}\n{PACKAGE}:{deb_arch}".encode()
    memo = _root(root) / ".resolved" / hashlib.sha256(question).hexdigest()[:20]
    with contextlib.suppress(OSError):
        return memo.read_text().strip()
    version = debpkg.show([(PACKAGE, deb_arch)])[(PACKAGE, deb_arch)]["Version"]
    memo.parent.mkdir(parents=True, exist_ok=True)
    scratch = memo.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(version + "\n")
    os.replace(scratch, memo)
    return version


def build_toolset(arch: str, cache: Path | None = None) -> tuple[Toolset, str]:
    """Build (or find) the toolset of `arch` from apt's current candidate; (toolset, "built"|"cached")."""
    deb_arch = deb_arch_of(arch)
    root = cache or cache_root()
    version = _candidate_version(deb_arch, root)
    entry = _root(root) / arch / f"{PACKAGE}_{version.replace(':', '%3a')}"
    with _locked(entry.parent / f".{entry.name}.lock"):
        if (entry / MANIFEST).is_file():
            os.utime(entry / MANIFEST)  # the newest use wins in cached_toolset
            return _load(entry), "cached"
        debs = root / "debs"
        with _locked(debs / ".lock"):
            files = debpkg.download([(PACKAGE, deb_arch, version)], debs)
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=entry.parent))
        try:
            debpkg.extract(files[(PACKAGE, deb_arch, version)], staging / "unpacked")
            source = staging / "unpacked" / "bin" / BINARY
            if not source.is_file():
                raise InfraError(f"{PACKAGE} {version} ({deb_arch}) has no bin/{BINARY}")
            out = staging / "out"
            out.mkdir()
            shutil.copyfile(source, out / BINARY)
            (out / BINARY).chmod(0o555)
            digest = hashlib.sha256((out / BINARY).read_bytes()).hexdigest()
            manifest = {
                "arch": arch,
                "deb_arch": deb_arch,
                "package": PACKAGE,
                "version": version,
                "binary": BINARY,
                "sha256": digest,
            }
            (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            os.rename(out, entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return _load(entry), "built"


def toolset_for(arch: str, cache: Path | None = None) -> Toolset:
    """The cached toolset of `arch`, built first if there is none yet."""
    return cached_toolset(arch, cache) or build_toolset(arch, cache)[0]
