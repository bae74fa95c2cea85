"""The secrets scanner finds a planted secret wherever it hides: plain, base64, inside a gzipped tar."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
from pathlib import Path

from tests.secrets_scan import Outputs, Secret, find_leaks

SECRET = Secret("token", "Planted-Token-0123456789abcdef")


def _tar_gz(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return gzip.compress(buffer.getvalue())


def test_scanner_finds_secrets_in_files_archives_base64_and_messages(tmp_path: Path) -> None:
    (tmp_path / "clean.txt").write_text("nothing to see")
    (tmp_path / "plain.log").write_text(f"password={SECRET.text}\n")
    (tmp_path / "bundle.tar.gz").write_bytes(_tar_gz("run/console.log", SECRET.text.encode()))
    (tmp_path / "encoded.json").write_bytes(base64.b64encode(SECRET.text.encode()))
    outputs = Outputs(folders=[tmp_path], texts={"stderr": f"error: bad token {SECRET.text}"})
    leaks = find_leaks(outputs, [SECRET])
    assert set(leaks) >= set(
        [
            f"token in {tmp_path / 'plain.log'}",
            f"token in {tmp_path / 'bundle.tar.gz'}!gunzip!run/console.log",
            f"token in {tmp_path / 'encoded.json'}",
            "token in stderr",
        ]
    )
    assert not [leak for leak in leaks if "clean.txt" in leak]


def test_scanner_skips_excluded_folders(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "lab_ed25519").write_text(SECRET.text)
    (tmp_path / "run.json").write_text("{}")
    assert find_leaks(Outputs(folders=[tmp_path], excluded=[keys]), [SECRET]) == []
