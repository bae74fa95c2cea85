"""ELF notes and the GNU build id (NT_GNU_BUILD_ID) of a Linux kernel.

The build id is a hash the linker computes over the kernel it links: two
builds from the same source with the same release string still get different
ids, which is what makes it proof of *whose* build a device runs.

Three places hold it, and each needs its own reading:

- a real ELF (`vmlinux`, or the ELF inside an x86 bzImage): pyelftools walks
  the PT_NOTE segments, which is the authoritative answer;
- `/sys/kernel/notes` on a running kernel: the kernel's `.notes` section as
  bare bytes, with no ELF header around it, so pyelftools (whose `iter_notes`
  needs an ELFFile for its stream and structs, and does no bounds checks) has
  nothing to hang on. `parse_note_section` is a small, bounded, hand-written
  walker over the standard `Elf_Nhdr` layout instead;
- a raw image without ELF headers (arm64 `Image`): the `.notes` section sits
  somewhere inside. Embedded ELF objects (the vDSOs) carry GNU build ids of
  their own, so `scan_image` only counts notes that are not inside a valid
  embedded ELF, and refuses an image where that still leaves more than one id.
"""

from __future__ import annotations

import io
import mmap
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

NT_GNU_BUILD_ID = 3
GNU = b"GNU\x00"
# A build id is a hash: sha1 (20 bytes) in practice; md5 (16), uuid (16), sha256-like (32) possible.
BUILD_ID_SIZES = range(8, 65)
MAX_NOTES_BYTES = 1 << 20
"""A kernel's .notes section is a few hundred bytes; more is not a note section."""


class NoteError(ValueError):
    """The bytes are not a well-formed note section (message says why)."""


@dataclass(frozen=True)
class Note:
    name: bytes
    type: int
    desc: bytes


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _walk(data: bytes, order: str) -> list[Note]:
    notes: list[Note] = []
    offset = 0
    while offset + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(order + "III", data, offset)
        if namesz == descsz == ntype == 0:  # padding at the end of the section
            break
        start = offset + 12
        name_end = start + namesz
        desc_start = start + _align4(namesz)
        desc_end = desc_start + descsz
        if desc_end > len(data) or namesz > 256:
            raise NoteError(f"note at byte {offset} runs past the end of the section")
        notes.append(Note(data[start:name_end], ntype, data[desc_start:desc_end]))
        offset = desc_start + _align4(descsz)
    return notes


def parse_note_section(data: bytes) -> list[Note]:
    """The notes in a bare note section, in the byte order that parses cleanly.

    The section has no header naming its byte order; a well-formed section
    parses in one order and fails in the other (sizes become huge), so we try
    little-endian first (every arch the lab supports) and big-endian second.
    """
    if len(data) > MAX_NOTES_BYTES:
        raise NoteError(f"{len(data)} bytes is too large for a note section")
    problems = []
    for order in ("<", ">"):
        try:
            notes = _walk(data, order)
        except NoteError as exc:
            problems.append(str(exc))
            continue
        if notes:
            return notes
    raise NoteError(problems[0] if problems else "no notes in the section")


def build_id_of_notes(notes: list[Note]) -> str | None:
    ids = [
        n.desc.hex()
        for n in notes
        if n.type == NT_GNU_BUILD_ID and n.name == GNU and len(n.desc) in BUILD_ID_SIZES
    ]
    return ids[0] if ids else None


def build_id_from_note_section(data: bytes) -> str | None:
    """The GNU build id in a bare note section such as /sys/kernel/notes (None if it has none)."""
    return build_id_of_notes(parse_note_section(data))


def elf_build_id(elf_bytes: bytes | io.BufferedIOBase | mmap.mmap) -> str | None:
    """The GNU build id of an ELF file, from its PT_NOTE segments (pyelftools)."""
    stream = io.BytesIO(elf_bytes) if isinstance(elf_bytes, bytes | bytearray) else elf_bytes
    try:
        elf = ELFFile(stream)
        stream.seek(0, io.SEEK_END)
        size = stream.tell()  # mmap.seek returns None: ask tell()
        for segment in elf.iter_segments():
            if segment["p_offset"] + segment["p_filesz"] > size:
                raise NoteError(
                    f"truncated: a segment ends at byte {segment['p_offset'] + segment['p_filesz']}, the file has {size}"
                )
        for segment in elf.iter_segments():
            if segment["p_type"] != "PT_NOTE":
                continue
            for note in segment.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":
                    return str(note["n_desc"])
    except (ELFError, struct.error, ValueError, OSError) as exc:
        raise NoteError(f"not a readable ELF file ({exc})") from None
    return None


_ELF_MAGIC = b"\x7fELF"
_EMBEDDED_ELF_MAX = 2 << 20
"""Embedded objects in a kernel image (vDSOs, firmware blobs) are far smaller than this."""
_ELF_TRIES = 8
_MAX_CANDIDATES = 64


def _embedded_elf_extent(image: bytes, start: int) -> int:
    """Length of a valid ELF object starting at `start` inside `image`, 0 if it is no ELF."""
    window = image[start : start + _EMBEDDED_ELF_MAX]
    try:
        elf = ELFFile(io.BytesIO(window))
        header = elf.header
        end = header["e_shoff"] + header["e_shnum"] * header["e_shentsize"]
        end = max(end, header["e_phoff"] + header["e_phnum"] * header["e_phentsize"])
        for section in elf.iter_sections():
            if section["sh_type"] != "SHT_NOBITS":
                end = max(end, section["sh_offset"] + section["sh_size"])
    except (ELFError, struct.error, ValueError, KeyError, OSError):
        return 0
    return end if end <= len(window) else 0


def _inside_elf(image: bytes, offset: int) -> bool:
    """Whether `offset` lies inside a valid ELF object embedded before it (nearest few tried)."""
    position = offset
    for _ in range(_ELF_TRIES):
        position = image.rfind(_ELF_MAGIC, max(0, offset - _EMBEDDED_ELF_MAX), position)
        if position < 0:
            return False
        extent = _embedded_elf_extent(image, position)
        if extent and offset < position + extent:
            return True
    return False


def scan_image(image: bytes) -> str | None:
    """The kernel's own GNU build id in a raw image without ELF headers (None: no note found).

    Raises NoteError when more than one candidate remains outside embedded ELF objects.
    """
    candidates: dict[int, str] = {}
    # One pass for both byte orders, on the name: "GNU\0" is rarer in code than the type word.
    at = image.find(GNU, 12)
    while at >= 0 and len(candidates) <= _MAX_CANDIDATES:
        for order in ("<", ">"):
            namesz, size, ntype = struct.unpack_from(order + "III", image, at - 12)
            desc = at + len(GNU)
            if (
                namesz == len(GNU)
                and ntype == NT_GNU_BUILD_ID
                and size in BUILD_ID_SIZES
                and desc + size <= len(image)
            ):
                candidates[at - 12] = bytes(image[desc : desc + size]).hex()
        at = image.find(GNU, at + 1)
    if not candidates:
        return None
    if len(candidates) > _MAX_CANDIDATES:
        raise NoteError(f"{len(candidates)} GNU build-id notes: not a kernel image")
    own = {build_id for offset, build_id in candidates.items() if not _inside_elf(image, offset)}
    if len(own) > 1:
        raise NoteError(
            f"{len(own)} different GNU build ids outside embedded ELF objects: cannot tell which is the kernel's"
        )
    return own.pop() if own else None
