"""The helper toolset: a static binary per architecture, from a named Debian package, cached.

A run copies it to a unit that lacks a command the plan uses (harness/run/tools.py); what it
copies must run there (the board's architecture, no dynamic loader) and must be the file
run.json names (sha256, package, version).
"""

from __future__ import annotations

import hashlib

import pytest
from elftools.elf.elffile import ELFFile

from harness.errors import UserError
from harness.vlab.toolset import cached_toolset, toolset_for


@pytest.mark.qemu  # needs `harness lab build` (the suite runs it before the first such test)
@pytest.mark.parametrize(("arch", "machine"), [("x86_64", "EM_X86_64"), ("aarch64", "EM_AARCH64")])
def test_lab_build_leaves_a_static_helper_for_each_architecture_named_by_its_package(
    arch: str, machine: str
) -> None:
    toolset = cached_toolset(arch)
    assert toolset is not None, f"harness lab build left no helper toolset for {arch}"
    assert toolset.package == "busybox-static" and toolset.version
    assert hashlib.sha256(toolset.binary.read_bytes()).hexdigest() == toolset.sha256
    with toolset.binary.open("rb") as handle:
        elf = ELFFile(handle)
        assert elf["e_machine"] == machine
        kinds = {segment["p_type"] for segment in elf.iter_segments()}
    assert "PT_INTERP" not in kinds, "a helper must not need the unit's dynamic loader"


def test_an_architecture_without_a_toolset_is_named_with_the_known_ones() -> None:
    with pytest.raises(UserError, match=r"no helper toolset for architecture 'mips'.*aarch64"):
        toolset_for("mips")
