"""An uncompressed ELF vmlinux from an x86 bzImage, for QEMU's PVH direct boot.

Debian's generic amd64 kernel is XZ-compressed; its decompressor runs inside
the guest, which under TCG costs ~4 s of every boot (and every power cycle).
QEMU can instead load the ELF kernel itself and enter it through the PVH note
that Debian builds in (CONFIG_PVH=y), so we decompress once, at build time.
The kernel is byte-for-byte Debian's; only where the decompression runs moves.
"""

from __future__ import annotations

import lzma
import zlib
from pathlib import Path

from harness.errors import InfraError

_XZ_MAGIC = b"\xfd7zXZ\x00"
_GZIP_MAGIC = b"\x1f\x8b\x08"
_ELF_MAGIC = b"\x7fELF"
_SETUP_HEADER_MAGIC = b"HdrS"


def _decompress_at(data: bytes, offset: int, kind: str) -> bytes | None:
    try:
        if kind == "xz":
            return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[offset:])
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(data[offset:])
    except (lzma.LZMAError, zlib.error):
        return None


def extract_vmlinux(bzimage: Path, output: Path) -> bool:
    """Write the ELF kernel embedded in `bzimage` to `output`.

    False when its compression is one the standard library cannot read (lz4,
    zstd: the cloud flavour uses lz4, which decompresses fast in the guest
    anyway), so the caller boots the bzImage itself.
    """
    data = bzimage.read_bytes()
    if data[0x202:0x206] != _SETUP_HEADER_MAGIC:
        raise InfraError(f"{bzimage} is not an x86 bzImage (no setup header)")
    for kind, magic in (("xz", _XZ_MAGIC), ("gzip", _GZIP_MAGIC)):
        offset = data.find(magic)
        while offset >= 0:
            payload = _decompress_at(data, offset, kind)
            if payload and payload.startswith(_ELF_MAGIC):
                output.write_bytes(payload)
                return True
            offset = data.find(magic, offset + 1)
    return False


def has_pvh_note(vmlinux: Path) -> bool:
    """Whether the ELF carries XEN_ELFNOTE_PHYS32_ENTRY (type 18), which QEMU needs to boot it directly."""
    data = vmlinux.read_bytes()
    # Note header: namesz=4, descsz=4 or 8, type=18, name "Xen\0"; all little-endian on x86.
    return any(
        b"\x04\x00\x00\x00" + bytes([size]) + b"\x00\x00\x00\x12\x00\x00\x00Xen\x00" in data
        for size in (4, 8)
    )
