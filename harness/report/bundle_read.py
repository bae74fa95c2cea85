"""Reading evidence bundles: verification, single members, run files, unpacking.

A bundle is whatever an uploader sent (docs/bundle-format.md "Limits"): every limit is
enforced from tar headers before content is read, a file is read in pieces and never
whole, and hashing happens only once the signature and every header hold. Reading never
touches the filesystem except through `unpack_bundle`, which only ever creates regular
files below the destination. Bundles are made by harness/report/bundle.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from harness.errors import Location, UserError, reading_user_file
from harness.labkey import fingerprint, verify_signature
from harness.report.bundle import (
    BLOCK,
    CHUNK,
    FORMAT,
    MANIFEST,
    RUN_PREFIX,
    SIGNATURE,
    write_canonical,
)
from harness.userfile import open_input

# Limits a verifier enforces from tar headers alone, before reading any content
# (docs/bundle-format.md "Limits"). Generous for real run folders, small for attackers.
MAX_MANIFEST_BYTES = 16 << 20  # manifest.json; also run.json as the registry reads it
SIGNATURE_BYTES = 64  # manifest.sig: one raw ed25519 signature
MAX_MEMBERS = 100_000
MAX_NAME_CHARS = 4096
MAX_SINGLE_READ = CHUNK  # no honest tar header needs more in one read (see _BoundedSource)
MAX_JSON_DEPTH = 64


class BundleUnreadable(UserError):
    """Not a bundle at all (missing, not a tar, truncated): bad input, exit 2."""


@dataclass
class VerifyReport:
    """What `verify_bundle` found. `problems` empty means intact and correctly signed."""

    path: str
    sha256: str
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    signer_fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", ""))


def safe_member_name(name: str) -> str | None:
    """The reason a member name is unsafe to unpack, or None when it is a plain relative path."""
    if not name or "\\" in name or "\x00" in name:
        return "has an empty name or one with backslashes or NUL bytes"
    if len(name) > MAX_NAME_CHARS:
        return f"has a name longer than {MAX_NAME_CHARS} characters"
    path = PurePosixPath(name)
    if path.is_absolute():
        return "is an absolute path"
    if any(part in ("..", ".", "") for part in name.split("/")):
        return "contains '..', '.' or an empty path component"
    return None


class _HeaderTooLarge(Exception):
    """tarfile asked for more bytes in one read than any honest header needs."""


class _BoundedSource(io.RawIOBase):
    """A seekable file that refuses any single read above MAX_SINGLE_READ bytes.

    tarfile reads a pax extended header or a GNU long name in one `read(size)` of
    whatever size the header declares; a hostile 200 MB pax header would be held in
    memory whole. Every honest read (512-byte headers, member data in CHUNK pieces,
    tarfile's 16 KiB copy buffer) is far below the bound, so refusing a larger read
    bounds memory without reimplementing the tar parser.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > MAX_SINGLE_READ:
            raise _HeaderTooLarge(size)
        return self.fh.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _file_size(fh: BinaryIO) -> int:
    end = fh.seek(0, io.SEEK_END)
    fh.seek(0)
    return end


class _Reader:
    """A parsed bundle whose members have passed the safety rules.

    Members are checked from their headers alone, before a byte of content is read:
    names, types (sparse members are refused: tarfile would synthesise their holes,
    so a 10 KB file can stand for a petabyte of zeros), declared sizes against the
    bytes the file really holds, and the member count.
    """

    def __init__(self, fh: BinaryIO, label: str):
        self.fh = fh
        self.label = label
        self.unsafe: list[str] = []
        self.members: dict[str, tarfile.TarInfo] = {}
        self.order: list[str] = []
        size = _file_size(fh)
        try:
            self.tar = tarfile.open(fileobj=_BoundedSource(fh), mode="r:", encoding="utf-8")  # noqa: SIM115 - lives as long as the reader
            count = 0
            while (member := self.tar.next()) is not None:
                count += 1
                if count > MAX_MEMBERS:
                    self.unsafe.append(f"bundle has more than {MAX_MEMBERS} members")
                    break
                self._admit(member, size)
        except _HeaderTooLarge:
            if not self.members and not self.unsafe:
                raise BundleUnreadable(
                    "not a readable tar file (first header declares oversized extended data)",
                    Location(label),
                ) from None
            self.unsafe.append(
                f"a tar header declares more than {MAX_SINGLE_READ} bytes of extended data"
            )
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            if not self.members and not self.unsafe:
                raise BundleUnreadable(
                    f"not a readable tar file ({exc})", Location(label)
                ) from None
            self.unsafe.append(
                f"bundle is truncated or damaged after member {self.order[-1:]} ({exc})"
            )

    def _admit(self, member: tarfile.TarInfo, file_size: int) -> None:
        reason = safe_member_name(member.name)
        if reason:
            self.unsafe.append(f"member {member.name[:200]!r} {reason}")
        elif member.issparse() or member.type == tarfile.GNUTYPE_SPARSE:
            self.unsafe.append(f"member {member.name!r} is a sparse file (refused)")
        elif not member.isreg():
            self.unsafe.append(
                f"member {member.name!r} is not a regular file (links and devices are refused)"
            )
        elif member.size < 0 or member.offset_data + member.size > file_size:
            self.unsafe.append(
                f"member {member.name!r} declares {member.size} bytes, more than the file holds"
            )
        elif member.name in self.members:
            self.unsafe.append(f"member {member.name!r} appears twice")
        else:
            self.members[member.name] = member
            self.order.append(member.name)

    def read(self, name: str, limit: int) -> bytes:
        """A whole member, at most `limit` bytes (checked from the header before reading)."""
        member = self.members[name]
        if member.size > limit:
            raise MemberTooLarge(f"{name} is larger than {limit} bytes")
        stream = self.stream(name)
        parts = []
        while chunk := stream.read(CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def stream(self, name: str) -> BinaryIO:
        stream = self.tar.extractfile(self.members[name])
        assert stream is not None  # regular files always have a stream
        return stream  # type: ignore[return-value]

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        stream = self.stream(name)
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
        return digest.hexdigest()


class MemberTooLarge(ValueError):
    """A member is larger than the limit its role allows (manifest, signature, run.json)."""


class _HashSink(io.RawIOBase):
    """A write-only file that only hashes, so rebuilding a large bundle costs no memory."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.position = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.position += len(data)
        return len(data)


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `value` nests deeper than `limit`; iterative, so it cannot itself recurse."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def load_json_bounded(data: bytes, what: str) -> Any:
    """Parse JSON from a bundle; deep nesting is an error message, never a RecursionError."""
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} is not valid JSON ({exc})") from None
    if json_depth_exceeds(value):
        raise ValueError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _check_manifest(manifest: Any) -> list[str]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return [f"manifest.json is not a {FORMAT} manifest"]
    problems = []
    for key in ("run_id", "lab", "public_key"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            problems.append(f"manifest.json field '{key}' is missing or not a string")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("path"), str)
        and isinstance(f.get("sha256"), str)
        and isinstance(f.get("size"), int)
        and not isinstance(f.get("size"), bool)
        and f["size"] >= 0
        for f in files
    ):
        problems.append("manifest.json field 'files' is not a list of {path, sha256, size}")
    return problems


def _verify_open(
    reader: _Reader, file_sha256: str, trusted_key: str | None, label: str
) -> VerifyReport:
    """Cheap checks first; content is hashed only once the signature and every header hold."""
    report = VerifyReport(path=label, sha256=file_sha256)
    report.problems.extend(reader.unsafe)
    if MANIFEST not in reader.members:
        if not reader.members and not reader.unsafe:
            raise BundleUnreadable("not an evidence bundle (empty tar)", Location(label))
        report.problems.append("manifest.json is missing")
        return report
    try:
        manifest_bytes = reader.read(MANIFEST, MAX_MANIFEST_BYTES)
        manifest = load_json_bounded(manifest_bytes, "manifest.json")
    except ValueError as exc:
        report.problems.append(str(exc))
        return report
    shape = _check_manifest(manifest)
    if shape:
        report.problems.extend(shape)
        return report
    report.manifest = manifest
    key = trusted_key or manifest["public_key"]
    report.signer_fingerprint = fingerprint(key)
    if trusted_key and trusted_key.strip() != manifest["public_key"].strip():
        report.problems.append("bundle names a different public key than the lab's registered key")
    signature = b""
    if SIGNATURE in reader.members:
        try:
            signature = reader.read(SIGNATURE, SIGNATURE_BYTES)
        except MemberTooLarge:
            signature = b"\0"  # wrong length: verify_signature refuses it below
    if not signature:
        report.problems.append("manifest.sig is missing")
    elif not verify_signature(key, signature, manifest_bytes):
        report.problems.append("signature does not match the manifest (forged or altered manifest)")
    listed = {f["path"]: f for f in manifest["files"]}
    present = {name[len(RUN_PREFIX) :] for name in reader.order if name.startswith(RUN_PREFIX)}
    for extra in sorted(
        set(reader.order) - {MANIFEST, SIGNATURE} - {RUN_PREFIX + p for p in present}
    ):
        report.problems.append(f"unexpected member {extra!r}")
    for path in sorted(set(listed) - present):
        report.problems.append(f"file {path!r} listed in the manifest is missing")
    for path in sorted(present - set(listed)):
        report.problems.append(f"file {path!r} was added (not in the manifest)")
    sized = []
    for path in sorted(present & set(listed)):
        if reader.members[RUN_PREFIX + path].size != listed[path]["size"]:
            report.problems.append(f"file {path!r} was changed (size differs from the manifest)")
        else:
            sized.append(path)
    if report.problems:
        # A bad signature, an unsafe member or a wrong size already decides the verdict;
        # hashing content an attacker chose would only spend our CPU.
        return report
    for path in sized:
        if reader.sha256(RUN_PREFIX + path) != listed[path]["sha256"]:
            report.problems.append(f"file {path!r} was changed (sha256 differs from the manifest)")
    if not report.problems:
        _check_canonical(reader, manifest, file_sha256, report)
    return report


def _check_canonical(
    reader: _Reader, manifest: dict[str, Any], file_sha256: str, report: VerifyReport
) -> None:
    """Rebuild the tar from its contents: any other byte (headers, padding, trailer) is tampering."""
    expected = [MANIFEST, SIGNATURE, *[RUN_PREFIX + f["path"] for f in manifest["files"]]]
    if reader.order != expected:
        report.problems.append("members are not in manifest order (bundle was repacked)")
        return
    sink = _HashSink()
    members: list[tuple[str, int, BinaryIO | bytes]] = [
        (name, reader.members[name].size, reader.stream(name)) for name in expected
    ]
    write_canonical(sink, members)  # type: ignore[arg-type]
    if sink.digest.hexdigest() != file_sha256:
        report.problems.append(
            "tar framing bytes differ from the canonical encoding (bundle was altered)"
        )


def _stream_sha256(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    fh.seek(0)
    while chunk := fh.read(CHUNK):
        digest.update(chunk)
    fh.seek(0)
    return digest.hexdigest()


@contextmanager
def _opened(source: Path | bytes | BinaryIO, label: str | None) -> Iterator[tuple[BinaryIO, str]]:
    """A seekable handle on the bundle, without ever reading a file whole into memory."""
    if isinstance(source, bytes):
        yield io.BytesIO(source), label or "<upload>"
        return
    if not isinstance(source, str | os.PathLike):
        yield source, label or "<upload>"
        return
    label = label or str(source)
    with reading_user_file(source, "a bundle file", BundleUnreadable, "bundle file not found"):
        fh = open_input(source)  # never blocks on a FIFO; closed by the with below
    with fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise BundleUnreadable(
                "is not a regular file, expected a bundle file", Location(source)
            )
        yield fh, label


def verify_bundle(
    source: Path | bytes | BinaryIO, trusted_key: str | None = None, label: str | None = None
) -> VerifyReport:
    """Check a bundle's safety, manifest, signature and every byte; raises BundleUnreadable for non-bundles.

    `source` is a path, bytes, or a seekable binary file; a file is read in pieces,
    never whole. `trusted_key` pins the signer (the registry passes the lab's
    registered key); without it the key embedded in the manifest is used, which
    proves integrity but not who signed.
    """
    with _opened(source, label) as (fh, label):
        digest = _stream_sha256(fh)
        try:
            reader = _Reader(fh, label)
        except BundleUnreadable:
            fh.seek(0)
            head = fh.read(BLOCK)
            if not (head.startswith(MANIFEST.encode()) or head[257:262] == b"ustar"):
                raise
            # It was a tar header once: a flipped byte there is tampering, not a wrong file.
            return VerifyReport(
                path=label, sha256=digest, problems=["tar header is damaged (bad checksum)"]
            )
        try:
            return _verify_open(reader, digest, trusted_key, label)
        except (tarfile.TarError, EOFError, OSError, ValueError, _HeaderTooLarge) as exc:
            return VerifyReport(
                path=label, sha256=digest, problems=[f"bundle is truncated or damaged ({exc})"]
            )


def read_member(source: bytes | BinaryIO, name: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
    """One member of an already verified bundle (e.g. ``run/run.json``), at most `limit` bytes."""
    with _opened(source, "<bundle>") as (fh, label):
        return _Reader(fh, label).read(name, limit)


def iter_run_files(source: Path | bytes | BinaryIO) -> Iterator[tuple[str, BinaryIO]]:
    """(path, stream) of every run file of an already verified bundle, in bundle order."""
    with _opened(source, "<bundle>") as (fh, label):
        reader = _Reader(fh, label)
        for name in reader.order:
            if name.startswith(RUN_PREFIX):
                yield name[len(RUN_PREFIX) :], reader.stream(name)


def unpack_bundle(source: Path, dest: Path, trusted_key: str | None = None) -> VerifyReport:
    """Verify, then write the run files below `dest` as new regular files only."""
    report = verify_bundle(source, trusted_key)
    if not report.ok:
        return report
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    for rel, stream in iter_run_files(Path(source)):
        target = (dest / rel).resolve()
        if root not in target.parents:
            raise UserError(f"refusing to write outside {dest}", Location(rel))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as fh:
            while chunk := stream.read(CHUNK):
                fh.write(chunk)
    return report
