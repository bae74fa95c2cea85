"""`harness repro` on a QEMU board: a real kernel panic matched against customer logs, a hang
recovered between iterations, and a case whose steps write on the board only.

Each panic or hang iteration costs a power cycle of a TCG-emulated PC, so iteration counts are
the smallest that show the behaviour (two: the second proves the board came back healthy).
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest

from tests.repro.conftest import CASES, REPO, harness_repro

pytestmark = pytest.mark.qemu
BOARD = "qemu-x86_64"
OTHER_CRASH = REPO / "tests" / "lab" / "samples" / "oops-then-panic.log"


def test_panic_case_reproduces_with_matching_signature_and_board_recovered(
    qemu_board, results_root: Path
) -> None:
    board = qemu_board(BOARD)
    out = harness_repro(
        board, CASES / "kernel-panic.yaml", results_root, "--no-submit", "--repeat", "2"
    )
    assert out.code == 1, out.stderr
    records = out.iterations()
    assert [r.outcome for r in records] == ["reproduced", "reproduced"], out.stderr
    for record in records:
        assert record.signature_match == "same failure"
        assert record.crash.kind == "panic"
        assert record.crash.function == "sysrq_handle_crash"
        assert "customer_log same failure" in record.matched
        assert "Kernel panic - not syncing" in record.evidence.console
        assert record.recovery == "recovered (working shell)"
    assert records[0].boot_id != records[1].boot_id, "the panicked board was power-cycled"
    assert out.run_json().summary.signature_match == "same failure"
    html = (out.folder / "report.html").read_text()
    assert "sysrq_handle_crash" in html and "same failure" in html


def test_panic_against_a_log_of_another_crash_is_a_different_failure_not_a_reproduction(
    qemu_board, results_root: Path, tmp_path: Path
) -> None:
    board = qemu_board(BOARD)
    shutil.copy(OTHER_CRASH, tmp_path / "customer.log")
    case = tmp_path / "panic-vs-oops.yaml"
    case.write_text(
        (CASES / "kernel-panic.yaml")
        .read_text()
        .replace("kernel-panic.customer.log", "customer.log")
    )
    out = harness_repro(board, case, results_root, "--no-submit", "--repeat", "1")
    assert out.code == 0, out.stderr
    (record,) = out.iterations()
    assert record.outcome == "not-reproduced"
    assert record.signature_match == "different failure"
    assert record.crash.kind == "panic" and record.crash.function == "sysrq_handle_crash"
    assert out.run_json().case.customer_fingerprints[0].function == "acme_spi_probe"


def test_hang_reproduces_as_timeout_and_next_iteration_starts_from_a_healthy_shell(
    qemu_board, results_root: Path
) -> None:
    board = qemu_board(BOARD)
    out = harness_repro(board, CASES / "hang.yaml", results_root, "--no-submit", "--repeat", "2")
    assert out.code == 1, out.stderr
    records = out.iterations()
    assert [r.outcome for r in records] == ["reproduced", "reproduced"], out.stderr
    assert all(r.timed_out and r.matched == ["timeout"] for r in records)
    assert records[1].boot_id, "iteration 2 read the boot id: a working shell answered"
    assert all(r.recovery and "recovery failed" not in r.recovery for r in records)


def test_end_to_end_case_writes_on_the_board_not_the_host_and_delivers_to_the_registry(
    qemu_board, results_root: Path, tmp_path: Path
) -> None:
    board = qemu_board(BOARD)
    marker = f"/root/h3-marker-{secrets.token_hex(6)}"
    case = tmp_path / "writes.yaml"
    case.write_text(
        (CASES / "never.yaml").read_text()
        .replace("""'echo "status: OK"'""", f"""'echo "status: OK" > {marker}; cat {marker}'""")
    )  # fmt: skip
    env = {"HARNESS_DATA_HOME": str(tmp_path / "home"), "HARNESS_LAB_NAME": "lab-e2e"}
    out = harness_repro(board, case, results_root, "--repeat", "3", "--between", "reboot", env=env)
    assert out.code == 0, out.stderr
    assert "registry: delivered" in out.stderr
    records = out.iterations()
    assert [r.outcome for r in records] == ["not-reproduced"] * 3
    assert len({r.boot_id for r in records}) == 3, "rebooted between iterations"
    assert not Path(marker).exists(), "the case wrote on the lab host"
    technical = out.run_json().technical
    assert "console=" in str(technical["cmdline"]) and technical["kernel"]
    from harness.lab.board import Board

    check = Board.open(board.profile, board.env_file, console_log=tmp_path / "check.log")
    try:
        check.ensure_shell()
        assert check.console.run(f"cat {marker}").stdout.strip() == "status: OK"
    finally:
        check.close()
    per_iteration = out.run_json().summary.mean_duration
    print(f"qemu: {per_iteration} s per iteration with a reboot between iterations")
