"""The virtual lab as a kernel vendor: register the Debian kernels it built for its board models.

`harness lab build --register-vendor-kernels` makes the lab play the part a
board vendor plays for a real product: the kernel package it boots is
registered, from the package file itself (the registry extracts the GNU
build id), as the vendor kernel of every virtual board model of that
architecture. A virtual board without a certificate is then
`eligible-vendor-kernel`, and a kernel of another Debian build, even one
claiming the same release string, is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.model.board import BoardProfile, load_board
from harness.registry.errors import Conflict
from harness.registry.interface import Registry
from harness.vlab import debpkg
from harness.vlab.artifacts import ArchArtifacts
from harness.vlab.recipe import ARCHES


def kernel_package(artifacts: ArchArtifacts, debs: Path) -> Path:
    """The Debian kernel package (.deb) an architecture's build unpacked its kernel from."""
    recipe = ARCHES[artifacts.arch]
    names = [n for n in artifacts.packages if n.startswith(recipe.kernel_prefix)]
    if len(names) != 1:
        raise ValueError(f"{artifacts.arch} build lists {len(names)} kernel packages")
    name = names[0]
    return debs / debpkg.deb_filename(name, artifacts.packages[name], recipe.deb_arch)


def virtual_models(boards_dir: Path) -> list[BoardProfile]:
    """The board profiles in `boards_dir` that the virtual lab realises."""
    profiles = [load_board(path) for path in sorted(boards_dir.glob("*.y*ml"))]
    # The simulated board runs the host's kernel, not one the lab built.
    return [p for p in profiles if p.lab.virtual is not None and p.lab.virtual.machine != "sim"]


def register_lab_kernels(
    results: dict[str, ArchArtifacts], registry: Registry, debs: Path, boards_dir: Path
) -> list[dict[str, Any]]:
    """Register each built kernel package for the virtual models of its architecture.

    Idempotent: a package registered before is reported as "already registered".
    """
    registered = []
    models = virtual_models(boards_dir)
    for arch, artifacts in results.items():
        boards = [
            {"vendor": p.identity.vendor, "model": p.identity.model, "revision": ""}
            for p in models
            if p.identity.arch == arch
        ]
        if not boards:
            continue
        package = kernel_package(artifacts, debs)
        try:
            record = registry.register_kernel_artifact(package, boards)
            status = "registered"
        except Conflict:
            record = next(
                (
                    k
                    for k in registry.list_kernels()
                    if (k.get("artifact") or {}).get("name") == package.name
                ),
                {"kernel_release": artifacts.kernel_release},
            )
            status = "already registered"
        registered.append({"arch": arch, "package": package.name, "status": status, **record})
    return registered
