"""Diagnostics in the evidence and helper tools for what the unit lacks, on the simulated board.

Diagnostics: every run leaves the unit's kernel log, configuration, command line, modules,
device tree or DMI and firmware versions as files under diagnostics/, listed with their
sha256 in run.json, inside the signed bundle; a run that fails keeps them too, and what
could not be read says why without touching the verdict.

Tools: a command the plan uses is removed from the board before the run; the harness finds
it missing, copies Debian's busybox-static over SFTP, the check that needs it passes, run.json
names the helper, and the helper's folder is gone from the board afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import paramiko
import pytest

from harness.model.plan import load_plan
from harness.report.bundle import make_bundle
from harness.report.bundle_read import verify_bundle
from harness.run import sysinfo
from harness.run.boardlink import open_board
from harness.run.session import RunSession
from tests.run.conftest import REPO, RunOutput, harness_run, harness_run_argv
from tests.run.resume_helpers import KILL_WAIT, SLOW_COMMAND, _wait_for

PRECERT = REPO / "testplans" / "precert.yaml"
ITEMS = {"dmesg", "kernel-config", "cmdline", "modules", "devicetree-blob", "devicetree"}
ITEMS |= {"dmi", "firmware"}


def _ssh(board, command: str) -> str:
    """A command on the board over its own SSH server, as a person at the lab would type it."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1", port=board.ssh_port, username="root", password="root",
        allow_agent=False, look_for_keys=False, timeout=30,
    )  # fmt: skip
    try:
        _, out, err = client.exec_command(command, timeout=60)
        return out.read().decode() + err.read().decode()
    finally:
        client.close()


def _diagnostics(run: RunOutput) -> dict[str, dict]:
    info = run.run_json()["diagnostics"]
    assert info["problem"] == "" and info["via"] == "ssh", info
    return {entry["name"]: entry for entry in info["files"]}


def _bundle_files(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    monkeypatch.setenv("HARNESS_DATA_HOME", str(tmp_path / "home"))
    report = verify_bundle(make_bundle(folder, tmp_path / "run.bundle.tar").path)
    assert report.ok, report.problems
    return {entry["path"] for entry in report.manifest["files"]}


def test_a_failing_run_keeps_the_units_diagnostics_in_its_signed_bundle(
    sim_board, tmp_path: Path, results_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A blocker that fails (the sim board has no disk vdz): the diagnostics are still taken.
    data = json.loads(json.dumps(__import__("yaml").safe_load(
        Path(sim_board.profile.source).read_text())))  # fmt: skip
    data["inventory"]["block_devices"] = [{"name": "vdz", "size_mib": 8}]
    data["boot"]["settle_timeout"] = 2
    profile = tmp_path / "sim-with-disk.yaml"
    profile.write_text(json.dumps(data))
    sim_board.profile.source = profile
    run = harness_run(sim_board, PRECERT, results_root, "-k", "storage-rw[vdz]")
    assert run.code == 1, run.stderr
    assert run.run_json()["verdict"] == "not-certified"
    files = _diagnostics(run)
    assert set(files) == ITEMS
    for name in ("cmdline", "modules", "firmware"):
        assert files[name]["status"] == "collected", files[name]
    for entry in files.values():
        if entry["status"] == "collected":
            data_bytes = (run.folder / entry["file"]).read_bytes()
            assert hashlib.sha256(data_bytes).hexdigest() == entry["sha256"]
            assert len(data_bytes) == entry["bytes"] > 0
        else:  # the sim board cannot read the host's kernel log (no CAP_SYSLOG), say
            assert entry["status"] in ("absent", "failed") and entry["reason"], entry
            assert entry["file"] is None
    assert files["dmesg"]["status"] == "failed", "the sim board is denied the host's kernel log"
    cmdline = (run.folder / "diagnostics" / "cmdline.txt").read_text()
    assert cmdline.strip() == Path("/proc/cmdline").read_text().strip()
    in_bundle = _bundle_files(run.folder, tmp_path, monkeypatch)
    assert {f"run/{e['file']}" for e in files.values() if e["file"]} <= {
        f"run/{path}" for path in in_bundle
    }
    report = (run.folder / "report.html").read_text()
    assert "Diagnostics" in report and "diagnostics/cmdline.txt" in report


def _without_sha256sum(board) -> None:
    """Take sha256sum off the board (its RAM overlay: back at the next power-on).

    The sim board's login shell is busybox ash, which runs its own applets whatever PATH
    holds; root gets the lab host's /bin/sh (dash) instead, so a removed command is gone."""
    out = _ssh(board, "sed -i 's#^root:\\(.*\\):/bin/ash$#root:\\1:/bin/sh#' /etc/passwd; "
                      "rm -f /usr/bin/sha256sum /bin/sha256sum; grep ^root: /etc/passwd")  # fmt: skip
    assert out.strip().endswith(":/bin/sh"), out
    assert _ssh(board, "command -v sha256sum; echo end").strip() == "end"


def test_a_tool_the_board_lacks_is_supplied_for_the_run_and_removed_after(
    sim_board, results_root: Path
) -> None:
    _without_sha256sum(sim_board)
    # What a harness killed outright left behind: the next run that supplies helpers removes it.
    _ssh(sim_board, "mkdir -p /tmp/harness-tools-dead; touch /tmp/harness-tools-dead/busybox")
    run = harness_run(sim_board, PRECERT, results_root, "-k", "memory-pattern")
    assert run.code == 3, run.stderr  # a subset of the plan: incomplete, but nothing failed
    assert run.outcomes()["memory-pattern"] == "pass", run.result("memory-pattern")["reason"]
    tools = run.run_json()["tools"]
    # dash on the lab host's userland also lacks nc, watchdog and lsmod: all really missing.
    assert "sha256sum" in tools["missing"] and tools["unavailable"] == []
    (helper,) = tools["helpers"]
    assert helper["package"] == "busybox-static" and helper["provides"] == tools["missing"]
    assert helper["version"] and helper["deb_arch"] == "amd64"
    from harness.vlab.toolset import cached_toolset

    toolset = cached_toolset("x86_64")
    assert toolset is not None and helper["sha256"] == toolset.sha256
    assert tools["removed"] is True
    assert tools["directory"].startswith("/tmp/harness-tools-")
    left = _ssh(sim_board, "ls -d /tmp/harness-tools-* 2>/dev/null; echo end")
    assert left.strip() == "end", f"helper folder (this run's or a stale one) left: {left!r}"


def test_a_plan_tool_name_with_a_path_is_refused_with_file_and_field(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "schema: 1\nkind: plan\nid: p\nversion: '1'\ntitle: t\ntools: [sha256sum, /bin/dd]\n"
        "tests:\n  - id: a\n    title: a\n    category: c\n    steps: [{run: 'true'}]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "harness", "check", str(plan)],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "plan.yaml" in done.stderr and "tools" in done.stderr
    assert "Traceback" not in done.stderr


class _ConsoleOnly:
    """The sim board as a unit without SSH: everything else is the real board."""

    def __init__(self, board: Any):
        self._board = board

    has_ssh = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._board, name)


def test_over_a_console_only_unit_a_kernel_log_with_a_panic_arrives_intact_and_is_no_crash(
    sim_board, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a console the diagnostics travel base64-encoded: a kernel log that holds a panic
    line is evidence, not a crash of the board, and the run's verdict stays what it was."""
    oops = "[  12.5] Kernel panic - not syncing: VFS: Unable to mount root fs\n[  12.6] ---[ end"
    _ssh(sim_board, f"printf '%s\\n' '{oops}' > /root/old-kernel.log")
    monkeypatch.setattr(
        sysinfo, "ITEMS", (sysinfo.Item("dmesg", "dmesg.txt", "cat /root/old-kernel.log"),)
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "kind: plan\nid: one\nversion: '1'\ntitle: one\ntests:\n"
        "  - {id: echo, title: echo, category: c, steps: [{run: 'echo hello'}]}\n"
    )
    session = RunSession(
        load_plan(plan), sim_board.profile, env_file=sim_board.env_file, lab_kind="virtual",
        lab_name="sim", results_root=tmp_path / "results",
        board_opener=lambda *args: _ConsoleOnly(open_board(*args)),
    )  # fmt: skip
    assert session.execute(session.plan.test("echo"))["outcome"] == "pass"
    assert session.finish() == 0
    run = session.folder.read_run()
    assert run.verdict == "certified"
    assert run.diagnostics is not None and run.diagnostics.via == "console"
    (entry,) = run.diagnostics.files
    assert entry.status == "collected", entry.reason
    assert (session.folder.path / "diagnostics" / "dmesg.txt").read_text() == oops + "\n"


def test_helpers_are_put_back_after_a_power_cycle_and_removed_when_sigterm_stops_the_run(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    _without_sha256sum(sim_board)
    plan = tmp_path / "slow-with-tools.yaml"
    plan.write_text(
        "kind: plan\nid: slow-tools\nversion: '1'\ntitle: stopped mid-test\ntools: [sha256sum]\n"
        "tests:\n  - {id: cycle, title: cycle, category: reboot, steps: [{power-cycle: {}}]}\n"
        "  - id: slow\n    title: waits\n    category: console\n    steps:\n"
        f"      - run: {json.dumps(SLOW_COMMAND)}\n"
    )
    log = tmp_path / "stopped-run.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            harness_run_argv(sim_board, plan, results_root), cwd=REPO, stdout=output, stderr=output
        )
    try:
        console = lambda: next(results_root.glob("*/console.log"), None)  # noqa: E731
        _wait_for(lambda: console() is not None, "the run folder", proc, log)
        began = lambda: "| slow-began" in console().read_text(errors="replace")  # noqa: E731
        _wait_for(began, "test 'slow' to start", proc, log)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=KILL_WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    folder = console().parent
    assert json.loads((folder / "run.json").read_text())["status"] == "running", "resumable"
    # A power cycle empties the board's /tmp: the helpers were put back after it.
    installs = re.findall(r"ssh: (/tmp/harness-tools-\w+)/busybox --list", console().read_text())
    assert len(installs) == 2 and len(set(installs)) == 1, installs
    left = _ssh(sim_board, "ls -d /tmp/harness-tools-* 2>/dev/null; echo end")
    assert left.strip() == "end", f"helper folder left on the board: {left!r}"
