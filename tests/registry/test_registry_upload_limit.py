"""The registry's upload limits, at their exact values, as a lab or an admin meets them.

docs/registry.md ("Limits, checked before the body is read") promises: a request body of
at most 256 MiB + 64 KiB on POST /submissions and 1 MiB elsewhere, a bundle of at most
256 MiB. The limits are not configurable, so each edge is tested on a real server with the
real sizes: a body of exactly the limit is read and judged on its content, one byte more is
413 before a byte is read, a chunked body (no Content-Length) is cut off at the limit. After
each refusal nothing is stored, the server holds no spooled upload, and it still takes the
lab's next bundle. Streaming 256 MiB over loopback takes about 2 s here.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import httpx

from harness.report.bundle import make_bundle
from tests.registry.rawhttp import (
    KIB,
    MIB,
    READ_BOUND,
    Meter,
    chunked,
    open_files_under,
    raw_post,
    zeros,
)
from tests.registry.rawhttp import server as server  # the fixture
from tests.registry.runfolder import make_run_folder
from tests.registry.test_registry_cli import Result
from tests.registry.test_registry_cli import harness as harness  # the in-process CLI fixture

REPO = Path(__file__).resolve().parents[2]
# The documented limits, written out here (not imported) so a change on either side fails.
SUBMISSION_LIMIT = 256 * MIB + 64 * KIB
BUNDLE_LIMIT = 256 * MIB
JSON_LIMIT = 1 * MIB
BOUNDARY = "limit-edge"
PREAMBLE = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="bundle"; filename="b.tar"\r\n'
    "Content-Type: application/x-tar\r\n\r\n"
).encode()
EPILOGUE = f"\r\n--{BOUNDARY}--\r\n".encode()


def _too_large(limit: int) -> str:
    return f"request body is larger than {limit} bytes for this route"


def _lab(server: Any, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.tokens['lab']}", **more}


def _left_nothing_behind(server: Any, tmp_path: Path) -> None:
    """Nothing stored, no spooled upload held open, and the lab's next bundle is taken."""
    assert httpx.get(server.url + "/runs", timeout=READ_BOUND).json() == []
    deadline = time.monotonic() + READ_BOUND  # a bound for a leak, not an expected wait
    while held := open_files_under(server.proc.pid, server.spool):
        assert time.monotonic() < deadline, f"the server still holds {held}"
        time.sleep(0.05)
    folder = make_run_folder(tmp_path / "next", "after-the-refusal")
    with make_bundle(folder, tmp_path / "next.tar").path.open("rb") as fh:
        taken = httpx.post(server.url + "/submissions", headers=_lab(server),
                           files={"bundle": ("b.tar", fh)}, timeout=READ_BOUND)  # fmt: skip
    assert taken.status_code == 201, taken.text


def test_the_documented_limits_are_the_ones_these_tests_hold_the_server_to() -> None:
    doc = (REPO / "docs" / "registry.md").read_text(encoding="utf-8")
    submissions = re.search(
        r"^\| `POST /submissions` \| (\d+) MiB \+ (\d+) KiB of multipart framing "
        r"\(the bundle itself: at most (\d+) MiB\) \|$", doc, re.M,
    )  # fmt: skip
    others = re.search(r"^\| every other route \| (\d+) MiB \|$", doc, re.M)
    assert submissions and others, "the limits table of docs/registry.md changed shape"
    mib, kib, bundle = (int(n) for n in submissions.groups())
    assert mib * MIB + kib * KIB == SUBMISSION_LIMIT
    assert int(bundle) * MIB == BUNDLE_LIMIT
    assert int(others.group(1)) * MIB == JSON_LIMIT


def test_a_declared_body_one_byte_over_the_limit_is_413_before_a_byte_is_read(
    server, tmp_path: Path
) -> None:
    with Meter(server.proc.pid) as meter:
        upload = raw_post(server.port, "/submissions", _lab(
            server, **{"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                       "Content-Length": str(SUBMISSION_LIMIT + 1)}),
        )  # fmt: skip
        board = raw_post(server.port, "/boards", {
            "Authorization": f"Bearer {server.tokens['admin']}",
            "Content-Type": "application/json", "Content-Length": str(JSON_LIMIT + 1)},
        )  # fmt: skip
    meter.report("declared bodies one byte over the limits")
    assert (upload.status, upload.detail) == (413, _too_large(SUBMISSION_LIMIT))
    assert (board.status, board.detail) == (413, _too_large(JSON_LIMIT))
    assert meter.read < 1 and meter.written < 1
    _left_nothing_behind(server, tmp_path)


def test_a_json_body_of_exactly_the_limit_is_read_and_judged_on_its_content(server) -> None:
    admin = {
        "Authorization": f"Bearer {server.tokens['admin']}",
        "Content-Type": "application/json",
    }
    head, tail = b'{"model": "M", "vendor": "', b'"}'
    body = head + b"v" * (JSON_LIMIT - len(head) - len(tail)) + tail
    assert len(body) == JSON_LIMIT
    at_limit = httpx.post(server.url + "/boards", headers=admin, content=body, timeout=READ_BOUND)
    assert at_limit.status_code == 422, at_limit.text
    assert at_limit.json()["detail"].startswith("field 'vendor': String should have at most")
    over = raw_post(server.port, "/boards", {**admin, "Transfer-Encoding": "chunked"},
                    chunked([body, b" "]), until_closed=True)  # fmt: skip
    assert (over.status, over.detail) == (413, _too_large(JSON_LIMIT))
    assert httpx.get(server.url + "/boards", timeout=READ_BOUND).json() == []


def test_an_upload_of_exactly_the_body_limit_reaches_the_bundle_size_check(
    server, tmp_path: Path
) -> None:
    """The gate lets exactly 256 MiB + 64 KiB through; the bundle in it is then over 256 MiB."""
    bundle_bytes = SUBMISSION_LIMIT - len(PREAMBLE) - len(EPILOGUE)
    assert bundle_bytes > BUNDLE_LIMIT
    started = time.monotonic()
    with Meter(server.proc.pid) as meter:
        answer = raw_post(server.port, "/submissions", _lab(
            server, **{"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                       "Content-Length": str(SUBMISSION_LIMIT)}),
            [PREAMBLE, *zeros(bundle_bytes), EPILOGUE],
        )  # fmt: skip
    meter.report(f"{SUBMISSION_LIMIT} byte upload ({time.monotonic() - started:.1f} s)")
    assert (answer.status, answer.detail) == (422, f"bundle is larger than {BUNDLE_LIMIT} bytes")
    assert answer.sent == SUBMISSION_LIMIT
    assert meter.growth < 50
    _left_nothing_behind(server, tmp_path)


def test_a_chunked_upload_past_the_limit_is_cut_off_with_413(server, tmp_path: Path) -> None:
    """No Content-Length: the server counts while it reads and closes the connection at the
    limit, so the client cannot push the 64 MiB that follow (socket buffers take a few)."""
    extra = 64 * MIB
    started = time.monotonic()
    with Meter(server.proc.pid) as meter:
        answer = raw_post(server.port, "/submissions", _lab(
            server, **{"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                       "Transfer-Encoding": "chunked"}),
            chunked([PREAMBLE, *zeros(SUBMISSION_LIMIT + extra)]), until_closed=True,
        )  # fmt: skip
    meter.report(
        f"chunked upload, {answer.sent / MIB:.0f} MiB sent of {(SUBMISSION_LIMIT + extra) / MIB:.0f}"
        f" ({time.monotonic() - started:.1f} s)"
    )
    assert (answer.status, answer.detail) == (413, _too_large(SUBMISSION_LIMIT))
    assert answer.sent < SUBMISSION_LIMIT + extra // 2
    assert meter.growth < 50
    _left_nothing_behind(server, tmp_path)


def _bundle_just_under_the_limit(tmp_path: Path) -> Path:
    """A real signed bundle within 64 KiB under 256 MiB (tar pads to 10 KiB records, so
    exactly 256 MiB cannot be a bundle): one large artifact fills the rest."""
    folder = make_run_folder(tmp_path / "results", "big-run")
    without = make_bundle(folder, tmp_path / "probe.tar").path.stat().st_size
    # its tar header, its manifest line and the record padding fit in the 32 KiB left over
    remaining = BUNDLE_LIMIT - without - 32 * KIB
    block = bytes(range(256)) * 4096
    with (folder / "artifacts" / "big.bin").open("wb") as out:
        while remaining:
            remaining -= out.write(block[: min(remaining, len(block))])
    bundle = make_bundle(folder, tmp_path / "big.tar").path
    assert BUNDLE_LIMIT - 64 * KIB < bundle.stat().st_size <= BUNDLE_LIMIT
    return bundle


def test_a_bundle_just_under_the_limit_is_stored_and_served_in_bounded_memory(
    server, tmp_path: Path
) -> None:
    bundle = _bundle_just_under_the_limit(tmp_path)
    with Meter(server.proc.pid) as upload, bundle.open("rb") as fh:
        stored = httpx.post(
            server.url + "/submissions", headers=_lab(server), files={"bundle": ("b.tar", fh)},
            timeout=READ_BOUND * 5,
        )  # fmt: skip
    upload.report(f"lab uploads a {bundle.stat().st_size} byte bundle")
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
    # The old server peaked at 3.4x the bundle and kept most of it.
    assert upload.growth < 100, upload.report("upload")
    assert download.growth < 50, download.report("download")


def test_registry_eligible_refuses_a_bundle_file_over_256_mib_naming_it(
    harness, tmp_path: Path
) -> None:
    """`registry eligible --run BUNDLE` checks the size before reading (sparse files: no disk)."""
    over, at = tmp_path / "over.tar", tmp_path / "at.tar"
    for path, size in ((over, BUNDLE_LIMIT + 1), (at, BUNDLE_LIMIT)):
        with path.open("wb") as out:
            out.truncate(size)
    db = ("registry", "--db", str(tmp_path / "r.db"), "eligible", "--run")
    refused: Result = harness(*db, str(over))
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"harness: {over}: bundle is larger than {BUNDLE_LIMIT} bytes"
    read: Result = harness(*db, str(at))
    assert read.returncode == 2 and str(at) in read.stderr
    assert "larger than" not in read.stderr  # read (and found not to be a bundle), not refused
    assert "Traceback" not in refused.stderr + read.stderr
