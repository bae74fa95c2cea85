"""The device tree's text view in the diagnostics, made on the lab host from the unit's blob."""

from __future__ import annotations

import struct

import pytest

from harness.run.fdtdump import dump


def _blob() -> bytes:
    """A tiny flattened device tree, laid out as the Devicetree Specification says."""
    strings = b"model\0compatible\0bootargs\0reg\0dma-coherent\0mac\0"
    offset = {name: strings.index(name.encode() + b"\0") for name in
              ("model", "compatible", "bootargs", "reg", "dma-coherent", "mac")}  # fmt: skip

    def prop(name: str, value: bytes) -> bytes:
        padded = value + b"\0" * (-len(value) % 4)
        return struct.pack(">III", 3, len(value), offset[name]) + padded

    def node(name: str) -> bytes:
        raw = name.encode() + b"\0"
        return struct.pack(">I", 1) + raw + b"\0" * (-len(raw) % 4)

    body = (
        node("")
        + prop("model", b"Acme Board\0")
        + prop("compatible", b"acme,board\0acme,soc\0")
        + node("chosen")
        + prop("bootargs", b"console=ttyS0\0")
        + struct.pack(">I", 2)
        + node("memory@40000000")
        + prop("reg", struct.pack(">II", 0x40000000, 0x8000000))
        + prop("dma-coherent", b"")
        + prop("mac", b"\x02\x54\x00\x12\x34")
        + struct.pack(">III", 4, 2, 2)  # a NOP, then the ends of memory@ and of the root
        + struct.pack(">I", 9)
    )
    header_size = 40
    off_struct = header_size
    off_strings = off_struct + len(body)
    total = off_strings + len(strings)
    header = struct.pack(
        ">10I", 0xD00DFEED, total, off_struct, off_strings, 0, 17, 16, 0, len(strings), len(body)
    )
    return header + body + strings


def test_every_property_is_one_line_with_strings_cells_and_bytes_as_dtc_writes_them() -> None:
    lines = dump(_blob()).splitlines()
    assert lines[1:] == [
        '/model = "Acme Board"',
        '/compatible = "acme,board", "acme,soc"',
        '/chosen/bootargs = "console=ttyS0"',
        "/memory@40000000/reg = <0x40000000 0x8000000>",
        "/memory@40000000/dma-coherent",
        "/memory@40000000/mac = [02 54 00 12 34]",
    ]
    assert lines[0].startswith("# flattened device tree, version 17")


def test_a_blob_that_is_not_a_device_tree_is_refused_with_why() -> None:
    with pytest.raises(ValueError, match="0xd00dfeed"):
        dump(b"\x1f\x8b" + bytes(64))
    truncated = _blob()[:60]
    with pytest.raises(ValueError, match="header says"):
        dump(truncated)
