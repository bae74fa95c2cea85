"""A readable dump of a flattened device tree blob (the unit's /sys/firmware/fdt), without dtc.

The diagnostics keep the blob the kernel booted with (`devicetree.dtb`) and this text view of
it (`devicetree.txt`): one line per property, `/path/to/node/property = value`, values shown
the way dtc's source format does (strings quoted, 32-bit cells in angle brackets, other bytes
in square brackets). Reading the tree on the unit instead costs a process per property,
which took over a minute on an emulated aarch64 board; the blob is one read.

Hand-written rather than a dependency: the format (Devicetree Specification v0.4, chapter 5)
is a header and four tokens, and the one Python package for it has not been released since
2022. A blob that does not follow the format raises ValueError with where it broke.
"""

from __future__ import annotations

import struct

MAGIC = 0xD00DFEED
BEGIN_NODE, END_NODE, PROP, NOP, END = 1, 2, 3, 4, 9
MAX_VALUE_BYTES = 256  # longer values (a framebuffer, a firmware table) are cut, with their size


def _string(blob: bytes, offset: int) -> tuple[str, int]:
    end = blob.index(b"\0", offset)
    return blob[offset:end].decode("utf-8", "replace"), end + 1


def _aligned(offset: int) -> int:
    return (offset + 3) & ~3


def _value(data: bytes) -> str:
    if not data:
        return ""
    shown = data[:MAX_VALUE_BYTES]
    more = (
        f" /* {len(data)} bytes, first {MAX_VALUE_BYTES} shown */" if len(data) > len(shown) else ""
    )
    parts = shown.split(b"\0")
    if (
        data.endswith(b"\0")
        and all(parts[:-1])
        and all(32 <= c < 127 for c in shown.replace(b"\0", b""))
        and not more
    ):
        return ", ".join(f'"{part.decode()}"' for part in parts[:-1])
    if len(shown) % 4 == 0:
        cells = struct.unpack(f">{len(shown) // 4}I", shown)
        return "<" + " ".join(f"0x{cell:x}" for cell in cells) + ">" + more
    return "[" + " ".join(f"{byte:02x}" for byte in shown) + "]" + more


def dump(blob: bytes) -> str:
    """Every property of the tree as `path = value`, in the blob's order."""
    if len(blob) < 40 or struct.unpack_from(">I", blob, 0)[0] != MAGIC:
        raise ValueError("not a flattened device tree (no 0xd00dfeed magic)")
    total, off_struct, off_strings = struct.unpack_from(">III", blob, 4)
    version = struct.unpack_from(">I", blob, 20)[0]
    if total > len(blob):
        raise ValueError(f"blob is {len(blob)} bytes, its header says {total}")
    lines = [f"# flattened device tree, version {version}, {total} bytes"]
    path: list[str] = []
    offset = off_struct
    while True:
        (token,) = struct.unpack_from(">I", blob, offset)
        offset += 4
        if token == BEGIN_NODE:
            name, offset = _string(blob, offset)
            offset = _aligned(offset)
            path.append(name)
        elif token == END_NODE:
            if not path:
                raise ValueError(f"unbalanced node end at byte {offset - 4}")
            path.pop()
        elif token == PROP:
            length, name_offset = struct.unpack_from(">II", blob, offset)
            offset += 8
            name, _ = _string(blob, off_strings + name_offset)
            value = blob[offset : offset + length]
            offset = _aligned(offset + length)
            shown = _value(value)
            lines.append(f"{'/'.join(path).rstrip('/')}/{name}" + (f" = {shown}" if shown else ""))
        elif token == NOP:
            continue
        elif token == END:
            return "\n".join(lines) + "\n"
        else:
            raise ValueError(f"unknown token {token:#x} at byte {offset - 4}")
