"""Evidence bundles: signed, byte-exact, and safe to read."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from harness.labkey import LabIdentity, load_or_create_identity
from harness.report.bundle import make_bundle
from harness.report.bundle_read import unpack_bundle, verify_bundle


def test_bundle_of_a_run_folder_verifies_and_lists_every_file(
    run_folder: Path, harness_cli
) -> None:
    made = harness_cli("bundle", "make", str(run_folder))
    assert made.returncode == 0, made.stderr
    bundle = run_folder.parent / f"{run_folder.name}.bundle.tar"
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    listed = {f["path"] for f in report.manifest["files"]}
    assert listed == {
        "run.json",
        "results.jsonl",
        "console.log",
        "junit.xml",
        "inventory.json",
        "report.html",
        "artifacts/roundtrip.bin",
        "diagnostics/dmesg.txt",
        "diagnostics/kernel-config.txt",
        "diagnostics/cmdline.txt",
        "diagnostics/modules.txt",
        "diagnostics/firmware.txt",
    }
    on_disk = {p.relative_to(run_folder).as_posix() for p in run_folder.rglob("*") if p.is_file()}
    assert listed == on_disk
    assert report.manifest["lab"] == "bundle-lab"
    checked = harness_cli("bundle", "verify", str(bundle), "--lab-key")
    assert checked.returncode == 0, checked.stderr
    assert "ok:" in checked.stdout


def test_same_folder_and_key_give_identical_bundle_bytes(run_folder: Path, tmp_path: Path) -> None:
    first = make_bundle(run_folder, tmp_path / "a.tar")
    second = make_bundle(run_folder, tmp_path / "b.tar")
    assert first.sha256 == second.sha256
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_lab_private_key_is_0600_and_never_inside_a_bundle(
    run_folder: Path, data_home: Path
) -> None:
    info = make_bundle(run_folder)
    key_file = data_home / "lab" / "lab_ed25519"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = key_file.read_bytes()
    body = private.split(b"-----")[2].strip()
    assert body not in info.path.read_bytes()
    assert load_or_create_identity().public_key_text.encode() in info.path.read_bytes()


def test_private_key_readable_by_others_is_refused(
    run_folder: Path, data_home: Path, harness_cli
) -> None:
    load_or_create_identity()
    os.chmod(data_home / "lab" / "lab_ed25519", 0o644)
    result = harness_cli("bundle", "make", str(run_folder))
    assert result.returncode == 2
    assert "lab_ed25519" in result.stderr and "readable by others" in result.stderr


def test_every_changed_byte_is_detected(run_folder: Path, tmp_path: Path, harness_cli) -> None:
    """Every byte of the manifest's tar header and body (the first 2048 bytes, so every
    header field is flipped once), and every 17th byte beyond: the other members' headers,
    contents and padding, about 5,000 verifications for a full run folder.

    Each altered copy must give a report with problems (what `bundle verify` turns into
    exit 1, "TAMPERED"); none may be taken for a file that is not a bundle at all
    (BundleUnreadable, exit 2) or crash.
    """
    data = make_bundle(run_folder).path.read_bytes()
    undetected = []
    for offset in [*range(0, 2048), *range(2048, len(data), 17)]:
        altered = bytearray(data)
        altered[offset] ^= 0x20
        if verify_bundle(bytes(altered)).ok:
            undetected.append(offset)
    assert undetected == []
    first_byte = bytearray(data)
    first_byte[0] ^= 0x20
    (tmp_path / "altered.tar").write_bytes(first_byte)
    result = harness_cli("bundle", "verify", str(tmp_path / "altered.tar"))
    assert result.returncode == 1
    assert result.stderr.startswith("TAMPERED:")


def test_added_and_removed_bytes_are_detected(run_folder: Path) -> None:
    data = make_bundle(run_folder).path.read_bytes()
    assert not verify_bundle(data + b"\0").ok
    assert not verify_bundle(data + b"\0" * 10240).ok
    assert not verify_bundle(data[:-1]).ok
    assert not verify_bundle(data[:-10240] + data[-10240:][:-512]).ok


def _repack(data: bytes, change) -> bytes:
    """Unpack a bundle's members, let `change` edit the dict, write them back (attacker's view)."""
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            members[m.name] = tar.extractfile(m).read()
    change(members)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


@pytest.mark.parametrize(
    ("what", "change", "problem"),
    [
        (
            "changed file",
            lambda m: m.__setitem__(
                "run/run.json", m["run/run.json"].replace(b"certified", b"CERTIFIED")
            ),
            "'run.json' was changed",
        ),
        ("added file", lambda m: m.__setitem__("run/extra.log", b"hello"), "'extra.log' was added"),
        (
            "removed file",
            lambda m: m.pop("run/console.log"),
            "'console.log' listed in the manifest is missing",
        ),
        ("removed signature", lambda m: m.pop("manifest.sig"), "manifest.sig is missing"),
    ],
)
def test_tampered_bundle_exits_1_naming_the_problem(
    run_folder: Path, tmp_path: Path, harness_cli, what, change, problem
) -> None:
    data = make_bundle(run_folder).path.read_bytes()
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(_repack(data, change))
    result = harness_cli("bundle", "verify", str(tampered))
    assert result.returncode == 1, what
    assert problem in result.stderr


def test_bundle_resigned_with_another_key_fails_against_the_trusted_key(
    run_folder: Path, tmp_path: Path, harness_cli
) -> None:
    real = load_or_create_identity()
    forger = load_or_create_identity(tmp_path / "forger")
    forged = make_bundle(
        run_folder, tmp_path / "forged.tar", LabIdentity(real.name, forger.private_key)
    )
    assert verify_bundle(forged.path).ok  # self-consistent ...
    result = harness_cli("bundle", "verify", str(forged.path), "--public-key", real.public_key_text)
    assert result.returncode == 1  # ... but not signed by the lab
    assert "different public key" in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("verify", "{tmp}/missing.tar"), "bundle file not found"),
        (("verify", "{tmp}"), "is a directory"),
        (("verify", "{tmp}/notatar.bin"), "not a readable tar file"),
        (("make", "{tmp}/no-such-run"), "not a run folder"),
        (("verify", "{tmp}/x.tar", "--public-key", "ed25519:!!"), "--public-key"),
    ],
)
def test_unreadable_input_exits_2_with_one_paragraph(
    tmp_path: Path, harness_cli, args, words
) -> None:
    (tmp_path / "notatar.bin").write_bytes(os.urandom(3000))
    result = harness_cli("bundle", *[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_json_without_run_id_names_the_field(run_folder: Path, harness_cli) -> None:
    run = json.loads((run_folder / "run.json").read_text())
    del run["run_id"]
    (run_folder / "run.json").write_text(json.dumps(run))
    result = harness_cli("bundle", "make", str(run_folder))
    assert result.returncode == 2
    assert "run.json" in result.stderr and "run_id" in result.stderr


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda run: run["board"].pop("model"), "board.model"),
        (lambda run: run.update(verdict="passed"), "verdict"),
        (lambda run: run.update(registry="delivered"), "registry"),
    ],
    ids=["missing-field", "unknown-verdict", "unknown-field"],
)
def test_run_json_that_does_not_fit_the_run_record_is_not_bundled(
    run_folder: Path, harness_cli, change, field: str
) -> None:
    """Refused at once with the field named, instead of queued for a registry that would refuse it."""
    run = json.loads((run_folder / "run.json").read_text())
    change(run)
    (run_folder / "run.json").write_text(json.dumps(run))
    result = harness_cli("bundle", "make", str(run_folder))
    assert result.returncode == 2
    assert f"field '{field}'" in result.stderr and "run.json" in result.stderr
    assert not (run_folder.parent / f"{run_folder.name}.bundle.tar").exists()


def test_symlink_in_run_folder_is_refused(run_folder: Path, harness_cli) -> None:
    (run_folder / "passwd").symlink_to("/etc/passwd")
    result = harness_cli("bundle", "make", str(run_folder))
    assert result.returncode == 2
    assert "passwd" in result.stderr and "not a regular file" in result.stderr


def _hostile_tar(kind: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        manifest = json.dumps({"format": "harness-evidence-bundle/1"}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        evil = tarfile.TarInfo({"traversal": "run/../../escaped.txt", "absolute": "/tmp/escaped.txt",
                                "symlink": "run/link", "device": "run/dev", "hardlink": "run/hard"}[kind])  # fmt: skip
        if kind == "symlink":
            evil.type, evil.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            evil.type, evil.linkname = tarfile.LNKTYPE, "/etc/passwd"
        elif kind == "device":
            evil.type, evil.devmajor, evil.devminor = tarfile.CHRTYPE, 1, 3
        payload = b"pwned" if evil.type == tarfile.REGTYPE else b""
        evil.size = len(payload)
        tar.addfile(evil, io.BytesIO(payload))
    return out.getvalue()


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink", "device", "hardlink"])
def test_unsafe_members_are_reported_and_never_unpacked(tmp_path: Path, kind: str) -> None:
    bundle = tmp_path / "evil.tar"
    bundle.write_bytes(_hostile_tar(kind))
    report = verify_bundle(bundle)
    assert not report.ok
    assert any(
        word in " ".join(report.problems) for word in ("absolute", "'..'", "not a regular file")
    )
    dest = tmp_path / "out" / "deep"
    unpacked = unpack_bundle(bundle, dest)
    assert not unpacked.ok
    assert not (tmp_path / "out" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert not dest.exists() or not any(dest.iterdir())


def test_unpack_writes_exactly_the_run_files(run_folder: Path, tmp_path: Path) -> None:
    info = make_bundle(run_folder)
    dest = tmp_path / "unpacked"
    assert unpack_bundle(info.path, dest).ok
    for path in run_folder.rglob("*"):
        if path.is_file():
            assert (dest / path.relative_to(run_folder)).read_bytes() == path.read_bytes()


def test_concurrent_first_use_creates_exactly_one_lab_key(tmp_path: Path) -> None:
    import threading

    folder = tmp_path / "fresh-lab"
    keys: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: keys.append(load_or_create_identity(folder).public_key_text)
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert sorted(p.name for p in folder.iterdir()) == [
        "lab.json",
        "lab_ed25519",
        "lab_ed25519.pub",
    ]
