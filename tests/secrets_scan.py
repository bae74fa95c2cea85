"""Find planted secrets in everything a harness session left behind: files, archives, messages.

Shared by the secrets suite (tests/test_secrets.py) and the soak (tests/test_soak.py).
A secret counts as leaked if its text appears anywhere, in plain or in base64,
in any file under the scanned folders (tar/gzip archives such as bundles are
unpacked, recursively) or in any captured message. Hand-written because it is
a dozen lines over tarfile; no library does "grep inside archives" better.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Secret:
    name: str
    text: str

    def forms(self) -> list[bytes]:
        raw = self.text.encode()
        return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


@dataclass
class Outputs:
    """What one session produced: folders to scan and captured texts (stdout, stderr, replies)."""

    folders: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    excluded: list[Path] = field(default_factory=list)  # where a secret legitimately lives

    def add(self, other: Outputs) -> None:
        self.folders += other.folders
        self.files += other.files
        self.texts.update(other.texts)
        self.excluded += other.excluded


def _members(name: str, data: bytes, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    yield name, data
    if depth > 3:
        return
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            yield from _members(f"{name}!gunzip", gzip.decompress(data), depth + 1)
        return
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                if member.isfile():
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        yield from _members(f"{name}!{member.name}", extracted.read(), depth + 1)
    except (tarfile.TarError, EOFError, ValueError):
        pass


def _files(outputs: Outputs) -> Iterable[Path]:
    excluded = [path.resolve() for path in outputs.excluded]
    seen: set[Path] = set()
    candidates = list(outputs.files)
    for folder in outputs.folders:
        if folder.exists():
            candidates += [path for path in folder.rglob("*") if path.is_file()]
    for path in candidates:
        resolved = path.resolve()
        if resolved in seen or any(resolved.is_relative_to(ex) for ex in excluded):
            continue
        seen.add(resolved)
        yield path


def find_leaks(outputs: Outputs, secrets: Iterable[Secret]) -> list[str]:
    """One line per (secret, place) where a secret was found; empty when nothing leaked."""
    secrets = list(secrets)
    leaks: list[str] = []
    scanned = 0
    for path in _files(outputs):
        scanned += 1
        for name, data in _members(str(path), path.read_bytes()):
            leaks += [
                f"{secret.name} in {name}"
                for secret in secrets
                if any(form in data for form in secret.forms())
            ]
    for where, text in outputs.texts.items():
        data = text.encode()
        leaks += [
            f"{secret.name} in {where}"
            for secret in secrets
            if any(form in data for form in secret.forms())
        ]
    assert scanned, "nothing was scanned: the scan itself is broken"
    return leaks
