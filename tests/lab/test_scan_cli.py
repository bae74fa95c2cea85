"""`harness scan`: the real command on sample console logs (written for these tests)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "samples"


def harness_scan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "scan", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,  # a bound for a hang only
    )


# (sample, exit code, [(kind, line) expected in order])
TABLE = [
    ("clean-boot.log", 0, []),
    ("oops-then-panic.log", 1, [("bad-access", 3), ("oops", 6), ("panic", 13)]),
    (
        "watchdog-reset-loop.log",
        1,
        [
            ("oom-kill", 8),
            ("oom-kill", 9),
            ("hung-task", 10),
            ("unexpected-reset", 12),
            ("watchdog-reset", 13),
        ],
    ),
    ("harness-run.log", 1, [("unexpected-reset", 19)]),
]


@pytest.mark.parametrize(("sample", "exit_code", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_scan_classifies_crashes_and_resets_with_their_line(
    sample: str, exit_code: int, expected: list[tuple[str, int]]
) -> None:
    done = harness_scan(SAMPLES / sample, "--json")
    assert done.returncode == exit_code, done.stderr
    report = json.loads(done.stdout)
    assert [(e["kind"], e["line_number"]) for e in report["events"]] == expected
    assert report["clean"] is (exit_code == 0)


def test_scan_table_output_names_each_finding_and_shows_the_excerpt() -> None:
    done = harness_scan(SAMPLES / "oops-then-panic.log")
    assert done.returncode == 1
    assert "Internal error: Oops: 0000000096000006" in done.stdout
    assert "acme_spi_probe+0x5c/0x1f0" in done.stdout  # context after the Oops line
    assert "3 finding(s)" in done.stdout  # the panic's "---[ end" trailer is not a new one


def test_scan_of_our_own_log_ignores_commands_sent_and_deliberate_power_cycles() -> None:
    done = harness_scan(SAMPLES / "harness-run.log", "--json")
    kinds = [e["kind"] for e in json.loads(done.stdout)["events"]]
    assert "panic" not in kinds  # only the command text said "Kernel panic"
    assert kinds == ["unexpected-reset"]  # the power cycle was announced, the last boot was not


def test_scan_reads_a_gzip_compressed_customer_log(tmp_path: Path) -> None:
    packed = tmp_path / "customer.log.gz"
    packed.write_bytes(gzip.compress((SAMPLES / "oops-then-panic.log").read_bytes()))
    done = harness_scan(packed, "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["events"][1]["kind"] == "oops"


@pytest.mark.parametrize("what", ["missing", "directory", "binary", "corrupt-gzip"])
def test_scan_of_unreadable_input_exits_2_with_one_line_naming_the_file(
    tmp_path: Path, what: str
) -> None:
    target = tmp_path / "input.log"
    if what == "directory":
        target.mkdir()
    elif what == "binary":
        target.write_bytes(bytes(range(256)) * 64 + b"\x00" * 4096)
    elif what == "corrupt-gzip":
        target = tmp_path / "input.log.gz"
        target.write_bytes(b"\x1f\x8b\x08\x00garbage")
    done = harness_scan(target)
    assert done.returncode == 2
    assert str(target) in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_scan_reports_a_reset_shown_by_a_non_uboot_firmware_banner(tmp_path: Path) -> None:
    log = tmp_path / "customer.log"
    log.write_text(
        "UEFI firmware (version edk2-stable202302 built at 10:00:00 on Mar  1 2023)\n"
        "GNU GRUB  version 2.06-13+deb12u1\n"
        "[    0.000000] Linux version 6.1.0-21-amd64 (debian-kernel@lists.debian.org) #1\n"
        "acme login: root\n"
        "UEFI firmware (version edk2-stable202302 built at 10:00:00 on Mar  1 2023)\n"
    )
    done = harness_scan(log, "--json")
    assert done.returncode == 1, done.stderr
    events = json.loads(done.stdout)["events"]
    assert [(e["kind"], e["line_number"]) for e in events] == [("unexpected-reset", 5)]


def test_scan_fingerprints_each_crash_as_repro_matches_it() -> None:
    """The fingerprint a support engineer reads off `harness scan` of the customer's log is the
    one a repro run compares its board's crash with (docs/repro.md, "Signature matching")."""
    from harness.repro.fingerprint import log_fingerprints

    customer = Path(__file__).resolve().parents[2] / "testplans" / "cases" / "kernel-panic.customer.log"  # fmt: skip
    done = harness_scan(customer, "--json")
    assert done.returncode == 1, done.stderr
    (found,) = json.loads(done.stdout)["fingerprints"]
    assert found == log_fingerprints(customer)[0].model_dump(mode="json")
    assert (found["kind"], found["function"]) == ("panic", "sysrq_handle_crash")
    other = harness_scan(SAMPLES / "oops-then-panic.log")
    assert "crash fingerprints" in other.stdout
    (line,) = [row for row in other.stdout.splitlines() if "bad-access in acme_spi_probe" in row]
    assert found["id"] not in line, "another crash, another fingerprint"
