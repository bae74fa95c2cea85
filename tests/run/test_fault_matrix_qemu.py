"""The standing fault matrix on a QEMU board: each row of docs/fault-matrix.md is one test here.

Every row runs plans/fault-matrix.yaml (`before`, the `victim` the fault
strikes, then `after` on the console and `after-ssh` over SSH) as a user
would, with `harness run`. The fault is injected only once the victim's
READY line is in the board's console log (evidence, never a timer); the victim
then blocks until the fault has ended it or the test releases it after the fault
(plans/runtest_matrix.py), so the fault lands inside it however slow the host
is. Each row then proves three things: the victim did not pass, the test finished
before the fault is intact (same line, same session), and the run can be
continued with `harness run --resume RUN_ID`.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.lab.board import KERNEL_BANNER
from harness.vlab.fixtures import wait_for_console
from tests.run.conftest import RunOutput
from tests.run.matrix_helpers import READY_WAIT, MatrixRun, before_is_intact, resume_matrix
from tests.run.resume_helpers import sent_count

# A row boots, faults, recovers (often a power cycle) and resumes: minutes under TCG on a loaded
# machine, so the suite's 600 s per-test bound is raised for this module; it only catches hangs.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

BOARD = "qemu-x86_64"


def _line(run: RunOutput, test_id: str) -> dict[str, Any]:
    return run.result(test_id)


@pytest.fixture
def board(qemu_board: Any) -> Iterator[Any]:
    """The module's QEMU board; a fresh one if a previous row left it unhealthy."""
    yield qemu_board(BOARD)


@pytest.fixture(params=["sim"])
def any_board(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Harness faults (a signal to the harness, a full disk, the registry down) do not depend on
    the board: they run on the simulated board, which keeps CI within its time budget; the
    board-fault rows above run on QEMU."""
    if request.param == "sim":
        yield request.getfixturevalue("sim_board")
    else:
        yield request.getfixturevalue("qemu_board")(request.param)


# ---- board faults: the run goes on, the victim does not pass, the board is recovered ----------

BOARD_ROWS: dict[str, tuple[Callable[[Any], Any] | None, set[str], str]] = {
    # row: (injection once READY is seen, outcomes the victim may get, words in its reason)
    "hang": (lambda b: b.fault("hang"), {"error"}, "ShellUnresponsive"),
    "panic": (lambda b: b.fault("panic"), {"fail"}, "panic"),
    "reset": (lambda b: b.fault("reset"), {"fail"}, "unexpected-reset"),
    "power-off": (lambda b: b.fault("power-off"), {"error"}, "ShellUnresponsive"),
    "noise": (lambda b: b.fault("noise", bytes=2048), {"fail", "error"}, ""),
    "silent": (None, {"error"}, ""),
    "sshd-killed": (None, {"error"}, "SSH"),
    "link-down": (None, {"error"}, "SSH"),
    "reboot-health": (None, {"fail"}, "unexpected-reset"),
}


@pytest.mark.qemu
@pytest.mark.parametrize("row", list(BOARD_ROWS))
def test_board_fault_never_passes_keeps_finished_results_and_recovers(
    board: Any, results_root: Path, row: str
) -> None:
    inject, allowed, words = BOARD_ROWS[row]
    run_bg = MatrixRun(board, results_root, row)
    run_bg.wait_ready()
    if row == "reboot-health":
        # the victim reboots next; strike again once the board is back at its login prompt
        since = board.console_mark()
        wait_for_console(board, board.profile.console.login_prompt, READY_WAIT, since=since)
        since = board.console_mark()
        board.fault("reset")
        wait_for_console(board, KERNEL_BANNER, READY_WAIT, since=since)  # it did reset
    elif inject is not None:
        inject(board)
    run_bg.release()  # the fault is in: a victim that waits for it may go on
    run = run_bg.finish()
    outcomes = run.outcomes()
    victim = _line(run, "victim")
    assert outcomes["victim"] in allowed, (victim, run.stderr)
    assert words in victim["reason"], victim
    before = before_is_intact(run)
    assert outcomes["after"] == "pass", (_line(run, "after"), run.stderr)
    assert outcomes["after-ssh"] == "pass", (_line(run, "after-ssh"), run.stderr)
    meta = run.run_json()
    assert meta["status"] == "finished" and meta["verdict"] != "certified"
    assert run.code in (1, 3)

    again = resume_matrix(board, run)
    assert again.code == run.code, again.stderr
    assert (run.folder / "results.jsonl").read_text().splitlines()[0] == before
    assert sent_count(run.folder / "console.log", "echo before-ok") == 1, (
        "ran a finished test again"
    )
    assert again.run_json()["verdict"] == meta["verdict"]


# ---- harness faults: the harness stops, nothing finished is lost, --resume completes the run ---


@pytest.mark.parametrize(
    ("row", "signum", "codes"),
    [
        ("sigint", signal.SIGINT, {130}),
        ("sigterm", signal.SIGTERM, {143, -signal.SIGTERM}),
        ("sigkill", signal.SIGKILL, {-signal.SIGKILL}),
    ],
)
def test_signal_mid_run_loses_nothing_and_resume_completes_the_run(
    any_board: Any, results_root: Path, row: str, signum: int, codes: set[int]
) -> None:
    run_bg = MatrixRun(any_board, results_root, row)
    run_bg.wait_ready()
    run_bg.proc.send_signal(signum)
    run = run_bg.finish()
    run_bg.release()  # only now that the harness is gone: its blocked command ends
    assert run.code in codes, (run.code, run.stderr)
    assert "Traceback" not in run.stderr
    before = before_is_intact(run)
    assert run.outcomes().get("victim") != "pass"
    assert run.run_json()["status"] != "finished"

    again = resume_matrix(any_board, run)
    assert again.code == 0, again.stderr
    assert (run.folder / "results.jsonl").read_text().splitlines()[0] == before
    assert {r["id"]: r["session"] for r in again.lines() if r["outcome"] == "pass"} == {
        "before": 1,
        "victim": 2,
        "after": 2,
        "after-ssh": 2,
    }
    assert again.run_json()["verdict"] == "certified"
    assert sent_count(run.folder / "console.log", "echo before-ok") == 1


@pytest.fixture
def small_results_root(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs as the results root, so the test can fill it (needs root, as CI has)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount / "results"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_results_disk_full_stops_the_run_cleanly_and_resume_completes_it(
    any_board: Any, small_results_root: Path
) -> None:
    run_bg = MatrixRun(any_board, small_results_root, "disk-full")
    run_bg.wait_ready()
    filler = _fill(small_results_root.parent)
    run_bg.release()  # the disk is full: the victim passes now, and its result cannot be written
    run = run_bg.finish()
    assert run.code == 3, (run.code, run.stderr)
    assert "Traceback" not in run.stderr
    assert "No space left on device" in run.stderr and "--resume" in run.stderr, run.stderr
    before = before_is_intact(run)
    assert run.run_json()["status"] == "running", "a run that could not finish is not finished"

    filler.unlink()
    again = resume_matrix(any_board, run)
    assert again.code == 0, again.stderr
    assert (run.folder / "results.jsonl").read_text().splitlines()[0] == before
    assert again.run_json()["verdict"] == "certified"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_registry_down_during_submission_keeps_the_run_and_queues_the_bundle(
    any_board: Any, results_root: Path, tmp_path: Path
) -> None:
    home = tmp_path / "harness-home"
    run_bg = MatrixRun(
        any_board,
        results_root,
        "registry-down",
        submit=True,
        HARNESS_DATA_HOME=str(home),
        HARNESS_LAB_NAME="lab-one",
        HARNESS_REGISTRY_URL=f"http://127.0.0.1:{_closed_port()}",
        HARNESS_REGISTRY_TOKEN="matrix-token",
    )
    run = run_bg.finish()
    assert run.code == 0, run.stderr
    assert "registry: queued" in run.stderr
    assert json.loads((run.folder / "submission.json").read_text())["status"] == "queued"
    assert run.run_json()["verdict"] == "certified"
    assert any((home / "outbox").iterdir()), "the bundle waits in the outbox"
    shutil.rmtree(home)
