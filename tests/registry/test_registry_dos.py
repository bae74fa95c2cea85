"""A real `harness registry serve` under hostile uploads: refused early, in bounded memory.

Memory is the server process's own peak RSS (VmHWM in /proc/PID/status, reset
through /proc/PID/clear_refs before each scenario); bytes read and written by
the server come from /proc/PID/io. Every number is printed so a run of this
file (`pytest -s`) reports what it measured.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from harness.labkey import load_or_create_identity
from harness.registry.store import Store
from harness.report.bundle import make_bundle
from tests.bundle.hostile import nested_json, repack, sparse_bundle
from tests.registry.runfolder import make_run_folder

MIB = 1 << 20
READ_BOUND = 120  # seconds: a bound for a hang, never an expected duration


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _io(pid: int) -> dict[str, int]:
    pairs = (line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return {key: int(value) for key, value in pairs}


class Meter:
    """Peak RSS and I/O of one process across a scenario."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> Meter:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        self.rss_before = _status_kib(self.pid, "VmRSS") / 1024
        self.io_before = _io(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = _status_kib(self.pid, "VmHWM") / 1024
        self.rss_after = _status_kib(self.pid, "VmRSS") / 1024
        io_after = _io(self.pid)
        self.read = (io_after["rchar"] - self.io_before["rchar"]) / MIB
        self.written = (io_after["wchar"] - self.io_before["wchar"]) / MIB

    @property
    def growth(self) -> float:
        return self.peak - self.rss_before

    def report(self, what: str) -> str:
        line = (
            f"{what}: RSS {self.rss_before:.0f} MiB before, peak {self.peak:.0f} MiB "
            f"(+{self.growth:.0f}), {self.rss_after:.0f} MiB after; server read "
            f"{self.read:.1f} MiB, wrote {self.written:.1f} MiB"
        )
        print(line)
        return line


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def raw_post(
    port: int, path: str, headers: dict[str, str], body: Iterable[bytes] = ()
) -> tuple[int, str]:
    """POST with the body streamed from another thread while the answer is read.

    The server may answer (and close) before the body is sent; a send that fails then
    is expected, and the answer is what the client sees.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=READ_BOUND)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())

    def pump() -> None:
        try:
            for chunk in body:
                sock.sendall(chunk)
        except OSError:
            pass

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    try:
        status, _, payload = _response(sock)
    finally:
        sock.close()
        sender.join(READ_BOUND)
    return status, json.loads(payload)["detail"] if payload else ""


def zeros(total: int, chunk: int = MIB) -> Iterator[bytes]:
    block = b"0" * chunk
    for _ in range(total // chunk):
        yield block


@pytest.fixture
def server(start_server, tmp_path: Path):
    db_url = f"sqlite:///{tmp_path / 'registry.db'}"
    store = Store(db_url)
    identity = load_or_create_identity()
    lab_token = store.add_lab(identity.name, identity.public_key_text)
    admin = store.create_token("admin", "ops")
    store.close()
    running = start_server(db_url)
    running.tokens = {"lab": lab_token, "admin": admin}
    return running


def test_anonymous_post_is_answered_401_from_its_headers_alone(server) -> None:
    """No byte of the declared 30 MB body is sent: the old server waited for it forever."""
    status, detail = raw_post(
        server.port,
        "/boards",
        {"Content-Type": "application/json", "Content-Length": str(30 * MIB)},
    )
    assert (status, detail) == (401, "this request needs a bearer token")


def test_anonymous_30_mb_json_to_boards_costs_the_server_no_memory(server) -> None:
    with Meter(server.proc.pid) as meter:
        status, _ = raw_post(
            server.port,
            "/boards",
            {"Content-Type": "application/json", "Content-Length": str(30 * MIB)},
            [b'{"vendor": "', *zeros(30 * MIB - 32), b'", "model": "x"}'],
        )
    meter.report("anonymous 30 MB JSON to POST /boards")
    assert status == 401
    assert meter.growth < 20 and meter.read < 5


def test_anonymous_300_mb_multipart_upload_is_not_spooled(server) -> None:
    boundary = "hostile"
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="b.tar"\r\n'
        "Content-Type: application/x-tar\r\n\r\n"
    ).encode()
    with Meter(server.proc.pid) as meter:
        status, detail = raw_post(
            server.port,
            "/submissions",
            {"Content-Type": f"multipart/form-data; boundary={boundary}",
             "Content-Length": str(len(preamble) + 300 * MIB)},
            [preamble, *zeros(300 * MIB)],
        )  # fmt: skip
    meter.report("anonymous 300 MB multipart to POST /submissions")
    assert (status, detail) == (401, "this request needs a bearer token")
    assert meter.read < 5 and meter.written < 5 and meter.growth < 20


def test_declared_body_over_the_route_limit_is_413_before_reading(server) -> None:
    status, detail = raw_post(
        server.port,
        "/submissions",
        {"Authorization": f"Bearer {server.tokens['lab']}",
         "Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(300 * MIB)},
    )  # fmt: skip
    assert status == 413 and "larger than" in detail
    status, detail = raw_post(
        server.port,
        "/boards",
        {"Authorization": f"Bearer {server.tokens['admin']}",
         "Content-Type": "application/json", "Content-Length": str(30 * MIB)},
    )  # fmt: skip
    assert status == 413 and "larger than 1048576 bytes" in detail


def test_chunked_body_over_the_route_limit_is_cut_off_with_413(server) -> None:
    def chunked(total: int) -> Iterator[bytes]:
        for block in zeros(total, 64 * 1024):
            yield f"{len(block):x}\r\n".encode() + block + b"\r\n"
        yield b"0\r\n\r\n"

    with Meter(server.proc.pid) as meter:
        status, detail = raw_post(
            server.port,
            "/boards",
            {"Authorization": f"Bearer {server.tokens['admin']}",
             "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            chunked(30 * MIB),
        )  # fmt: skip
    meter.report("admin 30 MB chunked JSON to POST /boards")
    assert status == 413 and "larger than 1048576 bytes" in detail
    assert meter.growth < 20


def test_wrong_role_upload_is_403_before_reading(server, tmp_path: Path) -> None:
    status, detail = raw_post(
        server.port,
        "/submissions",
        {"Authorization": f"Bearer {server.tokens['admin']}",
         "Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(100 * MIB)},
    )  # fmt: skip
    assert status == 403 and "needs: lab" in detail


def _big_bundle(tmp_path: Path, size_mib: int) -> Path:
    folder = make_run_folder(tmp_path / "results", "big-run")
    block = bytes(range(256)) * 4096
    with (folder / "artifacts" / "big.bin").open("wb") as out:
        for _ in range(size_mib):
            out.write(block)
    return make_bundle(folder, tmp_path / "big.tar").path


def test_200_mb_bundle_is_stored_and_served_in_bounded_memory(server, tmp_path: Path) -> None:
    bundle = _big_bundle(tmp_path, 200)
    auth = {"Authorization": f"Bearer {server.tokens['lab']}"}
    with Meter(server.proc.pid) as upload, bundle.open("rb") as fh:
        stored = httpx.post(
            server.url + "/submissions", headers=auth, files={"bundle": ("b.tar", fh)},
            timeout=READ_BOUND * 5,
        )  # fmt: skip
    upload.report(f"lab uploads a {bundle.stat().st_size / MIB:.0f} MiB bundle")
    assert stored.status_code == 201, stored.text
    digest = hashlib.sha256()
    with (
        Meter(server.proc.pid) as download,
        httpx.stream("GET", server.url + "/runs/big-run/bundle", timeout=READ_BOUND) as got,
    ):
        for chunk in got.iter_bytes():
            digest.update(chunk)
    download.report("anonymous download of that bundle")
    assert digest.hexdigest() == stored.json()["bundle_sha256"]
    # The old server peaked at 3.4x the bundle (~680 MiB) and kept ~500 MiB.
    assert upload.growth < 100, upload.report("upload")
    assert download.growth < 50, download.report("download")


def test_20_concurrent_hostile_uploads_are_refused_in_bounded_memory(
    server, tmp_path: Path
) -> None:
    lab = {"Authorization": f"Bearer {server.tokens['lab']}"}
    folder = make_run_folder(tmp_path / "results", "nested")
    honest = make_bundle(folder, tmp_path / "n.tar").path.read_bytes()
    nested = repack(honest, lambda m: m.__setitem__("manifest.json", nested_json(100_000)))
    sparse = sparse_bundle(10**15)

    def attack(index: int) -> int:
        kind = index % 4
        if kind == 0:
            return httpx.post(server.url + "/submissions", headers=lab,
                              files={"bundle": ("s.tar", sparse)}, timeout=READ_BOUND).status_code  # fmt: skip
        if kind == 1:
            return httpx.post(server.url + "/submissions", headers=lab,
                              files={"bundle": ("n.tar", nested)}, timeout=READ_BOUND).status_code  # fmt: skip
        if kind == 2:
            return raw_post(server.port, "/boards",
                            {"Content-Type": "application/json", "Content-Length": str(30 * MIB)},
                            zeros(30 * MIB))[0]  # fmt: skip
        return raw_post(server.port, "/submissions",
                        {**lab, "Content-Type": "multipart/form-data; boundary=x",
                         "Content-Length": str(300 * MIB)}, zeros(300 * MIB))[0]  # fmt: skip

    with Meter(server.proc.pid) as meter, ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(attack, range(20)))
    meter.report("20 concurrent hostile uploads")
    assert sorted(set(codes)) == [401, 413, 422], codes
    assert meter.growth < 100
    assert httpx.get(server.url + "/health", timeout=READ_BOUND).status_code == 200
