"""The serial module must be labgrid's fork: upstream pyserial silently replaces it and slows RFC2217 ~50x."""

from __future__ import annotations

import importlib.metadata

import serial


def test_import_serial_loads_labgrids_fork_not_upstream_pyserial() -> None:
    owners = importlib.metadata.packages_distributions().get("serial", [])
    assert owners == ["pyserial-labgrid"], f"'serial' is provided by {owners}"
    dist = importlib.metadata.distribution("pyserial-labgrid")
    files = {str(f) for f in dist.files or []}
    assert any(f.startswith("serial/") for f in files)
    assert serial.__file__.endswith("serial/__init__.py")


def test_upstream_pyserial_is_not_installed_beside_the_fork() -> None:
    try:
        importlib.metadata.distribution("pyserial")
    except importlib.metadata.PackageNotFoundError:
        return
    raise AssertionError("upstream pyserial is installed and shadows labgrid's serial fork")
