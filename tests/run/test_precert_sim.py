"""Pre-certification 2.0 on the simulated board: per-device instances, parameters, a missing disk.

The simulated board has no disks of its own, so a profile that promises one is exactly the
"disk the board lacks" case: the instance named after that disk fails and the run is
not-certified. Each test runs only the tests it needs (`-k`), so each takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.run.conftest import REPO, harness_run

PRECERT = REPO / "testplans" / "precert.yaml"


def _profile_with_disk(board, tmp_path: Path, disk: str) -> Path:
    data = yaml.safe_load(Path(board.profile.source).read_text())
    data["inventory"]["block_devices"] = [{"name": disk, "size_mib": 8}]
    data["boot"]["settle_timeout"] = 2  # the disk never appears: do not wait the default minute
    path = tmp_path / "sim-with-disk.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_profiled_disk_the_board_lacks_fails_its_own_instance_and_blocks(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    board = sim_board
    board.profile.source = _profile_with_disk(board, tmp_path, "vdz")
    run = harness_run(board, PRECERT, results_root, "-k", "storage-rw[vdz] or console-login")
    assert run.code == 1, run.stderr
    assert run.run_json()["verdict"] == "not-certified"
    failed = run.result("storage-rw[vdz]")
    assert failed["outcome"] == "fail"
    assert "no block device /dev/vdz" in failed["reason"]
    outcomes = run.outcomes()
    assert outcomes["console-login"] == "pass"
    assert outcomes["memory-pattern"] == "not-run", "-k selected the one instance, not the plan"
    assert "storage-rw[vdz]" in run.run_json()["plan"]["tests"]


def test_precert_certifies_the_simulated_board_and_a_command_line_parameter_sets_power_cycles(
    sim_board, results_root: Path
) -> None:
    """The whole plan: what the namespace board lacks (disks, watchdog, RTC, a kernel of its
    own, a network peer) is skipped, everything else passes, and `--param` reaches the test."""
    run = harness_run(sim_board, PRECERT, results_root, "--param", "power_cycles=2")
    assert run.code == 0, run.stderr
    assert run.run_json()["verdict"] == "certified"
    outcomes = run.outcomes()
    assert outcomes["network-link[lo]"] == outcomes["network-address[lo]"] == "pass"
    assert outcomes["network-transfer[lo]"] == "skip", "the simulated lab has no network peer"
    result = run.result("power-cycle")
    assert result["outcome"] == "pass", result["reason"]
    boots = sorted(m["name"] for m in result["measurements"] if m["name"].startswith("boot_time"))
    assert boots == ["boot_time_1", "boot_time_2"]
    parameters = run.run_json()["plan"]["parameters"]
    assert parameters["power_cycles"] == 2, "run.json names the values the run used"
    assert parameters["warm_reboots"] == 1, "and the plan's defaults for the rest"
    assert "power_cycles=2" in (run.folder / "report.html").read_text()

    again = harness_run(
        sim_board, PRECERT, results_root, "--resume", run.folder.name, "--param", "power_cycles=3"
    )
    assert again.code == 2, again.stderr
    assert f"run {run.folder.name} started with power_cycles=2" in again.stderr
    assert "Traceback" not in again.stderr
    assert run.run_json()["plan"]["parameters"]["power_cycles"] == 2, "the run is untouched"


def test_an_unknown_parameter_is_refused_before_any_board_is_touched(
    tmp_path: Path, results_root: Path
) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--board", "sim", "--plan", str(PRECERT),
         "--param", "reboots=3", "--results", str(results_root), "--no-submit"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "plan 'precert' has no parameter 'reboots'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not results_root.exists()


def test_precert_operator_tests_wait_for_a_person_where_the_lab_has_one(
    sim_board, tmp_path: Path, results_root: Path
) -> None:
    """With `fixtures: {operator: true}` the LED test is asked (here: --unattended, so not-run
    and the verdict incomplete); the display test still needs a monitor the lab lacks."""
    data = yaml.safe_load(Path(sim_board.profile.source).read_text())
    data["fixtures"] = {**data.get("fixtures", {}), "operator": True}
    profile = tmp_path / "sim-with-operator.yaml"
    profile.write_text(yaml.safe_dump(data))
    sim_board.profile.source = profile
    run = harness_run(
        sim_board, PRECERT, results_root, "-k", "operator or console-login", "--unattended"
    )
    assert run.code == 3, run.stderr
    assert run.run_json()["verdict"] == "incomplete"
    leds = run.result("operator-leds")
    assert leds["outcome"] == "not-run"
    assert leds["reason"] == "operator step not asked: the run is --unattended"
    display = run.result("operator-display")
    assert display["outcome"] == "skip"
    assert "board.fixtures.display = False" in display["reason"]
    assert run.outcomes()["console-login"] == "pass"


def test_no_shipped_virtual_board_has_an_operator_so_precert_skips_its_operator_tests() -> None:
    from harness.model.board import find_board
    from harness.model.plan import load_plan

    plan = load_plan(PRECERT)
    operator_tests = [test for test in plan.tests if any(s.kind == "manual" for s in test.steps)]
    assert {test.id for test in operator_tests} == {"operator-leds", "operator-display"}
    for path in sorted((REPO / "boards").glob("qemu-*.yaml")):
        scope = {"board": find_board(str(path)).model_dump(mode="json"), "facts": {}}
        for test in operator_tests:
            assert test.requires_expr is not None
            assert not test.requires_expr.evaluate(scope), (path.name, test.id)
