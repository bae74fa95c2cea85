"""Bad input around kernel identity: random artifacts and note sections, and `harness eligible` misuse.

Whatever bytes arrive, the parsers answer with a build id or a one-paragraph
refusal (UserError / NoteError), never another exception.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import UserError
from harness.kernelid.artifact import identify_artifact
from harness.kernelid.notes import NoteError, build_id_from_note_section, parse_note_section
from tests.registry.runfolder import make_run_folder
from tests.registry.test_registry_cli import Result
from tests.registry.test_registry_cli import harness as harness  # the in-process CLI fixture

# Prefixes that steer the artifact reader into each format's code path.
_PREFIXES = [
    b"",
    b"!<arch>\n",
    b"\x7fELF\x02\x01\x01" + bytes(9),
    b"\xfd7zXZ\x00",
    b"\x1f\x8b\x08",
    b"\x28\xb5\x2f\xfd",
    b"BZh9",
]


def _bzimage_like(tail: bytes) -> bytes:
    head = bytearray(0x260)
    head[0x1F1] = 1
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", head, 0x206, 0x20F)
    struct.pack_into("<II", head, 0x248, 0, len(tail))
    return bytes(head) + bytes(512 * 2 - len(head)) + tail


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PREFIXES), st.binary(max_size=4096), st.booleans())
def test_random_artifacts_are_refused_as_bad_input_never_crash(
    prefix: bytes, body: bytes, as_bzimage: bool
) -> None:
    data = _bzimage_like(prefix + body) if as_bzimage else prefix + body
    try:
        found = identify_artifact(data)
    except UserError as exc:
        assert "kernel artifact refused" in exc.message
    else:  # only possible if the bytes really hold a build-id note
        assert len(found.build_id) >= 16


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2048))
def test_random_note_sections_parse_or_raise_note_error(data: bytes) -> None:
    try:
        notes = parse_note_section(data)
    except NoteError:
        return
    assert all(len(n.name) <= 256 for n in notes)


def test_kernel_notes_section_gives_the_gnu_build_id_among_other_notes() -> None:
    """The layout of an x86 /sys/kernel/notes: Xen notes first, then GNU, then Linux notes."""

    def note(name: bytes, kind: int, desc: bytes) -> bytes:
        pad = lambda b: b + bytes(-len(b) % 4)  # noqa: E731
        return struct.pack("<III", len(name), len(desc), kind) + pad(name) + pad(desc)

    build_id = bytes(range(100, 120))
    section = (
        note(b"Xen\x00", 6, b"linux\x00")
        + note(b"GNU\x00", 3, build_id)
        + note(b"Linux\x00", 0x100, b"\x00" * 4)
    )
    assert build_id_from_note_section(section) == build_id.hex()
    assert build_id_from_note_section(note(b"Xen\x00", 6, b"linux\x00")) is None
    try:
        build_id_from_note_section(section[:-3])
    except NoteError as exc:
        assert "past the end" in str(exc)
    else:
        raise AssertionError("a cut note section must be refused")


def test_harness_eligible_without_a_unit_or_with_an_unknown_board_exits_2(
    harness: Callable[..., Result], tmp_path: Path
) -> None:
    nothing = harness("eligible")
    assert nothing.returncode == 2 and "--env" in nothing.stderr
    missing = harness("eligible", "--env", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "environment file not found" in missing.stderr
    unknown = harness(
        "eligible", "--board", "no-such-board", env={"HARNESS_LAB_DIR": str(tmp_path)}
    )
    assert unknown.returncode == 2 and "no board profile named 'no-such-board'" in unknown.stderr
    assert "Traceback" not in nothing.stderr + missing.stderr + unknown.stderr


def test_registry_eligible_reads_a_run_folder_and_names_what_is_missing(
    harness: Callable[..., Result], tmp_path: Path
) -> None:
    software = {"kernel_release": "6.1", "kernel_build_id": "AB12", "os_release": None}
    folder = make_run_folder(
        tmp_path, "r1", verdict="incomplete", vendor="V", model="M", revision="A",
        extra={"software": software},
    )  # fmt: skip
    asked = harness("registry", "--db", str(tmp_path / "r.db"), "eligible", "--run", str(folder))
    assert asked.returncode == 2 and "--os-release" in asked.stderr
    answered = harness("registry", "--db", str(tmp_path / "r.db"), "eligible", "--run", str(folder),
                       "--os-release", "Debian 12", "--json")  # fmt: skip
    assert answered.returncode == 0, answered.stderr
    assert '"kernel_build_id": "ab12"' in answered.stdout  # hex ids compare lower-case
    bad = tmp_path / "bundle.tar"
    bad.write_bytes(b"not a bundle")
    refused = harness("registry", "--db", str(tmp_path / "r.db"), "eligible", "--run", str(bad))
    assert refused.returncode == 2 and str(bad) in refused.stderr


def test_web_form_takes_the_build_id_and_shows_why_another_build_does_not_count(api) -> None:
    board = {"vendor": "Acme", "model": "AB-100"}
    api.client.post("/kernels", headers=api.headers("admin"), json={
        "kernel_release": "6.6.0-acme1", "build_id": "AA" * 20, "boards": [board]})  # fmt: skip
    asked = {**board, "revision": "A1", "os_release": "Debian 12", "kernel_release": "6.6.0-acme1"}
    page = api.client.get("/ui/eligibility", params={**asked, "kernel_build_id": "aa" * 20}).text
    assert "eligible-vendor-kernel" in page and 'value="' + "aa" * 20 + '"' in page
    page = api.client.get("/ui/eligibility", params={**asked, "kernel_build_id": "bb" * 20}).text
    assert "release matches 6.6.0-acme1, build id differs: not the vendor&#39;s build" in page
