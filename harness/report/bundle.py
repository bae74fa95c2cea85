"""Evidence bundles: a run folder packed, fingerprinted and signed by the lab.

Layout (see docs/bundle-format.md): an uncompressed POSIX tar holding
``manifest.json`` (sha256 and size of every file of the run folder, the run
id, the lab name and its public key), ``manifest.sig`` (the lab's ed25519
signature of the exact manifest bytes) and the run folder's files under
``run/``. The tar is written canonically (fixed order and metadata), so the
verifier can rebuild it from its contents and notice a change to any byte,
including header and padding bytes no manifest would cover.

This module makes bundles; harness/report/bundle_read.py verifies and reads them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from harness.errors import Location, UserError
from harness.labkey import LabIdentity, load_or_create_identity
from harness.report.runfolder import RUN_JSON, read_any_run_json

FORMAT = "harness-evidence-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
RUN_PREFIX = "run/"
CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE


@dataclass(frozen=True)
class BundleInfo:
    path: Path
    sha256: str
    run_id: str
    lab: str


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# Written beside the evidence after the bundle is made (how delivery went), so never packed:
# a bundle made again after a delivery attempt must be the same bytes.
NOT_EVIDENCE = frozenset({"submission.json"})


def _run_files(run_dir: Path) -> list[tuple[str, Path]]:
    """Every evidence file of the run folder, relative POSIX path first; anything but plain files is refused."""
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(run_dir, followlinks=False):
        if Path(root) == run_dir:
            files = [name for name in files if name not in NOT_EVIDENCE]
        for name in sorted(dirs):
            if (Path(root) / name).is_symlink():
                raise UserError(
                    "run folder contains a symlink; evidence must be plain files",
                    Location(Path(root) / name),
                )
        for name in files:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                raise UserError(
                    "run folder contains something that is not a regular file", Location(path)
                )
            found.append((path.relative_to(run_dir).as_posix(), path))
    return sorted(found)


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """run.json of a run folder, checked against its record model (a certification or a repro
    run: harness/model/records.py, harness/model/case_records.py)."""
    if not run_dir.is_dir():
        raise UserError("not a run folder (no such directory)", Location(run_dir))
    return read_any_run_json(run_dir / RUN_JSON)


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    """Fixed metadata so the same contents always give the same bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def write_canonical(out: IO[bytes], members: list[tuple[str, int, BinaryIO | bytes]]) -> None:
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for name, size, content in members:
            stream = io.BytesIO(content) if isinstance(content, bytes) else content
            tar.addfile(_tarinfo(name, size), stream)


def default_bundle_path(run_dir: Path) -> Path:
    return run_dir.parent / f"{run_dir.name}.bundle.tar"


def make_bundle(
    run_dir: Path, out: Path | None = None, identity: LabIdentity | None = None
) -> BundleInfo:
    """Pack and sign `run_dir`. Deterministic: the same folder and key give the same bytes."""
    run_dir = Path(run_dir)
    run = read_run_json(run_dir)
    identity = identity or load_or_create_identity()
    files = _run_files(run_dir)
    manifest = {
        "format": FORMAT,
        "run_id": run["run_id"],
        "lab": identity.name,
        "public_key": identity.public_key_text,
        "files": [
            {"path": rel, "sha256": _file_sha256(path), "size": path.stat().st_size}
            for rel, path in files
        ],
    }
    manifest_bytes = canonical_json(manifest)
    signature = identity.sign(manifest_bytes)
    out = Path(out) if out else default_bundle_path(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    handles: list[BinaryIO] = []
    try:
        members: list[tuple[str, int, BinaryIO | bytes]] = [
            (MANIFEST, len(manifest_bytes), manifest_bytes),
            (SIGNATURE, len(signature), signature),
        ]
        for entry, (_rel, path) in zip(manifest["files"], files, strict=True):
            handle = path.open("rb")
            handles.append(handle)
            members.append((RUN_PREFIX + entry["path"], entry["size"], handle))
        with tmp.open("wb") as fh:
            write_canonical(fh, members)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    finally:
        for handle in handles:
            handle.close()
        tmp.unlink(missing_ok=True)
    return BundleInfo(path=out, sha256=_file_sha256(out), run_id=run["run_id"], lab=identity.name)
