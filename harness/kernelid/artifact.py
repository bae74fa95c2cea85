"""The build id (and release) of a vendor's kernel build artifact, extracted by the harness itself.

Accepted: a Debian kernel package (.deb), an x86 bzImage (`vmlinuz`), an arm64
`Image`, `Image.gz` or EFI zboot `vmlinuz`, and an ELF `vmlinux`. The registry takes the id from
the artifact rather than from a person, so a registered vendor kernel is proof
of a build, not a claim.

Artifacts come from outside (an admin's upload over the API) and are treated
as hostile: every size is checked against a limit before it is trusted,
decompression is streamed through `_Guard`, which refuses output beyond
MAX_KERNEL_BYTES or beyond MAX_RATIO times the input consumed (a decompression
bomb trips this within the first megabytes), and a deadline bounds the whole
extraction. The .deb `ar` container and the bzImage setup header are read by
hand because each is a few fixed-size fields (documented in deb(5) and the
kernel's Documentation/arch/x86/boot.rst); tar and the codecs are the
standard library's (plus `zstandard`: Python 3.11 has no zstd).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import mmap
import re
import struct
import tarfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from harness.errors import Location, UserError
from harness.kernelid.notes import NoteError, elf_build_id, scan_image

MAX_ARTIFACT_BYTES = 512 << 20
"""A kernel .deb is ~70 MB; a file this large is not a kernel artifact."""
MAX_KERNEL_BYTES = 256 << 20
"""An uncompressed kernel (x86 vmlinux ~66 MB, arm64 Image ~33 MB) stays far below this."""
MAX_RATIO = 64
"""Kernels compress 3-10x; output past 64x the input read so far is a decompression bomb."""
RATIO_SLACK = 4 << 20
DEADLINE_SECONDS = 60.0
CHUNK = 1 << 20

_ELF = b"\x7fELF"
_ARM64_MAGIC = b"ARM\x64"
_CODECS: list[tuple[bytes, str]] = [
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x89LZO", "lzo"),
]


@dataclass(frozen=True)
class ArtifactIdentity:
    build_id: str
    kernel_release: str | None
    format: str
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "build_id": self.build_id,
            "kernel_release": self.kernel_release,
            "format": self.format,
            "seconds": round(self.seconds, 3),
        }


class _Refused(Exception):
    """Internal: the artifact is refused; message says why (becomes a UserError naming the file)."""


class _Guard(io.RawIOBase):
    """A decompressed stream that refuses to grow past the limits (see the module docstring)."""

    def __init__(
        self, reader: BinaryIO, consumed: Callable[[], int], deadline: float, what: str
    ) -> None:
        self._reader = reader
        self._consumed = consumed
        self._deadline = deadline
        self._what = what
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._reader.read(min(len(buffer), CHUNK))
        except (lzma.LZMAError, zlib.error, OSError, EOFError, zstandard.ZstdError) as exc:
            raise _Refused(f"{self._what} is corrupt or truncated ({exc})") from None
        self.produced += len(data)
        if self.produced > MAX_KERNEL_BYTES:
            raise _Refused(f"{self._what} decompresses to more than {MAX_KERNEL_BYTES >> 20} MiB")
        if self.produced > MAX_RATIO * max(self._consumed(), 1) + RATIO_SLACK:
            raise _Refused(
                f"{self._what} expands more than {MAX_RATIO} times: a decompression bomb, not a kernel"
            )
        if time.monotonic() > self._deadline:
            raise _Refused(f"{self._what}: extraction took longer than {DEADLINE_SECONDS:.0f} s")
        buffer[: len(data)] = data
        return len(data)


def _codec_of(head: bytes) -> str | None:
    head = bytes(head[:8])
    return next((name for magic, name in _CODECS if head.startswith(magic)), None)


def _decompressor(raw: BinaryIO, codec: str, what: str) -> BinaryIO:
    if codec == "xz":
        return lzma.LZMAFile(raw, format=lzma.FORMAT_XZ)  # type: ignore[return-value]
    if codec == "lzma":
        return lzma.LZMAFile(raw, format=lzma.FORMAT_ALONE)  # type: ignore[return-value]
    if codec == "gzip":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if codec == "bzip2":
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if codec == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[return-value]
    raise _Refused(f"{what} is {codec}-compressed, which the harness does not read")


def _guarded(raw: BinaryIO, codec: str, deadline: float, what: str) -> io.BufferedReader:
    """`raw` (positioned at the compressed data) decompressed through a _Guard."""
    start = raw.tell()
    reader = _decompressor(raw, codec, what)
    guard = _Guard(reader, lambda: raw.tell() - start, deadline, what)
    return io.BufferedReader(guard, CHUNK)


def _read_all(stream: BinaryIO, what: str) -> bytes:
    """All of a decompressed stream, chunk by chunk (one big read() would allocate the limit)."""
    data = bytearray()
    while chunk := stream.read(CHUNK):
        data += chunk
        if len(data) > MAX_KERNEL_BYTES:
            raise _Refused(f"{what} is larger than {MAX_KERNEL_BYTES >> 20} MiB")
    return bytes(data)


_BANNER = re.compile(rb"Linux version (\S{1,200}) \(")


def _release_in(kernel: bytes) -> str | None:
    match = _BANNER.search(kernel)
    return match.group(1).decode("ascii", "replace") if match else None


def _from_kernel(kernel: bytes, what: str) -> tuple[str, str | None]:
    """(build id, release) of an uncompressed kernel: an ELF vmlinux or a raw Image."""
    try:
        build_id = elf_build_id(kernel) if kernel[:4] == _ELF else scan_image(kernel)
    except NoteError as exc:
        raise _Refused(f"{what}: {exc}") from None
    if not build_id:
        raise _Refused(f"{what} carries no GNU build id note (NT_GNU_BUILD_ID)")
    return build_id, _release_in(kernel)


# ---- formats -----------------------------------------------------------------------------


def _bzimage(data: bytes, deadline: float, what: str) -> tuple[str, str | None]:
    """x86 boot protocol >= 2.08: the payload's offset and length are in the setup header."""
    setup_sects = data[0x1F1] or 4
    (version,) = struct.unpack_from("<H", data, 0x206)
    if version < 0x208:
        raise _Refused(
            f"{what}: boot protocol {version >> 8}.{version & 0xFF} has no payload fields"
        )
    payload_offset, payload_length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    end = start + payload_length
    if payload_length < 8 or end > len(data):
        raise _Refused(
            f"{what} is truncated: its header declares a payload up to byte {end}, the file has {len(data)}"
        )
    (declared,) = struct.unpack_from("<I", data, end - 4)  # the payload ends with the kernel's size
    if declared > MAX_KERNEL_BYTES:
        raise _Refused(
            f"{what} declares a {declared >> 20} MiB kernel (limit {MAX_KERNEL_BYTES >> 20} MiB)"
        )
    payload = data[start : end - 4]
    codec = _codec_of(payload)
    if codec is None:
        raise _Refused(f"{what}: the compressed payload has no known compression signature")
    kernel = _read_all(_guarded(io.BytesIO(payload), codec, deadline, what), what)
    build_id, release = _from_kernel(kernel, what)
    if release is None:
        (pointer,) = struct.unpack_from("<H", data, 0x20E)
        text = data[pointer + 0x200 : pointer + 0x400].split(b"\0")[0].decode("ascii", "replace")
        release = text.split(" ")[0] or None
    return build_id, release


def _arm64_image(data: bytes, what: str) -> tuple[str, str | None]:
    (image_size,) = struct.unpack_from("<Q", data, 0x10)
    if image_size and image_size > MAX_KERNEL_BYTES:
        raise _Refused(f"{what} declares a {image_size >> 20} MiB image")
    return _from_kernel(data, what)


def _deb(handle: BinaryIO, size: int, deadline: float, what: str) -> tuple[str, str | None, str]:
    """The kernel inside a Debian package's data.tar.* (deb(5): an `ar` archive)."""
    handle.seek(8)
    while True:
        header = handle.read(60)
        if not header:
            raise _Refused(f"{what} is a Debian package without a data.tar member")
        if len(header) < 60 or header[58:60] != b"`\n":
            raise _Refused(f"{what} is a damaged Debian package (bad ar member header)")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            member_size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise _Refused(f"{what} is a damaged Debian package (bad ar member size)") from None
        start = handle.tell()
        if start + member_size > size:
            raise _Refused(
                f"{what} is truncated: member {name} declares {member_size} bytes past the end of the file"
            )
        if name.startswith("data.tar"):
            break
        handle.seek(start + member_size + (member_size & 1))
    member = io.BytesIO(handle.read(member_size))
    codec = "none" if name == "data.tar" else _codec_of(member.getvalue()[:8])
    if codec is None:
        raise _Refused(f"{what}: {name} has no known compression signature")
    tar_stream = (
        member if codec == "none" else _guarded(member, codec, deadline, f"{what} ({name})")
    )
    try:
        with tarfile.open(fileobj=tar_stream, mode="r|") as tar:
            for entry in tar:
                path = entry.name.removeprefix("./")
                if entry.isfile() and re.fullmatch(r"(usr/lib/debug/)?boot/vmlinu[xz]-[^/]+", path):
                    if entry.size > MAX_KERNEL_BYTES:
                        raise _Refused(f"{what}: {path} declares {entry.size >> 20} MiB")
                    extracted = tar.extractfile(entry)
                    assert extracted is not None
                    kernel = extracted.read()
                    if len(kernel) != entry.size:
                        raise _Refused(f"{what} is truncated inside {path}")
                    release = path.rsplit("/", 1)[1][len("vmlinuz-") :]
                    build_id, _, fmt = _identify_bytes(kernel, deadline, f"{what}:{path}")
                    return build_id, release, f"deb ({fmt})"
    except tarfile.TarError as exc:
        raise _Refused(f"{what}: {name} is not a readable tar archive ({exc})") from None
    raise _Refused(f"{what} holds no boot/vmlinuz-* or boot/vmlinux-*: not a kernel package")


def _zboot(data: bytes, deadline: float, what: str) -> tuple[str, str | None, str]:
    """EFI zboot (arm64/riscv CONFIG_EFI_ZBOOT): "MZ", "zimg", then payload offset and size."""
    offset, size = struct.unpack_from("<II", data, 8)
    if offset + size > len(data) or size == 0:
        raise _Refused(
            f"{what} is truncated: its zboot header declares a payload up to byte {offset + size}"
        )
    codec = _codec_of(data[offset : offset + 8])
    if codec is None:
        raise _Refused(f"{what}: the zboot payload has no known compression signature")
    kernel = _read_all(
        _guarded(io.BytesIO(data[offset : offset + size]), codec, deadline, what), what
    )
    build_id, release, inner = _identify_bytes(kernel, deadline, what)
    return build_id, release, f"EFI zboot ({inner}, {codec})"


def _identify_bytes(data: bytes, deadline: float, what: str) -> tuple[str, str | None, str]:
    if data[:2] == b"MZ" and data[4:8] == b"zimg" and len(data) >= 16:
        return _zboot(data, deadline, what)
    if data[:4] == _ELF:
        return (*_from_kernel(data, what), "vmlinux (ELF)")
    if len(data) >= 0x250 and data[0x202:0x206] == b"HdrS":
        return (*_bzimage(data, deadline, what), "x86 bzImage")
    if len(data) >= 0x40 and data[0x38:0x3C] == _ARM64_MAGIC:
        return (*_arm64_image(data, what), "arm64 Image")
    codec = _codec_of(data)
    if codec is not None:
        kernel = _read_all(_guarded(io.BytesIO(data), codec, deadline, what), what)
        build_id, release, inner = _identify_bytes(kernel, deadline, what)
        if inner.endswith("(compressed)"):
            raise _Refused(f"{what} is compressed twice: not a kernel image")
        return build_id, release, f"{inner} ({codec}-compressed)"
    raise _Refused(
        f"{what} is not a kernel image the harness knows (Debian package, bzImage, arm64 Image[.gz], ELF vmlinux)"
    )


def _identify_image(handle: BinaryIO, size: int, deadline: float) -> tuple[str, str | None, str]:
    """A file is mapped, not read: a raw Image is scanned in place, without a copy."""
    if size == 0:
        raise _Refused("the file is empty")
    if isinstance(handle, io.BytesIO):
        return _identify_bytes(handle.getbuffer().tobytes(), deadline, "the image")
    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return _identify_bytes(mapped, deadline, "the image")  # type: ignore[arg-type]


def identify_artifact(
    source: Path | bytes, label: str | None = None, *, field: str = "artifact"
) -> ArtifactIdentity:
    """Build id, release and format of a kernel artifact (a path or its bytes).

    Raises UserError (exit 2; the API answers 422) naming the file when the
    artifact is malformed, truncated, hostile or carries no build id.
    """
    started = time.monotonic()
    deadline = started + DEADLINE_SECONDS
    what = label or (str(source) if isinstance(source, Path) else "uploaded kernel artifact")
    location = Location(file=what if isinstance(source, Path) else None, field=field)
    try:
        if isinstance(source, Path):
            try:
                size = source.stat().st_size
                handle: BinaryIO = source.open("rb")
            except OSError as exc:
                raise _Refused(f"cannot read it ({exc.strerror})") from None
        else:
            size, handle = len(source), io.BytesIO(source)
        with handle:
            if size > MAX_ARTIFACT_BYTES:
                raise _Refused(f"{size} bytes is larger than {MAX_ARTIFACT_BYTES >> 20} MiB")
            if handle.read(8) == b"!<arch>\n":
                build_id, release, fmt = _deb(handle, size, deadline, "the package")
            else:
                handle.seek(0)
                build_id, release, fmt = _identify_image(handle, size, deadline)
    except _Refused as exc:
        raise UserError(f"kernel artifact refused: {exc}", location) from None
    except (struct.error, IndexError, MemoryError) as exc:
        raise UserError(f"kernel artifact refused: malformed ({exc})", location) from None
    return ArtifactIdentity(build_id, release, fmt, time.monotonic() - started)
