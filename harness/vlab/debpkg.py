"""Debian packages as the only source of the virtual lab's software.

Everything a virtual board runs comes from the same archive a real Debian
board would use, fetched with apt's ordinary clients, so a lab engineer can
reproduce an image from package versions alone. Versions are resolved before
anything is downloaded because they make up the build's cache key.

apt-cache takes ~2 s a call on hosts (like Docker images) that disable its
binary cache, so queries are batched: one call answers for many packages.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.errors import InfraError

# apt-get download as root otherwise warns that the _apt user cannot write here.
_APT_OPTIONS = ["-o", "APT::Sandbox::User=root", "-q"]

Package = tuple[str, str]
"""(name, Debian architecture); architecture "all" for arch-independent packages."""


def qualified(package: Package) -> str:
    name, deb_arch = package
    return name if deb_arch == "all" else f"{name}:{deb_arch}"


def _apt_message(result: subprocess.CompletedProcess[str]) -> str:
    text = " ".join(
        line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()
    )
    return text or f"exit status {result.returncode}"


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise InfraError(
            f"{argv[0]} is not installed: the virtual lab is built from Debian packages"
        ) from None


def _unavailable(
    package: Package, batch: subprocess.CompletedProcess[str] | None = None
) -> InfraError:
    """An error naming the package and carrying apt's own explanation for it.

    A batch query that failed as a whole already holds apt's words; one that
    merely left a package out says nothing about it, so ask again for that one.
    """
    if batch is not None and batch.returncode != 0 and batch.stderr.strip():
        result = batch
    else:
        result = _run(["apt-cache", "show", "--no-all-versions", qualified(package)])
    name, deb_arch = package
    hint = (
        " (is the arm64 architecture added and apt-get update run? see scripts/setup.sh)"
        if deb_arch == "arm64"
        else ""
    )
    return InfraError(
        f"Debian package '{name}' ({deb_arch}) cannot be had: apt-cache says: {_apt_message(result)}{hint}"
    )


def show(packages: Sequence[Package]) -> dict[Package, dict[str, str]]:
    """apt's candidate record (field -> value) for each package, in one apt-cache call."""
    result = _run(["apt-cache", "show", "--no-all-versions", *(qualified(p) for p in packages)])
    records: dict[Package, dict[str, str]] = {}
    for block in result.stdout.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+): (.*)$", block, re.MULTILINE))
        if "Package" in fields:
            records.setdefault((fields["Package"], fields.get("Architecture", "")), fields)
    answer: dict[Package, dict[str, str]] = {}
    for package in packages:
        record = records.get(package)
        if record is None or "Version" not in record:
            raise _unavailable(package, result)
        answer[package] = record
    return answer


def resolve_meta(record: dict[str, str], prefix: str) -> str:
    """The concrete package a meta package (e.g. linux-image-arm64) depends on, starting with `prefix`.

    Kernel packages carry the ABI in their name, so the meta package is how we
    follow Debian's current kernel without hard-coding an ABI number.
    """
    if re.match(rf"{re.escape(prefix)}\d", record.get("Package", "")):
        return record["Package"]  # already a concrete kernel (its name carries the ABI)
    depends = record.get("Depends", "")
    for alternative in re.split(r"[,|]", depends):
        target = alternative.strip().split(" ")[0].split(":")[0]
        if target.startswith(prefix):
            return target
    raise InfraError(
        f"Debian package '{record.get('Package')}' depends on no '{prefix}*' package: {depends!r}"
    )


def deb_filename(name: str, version: str, deb_arch: str) -> str:
    """The file name apt-get download gives a package (epoch colon escaped as %3a)."""
    return f"{name}_{version.replace(':', '%3a')}_{deb_arch}.deb"


def download(
    wanted: Sequence[tuple[str, str, str]], into: Path
) -> dict[tuple[str, str, str], Path]:
    """Fetch exact (name, deb arch, version)s into `into`, in one apt-get call for those not there yet."""
    into.mkdir(parents=True, exist_ok=True)
    files = {item: into / deb_filename(item[0], item[2], item[1]) for item in wanted}
    missing = [
        item for item, path in files.items() if not (path.is_file() and path.stat().st_size > 0)
    ]
    if missing:
        # apt-get writes into its working folder as it goes; a scratch folder
        # keeps a killed download from ever looking like a complete .deb.
        scratch = Path(tempfile.mkdtemp(prefix=".partial-", dir=into))
        try:
            specs = [
                f"{qualified((name, deb_arch))}={version}" for name, deb_arch, version in missing
            ]
            result = _run(["apt-get", "download", *_APT_OPTIONS, *specs], cwd=scratch)
            for item in missing:
                fetched = scratch / files[item].name
                if result.returncode != 0 or not fetched.is_file():
                    name, deb_arch, version = item
                    raise InfraError(
                        f"cannot download Debian package '{name}' {version} ({deb_arch}): apt-get says: {_apt_message(result)}"
                    )
                os.replace(fetched, files[item])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return files


def extract(deb: Path, into: Path) -> None:
    """Unpack a .deb's files (not its maintainer scripts) into `into`."""
    into.mkdir(parents=True, exist_ok=True)
    result = _run(["dpkg-deb", "-x", str(deb), str(into)])
    if result.returncode != 0:
        raise InfraError(f"cannot unpack {deb.name}: dpkg-deb says: {_apt_message(result)}")


def lists_fingerprint() -> str:
    """Changes whenever apt's package lists change (apt-get update), so resolved versions can be memoised."""
    parts = []
    for path in sorted(Path("/var/lib/apt/lists").glob("*Packages*")):
        info = path.stat()
        parts.append(f"{path.name}:{info.st_size}:{info.st_mtime_ns}")
    return "\n".join(parts)
