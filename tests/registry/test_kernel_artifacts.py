"""`kernels add` takes the build id from the vendor's artifact, and refuses bad artifacts fast.

The artifacts are the virtual lab's real Debian kernel packages (built or
found cached by the `lab_artifacts` fixture) and the images inside them; the
hostile ones are made from them or from scratch, the way an attacker would.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import struct
import tarfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from harness.errors import UserError
from harness.kernelid.artifact import identify_artifact
from harness.vlab.build import cache_root
from harness.vlab.vendor_kernels import kernel_package
from tests.registry.test_registry_cli import Result
from tests.registry.test_registry_cli import harness as harness  # the in-process CLI fixture

# The artifacts are the virtual lab's own Debian kernel packages: it needs the built lab.
pytestmark = pytest.mark.qemu

BOARD = "Harness Virtual Lab/VX-86"


def _deb_member(deb: Path, pattern: str) -> bytes:
    """One file out of a .deb, read with tarfile (not the code under test)."""
    import subprocess

    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        for entry in archive:
            if entry.isfile() and Path(entry.name).match(pattern):
                return archive.extractfile(entry).read()  # type: ignore[union-attr]
    raise AssertionError(f"{deb.name} has no {pattern}")


def _zboot(payload: bytes) -> bytes:
    """An EFI zboot image as the kernel's drivers/firmware/efi/libstub/zboot-header.S lays it out."""
    header = bytearray(64)
    header[0:2], header[4:8] = b"MZ", b"zimg"
    struct.pack_into("<II", header, 8, len(header), len(payload))
    header[24:28] = b"zstd"
    return bytes(header) + payload


@pytest.fixture(scope="module")
def kernels(lab_artifacts: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every accepted format, per architecture, all cut from the lab's Debian packages."""
    folder = tmp_path_factory.mktemp("kernels")
    debs = cache_root() / "debs"
    x86_deb = kernel_package(lab_artifacts["x86_64"], debs)
    arm_deb = kernel_package(lab_artifacts["aarch64"], debs)
    files = {
        "x86_64": {"deb": x86_deb, "bzImage": folder / "vmlinuz-x86"},
        "aarch64": {"deb": arm_deb, "Image": folder / "Image", "Image.gz": folder / "Image.gz"},
    }
    files["x86_64"]["bzImage"].write_bytes(_deb_member(x86_deb, "boot/vmlinuz-*"))
    image = _deb_member(arm_deb, "boot/vmlinuz-*")
    files["aarch64"]["Image"].write_bytes(image)
    files["aarch64"]["Image.gz"].write_bytes(gzip.compress(image, compresslevel=1))
    files["aarch64"]["zboot"] = folder / "vmlinuz.efi"
    files["aarch64"]["zboot"].write_bytes(_zboot(zstandard.ZstdCompressor(level=1).compress(image)))
    # The lab build decompresses the bzImage into an ELF vmlinux for QEMU: the vmlinux format.
    files["x86_64"]["vmlinux"] = lab_artifacts["x86_64"].kernel
    assert files["x86_64"]["vmlinux"].read_bytes()[:4] == b"\x7fELF"
    return files


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_format_of_one_debian_kernel_gives_the_same_build_id_and_release(
    kernels: dict, lab_artifacts: dict[str, Any], arch: str
) -> None:
    found = {name: identify_artifact(path) for name, path in kernels[arch].items()}
    for name, identity in found.items():
        print(f"extraction {arch:8} {name:9} {identity.format:34} {identity.seconds:.2f} s")
    assert len({i.build_id for i in found.values()}) == 1, found
    assert all(len(i.build_id) == 40 for i in found.values())  # sha1, as the linker writes it
    assert {i.kernel_release for i in found.values()} == {lab_artifacts[arch].kernel_release}


def test_kernels_add_with_a_debian_package_registers_a_verified_build(
    kernels: dict, lab_artifacts: dict[str, Any], harness: Callable[..., Result], tmp_path: Path
) -> None:
    db = ("--db", str(tmp_path / "registry.db"))
    deb = kernels["x86_64"]["deb"]
    added = harness("registry", *db, "kernels", "add", str(deb), "--board", BOARD, "--json")
    assert added.returncode == 0, added.stderr
    record = json_of(added)
    assert record["build_id"] == identify_artifact(deb).build_id
    assert record["build_id_verified"] is True
    assert (
        record["artifact"]["name"] == deb.name
        and record["artifact"]["format"] == "deb (x86 bzImage)"
    )
    assert record["kernel_release"] == lab_artifacts["x86_64"].kernel_release

    # a release given on the command line must agree with the artifact's
    wrong = harness("registry", *db, "kernels", "add", str(kernels["aarch64"]["Image"]),
                    "--release", record["kernel_release"], "--board", BOARD)  # fmt: skip
    assert wrong.returncode == 2
    assert f"not {record['kernel_release']}" in wrong.stderr and "Traceback" not in wrong.stderr
    both = harness(
        "registry", *db, "kernels", "add", str(deb), "--build-id", "ab12", "--board", BOARD
    )
    assert both.returncode == 2 and "not both" in both.stderr


def json_of(result: Result) -> Any:
    import json

    return json.loads(result.stdout)


# ---- hostile artifacts -----------------------------------------------------------------------


def _bz_header(bzimage: bytes) -> tuple[int, int]:
    setup_sects = bzimage[0x1F1] or 4
    (payload_offset,) = struct.unpack_from("<I", bzimage, 0x248)
    return (setup_sects + 1) * 512 + payload_offset, setup_sects


def _with_payload(bzimage: bytes, payload: bytes, declared: int) -> bytes:
    start, _ = _bz_header(bzimage)
    head = bytearray(bzimage[:start])
    struct.pack_into("<I", head, 0x24C, len(payload) + 4)
    return bytes(head) + payload + struct.pack("<I", declared)


def _repeat_stream(one: bytes, total: int, unit: int) -> bytes:
    """Concatenated streams (valid for xz, gzip and zstd) that decompress to `total` bytes."""
    return one * (total // unit)


_ZEROS = 16 << 20


def _xz_zeros() -> bytes:
    return lzma.compress(bytes(_ZEROS), format=lzma.FORMAT_XZ, preset=0)


def _two_build_ids(image: bytes) -> bytes:
    """An Image with a second, different kernel build-id note spliced in (outside any ELF)."""
    note = struct.pack("<III", 4, 20, 3) + b"GNU\x00" + bytes(range(20))
    middle = len(image) // 3
    return image[:middle] + note + image[middle + len(note) :]


def _ar(members: list[tuple[str, bytes]], declared: dict[str, int] | None = None) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        size = (declared or {}).get(name, len(data))
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{size:<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def _tar_with(name: str, declared_size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = declared_size
    return info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024)


HOSTILE: dict[str, Callable[[dict], bytes]] = {
    "empty file": lambda k: b"",
    "random bytes": lambda k: os.urandom(1 << 16),
    "Debian package cut in half": lambda k: k["x86_64"]["deb"].read_bytes()[: 35 << 20],
    "Debian package whose data.tar declares 1 GB": lambda k: _ar(
        [("debian-binary", b"2.0\n"), ("data.tar.xz", b"\xfd7zXZ\x00")], {"data.tar.xz": 10**9}
    ),
    "Debian package whose vmlinuz declares 1 GiB": lambda k: _ar(
        [
            ("debian-binary", b"2.0\n"),
            ("data.tar", _tar_with("./boot/vmlinuz-6.1.0-57-amd64", 1 << 30)),
        ]
    ),
    "Debian package whose data.tar.xz is a bomb": lambda k: _ar(
        [("debian-binary", b"2.0\n"), ("data.tar.xz", _repeat_stream(_xz_zeros(), 4 << 30, _ZEROS))]
    ),
    "bzImage cut in half": lambda k: k["x86_64"]["bzImage"].read_bytes()[: 4 << 20],
    "bzImage declaring a 4 GiB kernel": lambda k: _with_payload(
        k["x86_64"]["bzImage"].read_bytes(), b"\xfd7zXZ\x00" + bytes(64), 0xFFFFFFF0
    ),
    "bzImage with an xz bomb payload": lambda k: _with_payload(
        k["x86_64"]["bzImage"].read_bytes(), _repeat_stream(_xz_zeros(), 4 << 30, _ZEROS), 60 << 20
    ),
    "Image.gz bomb": lambda k: _repeat_stream(gzip.compress(bytes(_ZEROS), 1), 2 << 30, _ZEROS),
    "Image.zst bomb": lambda k: _repeat_stream(
        zstandard.ZstdCompressor(level=1).compress(bytes(_ZEROS)), 2 << 30, _ZEROS
    ),
    "Image.gz cut in half": lambda k: k["aarch64"]["Image.gz"].read_bytes()[: 4 << 20],
    "Image with two kernel build ids": lambda k: _two_build_ids(k["aarch64"]["Image"].read_bytes()),
    "Image header only": lambda k: k["aarch64"]["Image"].read_bytes()[:4096],
    "vmlinux cut short": lambda k: k["x86_64"]["vmlinux"].read_bytes()[: 20 << 20],
}


@pytest.fixture(scope="module")
def hostile(kernels: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    made = {}
    for index, (name, make) in enumerate(HOSTILE.items()):
        made[name] = folder / f"artifact-{index}"
        made[name].write_bytes(make(kernels))
    return made


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_artifact_is_refused_within_a_cpu_second_in_bounded_memory(
    hostile: dict[str, Path], name: str
) -> None:
    """CPU time, not wall time: a decompression bomb multiplies the work, while a loaded CI
    machine stretches wall time by however many processes share the cores."""
    path = hostile[name]
    started = time.process_time()
    with pytest.raises(UserError) as refused:
        identify_artifact(path)
    cpu_seconds = time.process_time() - started
    print(f"refused {name:45} after {cpu_seconds:.3f} s of CPU: {refused.value.message}")
    assert str(path) in str(refused.value) and "kernel artifact refused" in str(refused.value)
    assert cpu_seconds < 1.0, f"{name}: refused only after {cpu_seconds:.2f} s of CPU"
    tracemalloc.start()
    try:
        with pytest.raises(UserError):
            identify_artifact(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    assert peak < size + (48 << 20), f"{name}: {peak >> 20} MiB for a {size >> 20} MiB file"


def test_cli_exits_2_with_one_paragraph_and_the_api_answers_422(
    hostile: dict[str, Path], harness: Callable[..., Result], api, tmp_path: Path
) -> None:
    bomb = hostile["bzImage with an xz bomb payload"]
    added = harness("registry", "--db", str(tmp_path / "r.db"), "kernels", "add", str(bomb),
                    "--board", BOARD)  # fmt: skip
    assert added.returncode == 2
    assert "decompression bomb" in added.stderr and "Traceback" not in added.stderr
    assert str(bomb) in added.stderr

    admin = api.headers("admin")
    for name, path in hostile.items():
        body = path.read_bytes()
        started = time.process_time()  # the app runs in this process (TestClient)
        answer = api.client.post(
            "/kernels/artifact", params={"board": BOARD, "name": path.name},
            content=body, headers=admin,
        )  # fmt: skip
        cpu_seconds = time.process_time() - started
        assert answer.status_code == 422, (name, answer.text)
        assert (
            "kernel artifact refused" in answer.json()["detail"]
            or "empty" in answer.json()["detail"]
        )
        # Bodies of tens of MB cost their own CPU to send through the test client; what the
        # registry spends on them is bounded by the in-process test above.
        if len(body) <= 8 << 20:
            assert cpu_seconds < 1.0, f"{name}: 422 only after {cpu_seconds:.2f} s of CPU"
    assert api.client.get("/kernels").json() == []


def test_api_registers_an_uploaded_package_and_checks_the_token_first(kernels: dict, api) -> None:
    deb = kernels["aarch64"]["deb"]
    params = {"board": "Harness Virtual Lab/VA-64@B2", "name": deb.name}
    assert api.client.post("/kernels/artifact", params=params, content=b"x").status_code == 401
    reader = api.client.post(
        "/kernels/artifact", params=params, content=b"x", headers=api.headers("reader")
    )
    assert reader.status_code == 403
    stored = api.client.post(
        "/kernels/artifact", params=params, content=deb.read_bytes(), headers=api.headers("admin")
    )
    assert stored.status_code == 201, stored.text
    record = stored.json()
    assert record["build_id"] == identify_artifact(deb).build_id
    assert record["build_id_verified"] and record["boards"] == [
        {"vendor": "Harness Virtual Lab", "model": "VA-64", "revision": "B2"}
    ]
    again = api.client.post(
        "/kernels/artifact", params=params, content=deb.read_bytes(), headers=api.headers("admin")
    )
    assert again.status_code == 409


def test_registry_created_before_kernel_artifacts_gains_the_table(tmp_path: Path) -> None:
    """An existing registry file (no kernel_artifacts table) keeps working: create_all adds it."""
    import sqlite3

    from harness.registry.store import LOCAL_ADMIN, Store

    path = tmp_path / "old.db"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE kernel_artifacts")
    store = Store(f"sqlite:///{path}")
    try:
        store.register_kernel("6.6", "", "ab" * 20, [{"vendor": "V", "model": "M"}], LOCAL_ADMIN)
        assert [k["build_id_verified"] for k in store.list_kernels()] == [False]
    finally:
        store.close()


def test_kernels_add_against_an_http_registry_uploads_the_artifact(
    kernels: dict, hostile: dict[str, Path], harness: Callable[..., Result], start_server, db_url,
    store,
) -> None:  # fmt: skip
    token = store.create_token("admin", "ops")
    server = start_server(db_url)
    remote = ("registry", "--url", server.url, "--token", token)
    image = kernels["aarch64"]["Image"]
    added = harness(
        *remote, "kernels", "add", str(image), "--board", "Harness Virtual Lab/VA-64", "--json"
    )
    assert added.returncode == 0, added.stderr
    record = json_of(added)
    assert record["build_id"] == identify_artifact(image).build_id and record["build_id_verified"]
    assert record["artifact"]["name"] == image.name

    bomb = hostile["Image.zst bomb"]
    refused = harness(*remote, "kernels", "add", str(bomb), "--board", "Harness Virtual Lab/VA-64")
    assert refused.returncode == 2, refused.stderr
    assert "decompression bomb" in refused.stderr and "Traceback" not in refused.stderr
