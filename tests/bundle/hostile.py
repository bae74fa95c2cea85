"""Hostile evidence bundles, built byte by byte the way an attacker would.

`tarfile` cannot write GNU sparse members or lie about sizes, so the headers
are assembled here by hand (POSIX ustar layout with the GNU extension fields:
sparse map at offset 386, real size at 483). Used by the bundle and registry
tests that prove such a file is refused quickly and in bounded memory.
"""

from __future__ import annotations

import io
import json
import tarfile

BLOCK = 512


def _octal(value: int, width: int) -> bytes:
    return f"{value:0{width - 1}o}".encode() + b"\0"


def _base256(value: int, width: int) -> bytes:
    """GNU's binary number encoding, for values too big for octal digits."""
    return bytes([0x80]) + value.to_bytes(width - 1, "big")


def header(name: str, size: int, typeflag: bytes = b"0", *, realsize: int | None = None) -> bytes:
    """One 512-byte tar header; `typeflag` b"S" with `realsize` makes a GNU sparse member."""
    buf = bytearray(BLOCK)
    buf[0 : len(name)] = name.encode()
    buf[100:108] = _octal(0o644, 8)
    buf[108:116] = _octal(0, 8)
    buf[116:124] = _octal(0, 8)
    buf[124:136] = _octal(size, 12) if size < 8**11 else _base256(size, 12)
    buf[136:148] = _octal(0, 12)
    buf[156:157] = typeflag
    if typeflag == b"S":
        buf[257:265] = b"ustar  \0"  # GNU magic: the sparse fields are read only for GNU headers
        assert realsize is not None
        # one sparse entry: a single data byte at the very end, a hole of realsize-1 before it
        buf[386:398] = _base256(realsize - 1, 12)
        buf[398:410] = _octal(1, 12)
        buf[483:495] = _base256(realsize, 12)
    else:
        buf[257:265] = b"ustar\x0000"
    buf[148:156] = b" " * 8
    buf[148:156] = _octal(sum(buf), 7) + b" "
    return bytes(buf)


def member(name: str, content: bytes) -> bytes:
    padding = (-len(content)) % BLOCK
    return header(name, len(content)) + content + b"\0" * padding


def sparse_bundle(realsize: int = 10**15) -> bytes:
    """About 10 KB on disk; a reader that trusts tarfile sees a 10^15-byte run/console.log.

    The manifest lists that size and carries a signature of 64 zero bytes (wrong), so a
    verifier that hashes before checking the signature reads a petabyte of zeros.
    """
    manifest = json.dumps(
        {
            "format": "harness-evidence-bundle/1",
            "run_id": "sparse-run",
            "lab": "lab-one",
            "public_key": "ed25519:" + "A" * 43 + "=",
            "files": [{"path": "console.log", "sha256": "0" * 64, "size": realsize}],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    data = member("manifest.json", manifest) + member("manifest.sig", b"\0" * 64)
    data += header("run/console.log", BLOCK, b"S", realsize=realsize) + b"x" * BLOCK
    return data + b"\0" * (BLOCK * 16)


def oversized_member_bundle(declared: int = 10**12) -> bytes:
    """A plain member whose header declares far more bytes than the file holds."""
    data = member("manifest.json", b"{}") + header("run/run.json", declared) + b"{}"
    return data + b"\0" * (BLOCK * 4)


def nested_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def repack(data: bytes, change) -> bytes:
    """Unpack a bundle's members, let `change` edit the dict, write them back (attacker's view)."""
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            stream = tar.extractfile(m)
            assert stream is not None
            members[m.name] = stream.read()
    change(members)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def resign(data: bytes, identity, change) -> bytes:
    """Let `change` edit the members, then rebuild the manifest and sign it with `identity`.

    What a lab whose key signs hostile content produces: every byte is covered by a
    valid signature, so only the registry's own limits stand between it and the server.
    """
    import hashlib

    from harness.report.bundle import canonical_json

    def edit(members: dict[str, bytes]) -> None:
        change(members)
        manifest = json.loads(members["manifest.json"])
        manifest["files"] = [
            {"path": name[4:], "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
            for name, content in members.items()
            if name.startswith("run/")
        ]
        members["manifest.json"] = canonical_json(manifest)
        members["manifest.sig"] = identity.sign(members["manifest.json"])

    return repack(data, edit)
