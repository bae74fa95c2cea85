"""A real `harness registry serve` under hostile uploads: refused early, in bounded memory.

How memory and I/O are measured: tests/registry/rawhttp.py. Every number is printed so a
run of this file (`pytest -s`) reports what it measured. The limits' exact values, at and
one byte past each edge: test_registry_upload_limit.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from harness.report.bundle import make_bundle
from tests.bundle.hostile import nested_json, repack, sparse_bundle
from tests.registry.rawhttp import MIB, READ_BOUND, Meter, chunked, raw_post, zeros
from tests.registry.rawhttp import server as server  # the fixture
from tests.registry.runfolder import make_run_folder


def test_anonymous_post_is_answered_401_from_its_headers_alone(server) -> None:
    """No byte of the declared 30 MB body is sent: the old server waited for it forever."""
    status, detail, _ = raw_post(
        server.port,
        "/boards",
        {"Content-Type": "application/json", "Content-Length": str(30 * MIB)},
    )
    assert (status, detail) == (401, "this request needs a bearer token")


def test_anonymous_30_mb_json_to_boards_costs_the_server_no_memory(server) -> None:
    with Meter(server.proc.pid) as meter:
        status, _, _ = raw_post(
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
        status, detail, _ = raw_post(
            server.port,
            "/submissions",
            {"Content-Type": f"multipart/form-data; boundary={boundary}",
             "Content-Length": str(len(preamble) + 300 * MIB)},
            [preamble, *zeros(300 * MIB)],
        )  # fmt: skip
    meter.report("anonymous 300 MB multipart to POST /submissions")
    assert (status, detail) == (401, "this request needs a bearer token")
    assert meter.read < 5 and meter.written < 5 and meter.growth < 20


def test_chunked_body_over_the_route_limit_is_cut_off_with_413(server) -> None:
    with Meter(server.proc.pid) as meter:
        status, detail, _ = raw_post(
            server.port,
            "/boards",
            {"Authorization": f"Bearer {server.tokens['admin']}",
             "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            chunked(zeros(30 * MIB, 64 * 1024)),
        )  # fmt: skip
    meter.report("admin 30 MB chunked JSON to POST /boards")
    assert status == 413 and "larger than 1048576 bytes" in detail
    assert meter.growth < 20


def test_wrong_role_upload_is_403_before_reading(server, tmp_path: Path) -> None:
    status, detail, _ = raw_post(
        server.port,
        "/submissions",
        {"Authorization": f"Bearer {server.tokens['admin']}",
         "Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(100 * MIB)},
    )  # fmt: skip
    assert status == 403 and "needs: lab" in detail


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
