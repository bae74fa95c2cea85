"""The run engine on a real QEMU board: the pre-certification plan, faults mid-test, kill and resume.

One x86_64 board is shared by the module (booting costs a core for seconds); the tests are
ordered from harmless to destructive, and every fault test proves the board was recovered by
running a test after it.
"""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest

from harness.report.bundle import make_bundle
from harness.report.bundle_read import verify_bundle
from tests.discover.discover_helpers import INVENTORY_TESTS, PRECERT, SMOKE, run_verdict
from tests.discover.discover_helpers import harness as discover
from tests.run.conftest import REPO, RunOutput, fault_env, harness_run, schema
from tests.run.resume_helpers import kill_during_slow_test, resume, sent_count

pytestmark = pytest.mark.qemu


def _valid(run: RunOutput) -> None:
    jsonschema.validate(run.run_json(), schema("run.schema.json"))
    for record in run.lines():
        jsonschema.validate(record, schema("result.schema.json"))


BOARD = "qemu-x86_64"


def test_precert_plan_certifies_the_qemu_x86_64_board(
    qemu_board, results_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = qemu_board(BOARD)
    run = harness_run(board, REPO / "testplans" / "precert.yaml", results_root)
    assert run.code == 0, run.stderr
    meta = run.run_json()
    assert meta["verdict"] == "certified"
    outcomes = run.outcomes()
    # QEMU's q35 has no cpufreq driver and no thermal zones; nobody stands at a virtual board
    # to look at its LEDs or display.
    not_here = {
        "cpu-frequency",
        "thermal-zones",
        "operator-leds",
        "operator-display",
    }
    assert {outcomes[test] for test in not_here} == {"skip"}
    assert {outcome for test, outcome in outcomes.items() if test not in not_here} == {"pass"}
    assert len(outcomes) >= 45
    for instance in (
        "storage-rw[vda]", "storage-rw[vdb]", "storage-rw[sda]", "usb-storage[sda]",
        "network-transfer[eth0]", "network-transfer[eth1]", "network-ping[eth1]",
        "uart-loopback[ttyS1]", "rtc-alarm", "rtc-reboot",
    ):  # fmt: skip
        assert outcomes[instance] == "pass", instance

    def measured(test_id: str) -> dict[str, float]:
        return {m["name"]: m["value"] for m in run.result(test_id)["measurements"]}

    assert {"write_throughput", "read_throughput"} <= set(measured("storage-rw[sda]"))
    assert measured("usb-storage[sda]")["usb_speed"] > 0, "the xHCI port's negotiated speed"
    assert {"download_throughput", "upload_throughput"} <= set(measured("network-transfer[eth1]"))
    assert measured("network-ping[eth1]")["packets_lost"] == 0
    assert "rtc_drift" in measured("rtc-reboot")
    boot = [m for m in run.result("reboot-warm")["measurements"] if m["name"] == "boot_time_1"]
    assert boot and boot[0]["unit"] == "s" and boot[0]["value"] > 0
    assert re.match(r"^\d+\.\d+", meta["software"]["kernel_release"])
    assert meta["software"]["os_release"]
    _valid(run)
    _diagnostics_in_the_signed_bundle(run, tmp_path, monkeypatch)


def _diagnostics_in_the_signed_bundle(
    run: RunOutput, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit's diagnostics are files of the run, with their sha256 in run.json and in the
    bundle's verified manifest; a PC-like board has DMI and no device tree; nothing the
    plan uses is missing from the image, so no helper was supplied."""
    meta = run.run_json()
    files = {entry["name"]: entry for entry in meta["diagnostics"]["files"]}
    for name in ("dmesg", "cmdline", "modules", "dmi", "firmware"):
        assert files[name]["status"] == "collected", files[name]
    assert files["devicetree"]["status"] == "absent"
    assert "Linux version" in (run.folder / "diagnostics" / "dmesg.txt").read_text()
    assert "bios_version" in (run.folder / "diagnostics" / "firmware.txt").read_text()
    assert meta["tools"]["missing"] == [] and meta["tools"]["helpers"] == []
    monkeypatch.setenv("HARNESS_DATA_HOME", str(tmp_path / "home"))
    report = verify_bundle(make_bundle(run.folder, tmp_path / "run.bundle.tar").path)
    assert report.ok, report.problems
    manifest = {entry["path"]: entry["sha256"] for entry in report.manifest["files"]}
    for entry in files.values():
        if entry["status"] == "collected":
            assert manifest[entry["file"]] == entry["sha256"], entry["name"]


@pytest.mark.slow  # ~45 s on the module's board, which is up by now; 100 s when it boots first
def test_a_disk_that_corrupts_data_and_a_watchdog_that_does_not_reset_are_not_certified(
    qemu_board, results_root: Path
) -> None:
    board = qemu_board(BOARD)
    run = harness_run(
        board,
        "precert-faults.yaml",
        results_root,
        "-k",
        "storage-rw[vda] or watchdog-reset or after-faults",
        env=fault_env(board),
    )
    assert {test: outcome for test, outcome in run.outcomes().items() if outcome != "not-run"} == {
        "storage-rw[vda]": "fail",
        "watchdog-reset": "fail",
        "after-faults": "pass",
    }, run.stderr
    assert run.code == 1 and run.run_json()["verdict"] == "not-certified"
    storage = run.result("storage-rw[vda]")["reason"]
    assert "data read back from /dev/vda differs from what was written" in storage
    # The flipped byte, by cmp (1-based) in the test area: the mismatch is shown, not summarised.
    assert "differ: char 12306" in storage, storage
    watchdog = run.result("watchdog-reset")["reason"]
    assert "watchdog armed with a 2 s timeout and left unfed" in watchdog
    assert "did not restart within" in watchdog


def test_sigkill_then_resume_on_qemu_runs_each_finished_test_once(
    qemu_board, results_root: Path
) -> None:
    board = qemu_board(BOARD)
    run_dir = kill_during_slow_test(board, results_root)
    run = resume(board, results_root, run_dir.name)
    assert run.code == 0, run.stderr
    assert {r["id"]: r["session"] for r in run.lines()} == {
        "first": 1,
        "second": 1,
        "third": 1,
        "slow": 2,
        "fifth": 2,
        "sixth": 2,
    }
    assert sent_count(run_dir / "console.log", "echo two") == 1


# Four faults and three power cycles of a TCG board: on a loaded host each boot can take a
# minute or two, so this test gets its own bound (for a hang, not a speed requirement).
FAULT_RUN_GUARD = 1800


@pytest.mark.timeout(FAULT_RUN_GUARD + 120)
def test_hang_panic_reset_and_ssh_drop_mid_test_never_pass_and_the_run_recovers(
    qemu_board, results_root: Path
) -> None:
    board = qemu_board(BOARD)
    run = harness_run(
        board,
        "faults.yaml",
        results_root,
        "--retries",
        "0",
        env=fault_env(board),
        timeout=FAULT_RUN_GUARD,
    )
    outcomes = run.outcomes()
    assert outcomes == {
        "hang": "error",
        "after-hang": "pass",
        "panic": "fail",
        "after-panic": "pass",
        "reset": "fail",
        "after-reset": "pass",
        "ssh-drop": "error",
        "after-ssh-drop": "pass",
    }, run.stderr
    assert "ShellUnresponsive" in run.result("hang")["reason"]
    panic = run.result("panic")
    assert panic["crash"]["kind"] == "panic"
    assert "Kernel panic - not syncing" in panic["excerpt"]
    assert "unexpected-reset" in run.result("reset")["reason"]
    # The power went while the SSH command ran (it had printed its marker): the open link died.
    assert run.result("ssh-drop")["reason"].startswith("SSHLinkLost: "), run.result("ssh-drop")
    meta = run.run_json()
    assert meta["verdict"] == "not-certified" and run.code == 1
    assert meta["counts"] == {
        "pass": 4,
        "fail": 2,
        "error": 2,
        "skip": 0,
        "waived": 0,
        "not-run": 0,
    }


@pytest.mark.slow
@pytest.mark.parametrize("board_name", ["qemu-x86_64-mini", "qemu-aarch64-uboot"])
def test_precert_plan_certifies_the_other_shipped_boards_and_their_discovered_drafts(
    qemu_board, results_root: Path, tmp_path: Path, board_name: str
) -> None:
    board = qemu_board(board_name)
    run = harness_run(board, REPO / "testplans" / "precert.yaml", results_root)
    assert run.code == 0, run.stderr
    assert run.run_json()["verdict"] == "certified"
    outcomes = run.outcomes()
    assert outcomes["usb-devices"] == "pass", "both boards have USB mass storage"
    assert outcomes["usb-storage[sda]"] == "pass"
    if board_name == "qemu-aarch64-uboot":  # an SBC-like board: device tree and U-Boot
        # Its CAN pair fixture (two Kvaser PCI controllers on one QEMU CAN bus): frames went
        # both ways through the emulated bus and were compared, candump's log in the evidence.
        assert outcomes["can-loopback[can0-can1]"] == "pass"
        log = run.result("can-loopback[can0-can1]")["log"]
        for sender, receiver in (("can0", "can1"), ("can1", "can0")):
            sent = re.findall(rf"cansend {sender} ([0-9A-F]+#[0-9A-F]*);", log)
            got = re.findall(rf"^\s*\(\d+\.\d+\) {receiver} (\S+)\s*$", log, re.MULTILINE)
            assert len(sent) == 4 and got == sent, log
        files = {e["name"]: e for e in run.run_json()["diagnostics"]["files"]}
        for name in ("devicetree", "devicetree-blob"):
            assert files[name]["status"] == "collected", files[name]
        tree = (run.folder / "diagnostics" / "devicetree.txt").read_text()
        assert '/compatible = "linux,dummy-virt"' in tree and "/chosen/bootargs = " in tree
        firmware = (run.folder / "diagnostics" / "firmware.txt").read_text()
        assert re.search(r"/chosen/u-boot,version: \d{4}\.\d\d", firmware), firmware
        _arm64_helper_runs_on_the_board_and_is_removed(board, tmp_path)

    # `harness board discover` on the same running board: a draft that `harness check`
    # accepts, certified by the smoke plan, whose inventory precert compares without a fail.
    work = results_root.parent / f"discover-{board_name}"
    work.mkdir()
    draft = work / "draft.yaml"
    found = discover(
        "board", "discover", "--env", str(board.env_file), "--out", str(draft), cwd=work
    )
    assert found.code == 0, found.stderr
    assert discover("check", str(draft), cwd=work).code == 0
    via = ("--env", str(board.env_file))
    smoke, meta = run_verdict(draft, SMOKE, work / "results", *via)
    assert (smoke.code, meta["verdict"]) == (0, "certified"), smoke.stderr
    inventory, meta = run_verdict(draft, PRECERT, work / "results", *via, "-k", INVENTORY_TESTS)
    assert meta["counts"]["fail"] == meta["counts"]["error"] == 0, inventory.stderr
    assert meta["counts"]["pass"] == 7, "five inventory tests, usb-devices, usb-storage[sda]"


def _arm64_helper_runs_on_the_board_and_is_removed(board, tmp_path: Path) -> None:
    """The helper chosen by the profile's arch (aarch64: Debian's arm64 busybox-static) runs
    on the unit. Its busybox shell has every applet, so nothing is missing in a run; the
    helper is supplied here as if sha256sum were, the way a run does it."""
    from harness.run.boardlink import open_board
    from harness.run.tools import SuppliedTools
    from harness.vlab.toolset import toolset_for

    link = open_board(board.profile, board.env_file, tmp_path / "helpers-console.log")
    try:
        helpers = SuppliedTools(link, toolset_for("aarch64"), ["sha256sum"])
        helpers.install()
        assert helpers.provided == ["sha256sum"], helpers.unavailable
        hashed = link.ssh.run(f"{helpers.directory}/sha256sum /proc/version")
        assert re.match(r"^[0-9a-f]{64} +/proc/version$", hashed.stdout), hashed
        helpers.remove()
        assert helpers.removed is True
        assert link.ssh.run(f"ls -d {helpers.directory}").exit_status != 0
    finally:
        link.close()
