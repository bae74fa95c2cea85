"""The device farm on a real labgrid coordinator with two real exporters and three simulated boards.

What a farm user relies on: labgrid tools see and switch the exported boards; the
harness reserves, never shares a board, always releases (normal end, SIGTERM,
Ctrl-C, a timeout, SIGKILL of the harness or of its keeper too); a lost place is
an error, never a pass; fan-out gives one verdict per board, a summary and a
JUnit file; an unhealthy board leaves service and comes back after a health check.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.farm.conftest import PLANS, RUN_GUARD, Farm, eventually

LAB1_A, LAB1_B, LAB2_A = "lab1-sim-1", "lab1-sim-2", "lab2-sim-1"
OTHER = "colleague"  # another labgrid user (LG_USERNAME), as labgrid-client users see them


def _run_json(farm: Farm, stderr: str) -> dict:
    run_id = next(
        line.split()[1].rstrip(":") for line in stderr.splitlines() if line.startswith("run ")
    )
    return json.loads((farm.results / run_id / "run.json").read_text())


def _free(farm: Farm, place: str) -> bool:
    return not farm.status()[place]["holder"]


def test_labgrid_client_lists_acquires_and_power_switches_an_exported_board(
    clean_farm: Farm,
) -> None:
    farm = clean_farm
    places = farm.client("-v", "places")
    for name in (LAB1_A, LAB1_B, LAB2_A):
        assert f"Place '{name}'" in places
    assert "board=sim" in places and "arch=x86_64" in places
    # --places-from made the place of a physical board from its profile, tagged likewise.
    assert "Place 'bench-rpi4-07'" in places
    assert "tags: arch=aarch64, board=rpi4, soc=bcm2711" in places and "*/bench-rpi4-07/*" in places
    bench_state = farm.lab_dir / farm.places[LAB2_A]["bench"] / "bench.json"
    farm.client("-p", LAB2_A, "acquire")
    try:
        farm.client("-p", LAB2_A, "power", "off")
        assert json.loads(bench_state.read_text())["power"] == "off"
        farm.client("-p", LAB2_A, "power", "on")
        assert json.loads(bench_state.read_text())["power"] == "on"
    finally:
        farm.client("-p", LAB2_A, "release")


@pytest.mark.slow  # over a minute on a loaded 2-core machine
def test_parallel_certification_over_three_places_on_two_lab_hosts(
    clean_farm: Farm, tmp_path: Path
) -> None:
    from junitparser import JUnitXml

    farm = clean_farm
    done = farm.run(
        "certify", "--places", "board=s*", "--parallel", "3", "--plan", str(PLANS / "quick.yaml"),
        "--results", str(tmp_path), "--no-submit",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary_dir = next(tmp_path.glob("*-farm-*"))
    summary = json.loads((summary_dir / "farm.json").read_text())
    runs = {run["place"]: run for run in summary["runs"]}
    assert set(runs) == {LAB1_A, LAB1_B, LAB2_A}
    assert {run["exporter"] for run in runs.values()} == {"lab1", "lab2"}
    for place, run in runs.items():
        assert run["verdict"] == "certified" and run["exit_code"] == 0
        run_json = json.loads((tmp_path / run["run_id"] / "run.json").read_text())
        assert run_json["lab"]["kind"] == "place" and run_json["lab"]["name"] == place
    suites = {suite.name: suite for suite in JUnitXml.fromfile(str(summary_dir / "junit.xml"))}
    assert set(suites) == {f"{place} (sim)" for place in runs}
    assert all(
        suite.tests == 1 and suite.failures == 0 and suite.errors == 0 for suite in suites.values()
    )
    table = (summary_dir / "summary.md").read_text()
    assert all(f"[{run['run_id']}](../{run['run_id']})" in table for run in runs.values())
    assert all(_free(farm, place) for place in runs)


@pytest.mark.slow  # over a minute on a loaded 2-core machine
def test_two_harnesses_reserving_one_tag_never_share_a_board_the_second_waits_then_runs(
    clean_farm: Farm, tmp_path: Path
) -> None:
    """Also: a taken place names its holder; a wait times out, or is cancelled by Ctrl-C,
    leaving no reservation behind; SIGTERM mid-run releases the place."""
    farm = clean_farm
    # A colleague holds two of the three sim boards: board=sim names exactly one free board.
    farm.client("-p", LAB1_A, "acquire", user=OTHER)
    farm.client("-p", LAB2_A, "acquire", user=OTHER)
    first = farm.hold(LAB1_B)
    quick = ("run", "--board", "sim", "--plan", str(PLANS / "quick.yaml"), "--results",
             str(farm.results), "--no-submit", "--plain")  # fmt: skip
    taken = farm.harness(*quick, "--place", LAB1_A)
    timed_out = farm.harness(*quick, "--place", LAB1_A, "--wait-timeout", "3")
    for proc, words in ((taken, "give --wait to queue"), (timed_out, "became free within 3 s")):
        _, err = proc.communicate(timeout=RUN_GUARD)
        assert proc.returncode == 3, err
        assert words in err and f"place {LAB1_A} is acquired by " in err and f"/{OTHER}" in err
    stopped = farm.harness(*quick, "--reserve", "board=sim", "--wait")
    eventually(lambda: _waiting(farm), RUN_GUARD, "a waiting reservation")
    stopped.send_signal(signal.SIGINT)  # Ctrl-C while it waits
    _, err = stopped.communicate(timeout=RUN_GUARD)
    assert stopped.returncode == 130, err
    eventually(lambda: not _waiting(farm), RUN_GUARD, "the cancelled job's reservation to go")
    second = farm.harness(*quick, "--reserve", "board=sim", "--wait")
    eventually(lambda: _waiting(farm), RUN_GUARD, "the second job to wait for the place")
    assert first.poll() is None and second.poll() is None
    first.send_signal(signal.SIGTERM)  # the first job is stopped in the middle of its test
    _, first_err = first.communicate(timeout=RUN_GUARD)
    assert first.returncode == 143, first_err
    assert f"place {LAB1_B} released" in first_err
    farm.on_board(LAB1_B, "touch /tmp/release-hold")  # ends the stopped job's command
    _, second_err = second.communicate(timeout=RUN_GUARD)
    assert second.returncode == 0, second_err
    assert "waiting for a place with board=sim" in second_err
    assert _run_json(farm, second_err)["lab"]["name"] == LAB1_B
    assert _free(farm, LAB1_B)
    assert "state:" not in farm.client("reservations")  # nothing left queued


def test_a_run_that_breaks_after_taking_its_place_still_releases_it(clean_farm: Farm) -> None:
    """The place is held when the run breaks: its run folder cannot be made (the results
    root is under /proc). The harness says why (exit 3, no traceback) and releases the place."""
    farm = clean_farm
    done = farm.run(
        "run", "--board", "sim", "--plan", str(PLANS / "quick.yaml"), "--place", LAB1_A,
        "--results", "/proc/harness-results", "--no-submit", "--plain",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot create the run folder /proc/harness-results/" in done.stderr
    assert f"place {LAB1_A} released" in done.stderr
    assert _free(farm, LAB1_A)
    assert "lease" not in farm.status()[LAB1_A]["tags"]


def _waiting(farm: Farm) -> bool:
    return "state: waiting" in farm.client("reservations")


@pytest.mark.slow  # over a minute on a loaded 2-core machine
def test_a_hung_board_on_a_place_is_power_cycled_through_the_farm_power_switch(
    clean_farm: Farm, tmp_path: Path
) -> None:
    farm = clean_farm
    bench = farm.lab_dir / farm.places[LAB2_A]["bench"]
    boots_before = json.loads((bench / "bench.json").read_text())["boot_count"]
    hung = farm.run(
        "lab", "--lab-dir", str(farm.lab_dir), "fault", farm.places[LAB2_A]["bench"], "hang"
    )
    assert hung.returncode == 0, hung.stderr
    done = farm.run(
        "run", "--board", "sim", "--plan", str(PLANS / "quick.yaml"), "--place", LAB2_A,
        "--results", str(tmp_path), "--no-submit", "--plain",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_dir = next(tmp_path.glob("*-sim-*"))
    assert "power-cycling" in (run_dir / "console.log").read_text()
    assert json.loads((bench / "bench.json").read_text())["boot_count"] > boots_before
    assert _free(farm, LAB2_A)


@pytest.mark.slow  # over a minute on a loaded 2-core machine
def test_a_place_lost_mid_run_is_an_error_and_twice_in_a_row_takes_the_board_out_of_service(
    clean_farm: Farm,
) -> None:
    """First the exporter dies under the run, then a colleague takes the place over."""
    farm = clean_farm
    lab2 = farm.hosts["lab2"]
    exporter_pid = json.loads((lab2.folder / "farm.json").read_text())["pids"]["exporter"]
    run = farm.hold(LAB2_A)
    os.kill(exporter_pid, signal.SIGKILL)
    _, err = run.communicate(timeout=RUN_GUARD)
    assert run.returncode == 3, err
    results = _results(farm, err)
    assert results["hold"]["outcome"] == "error"
    assert "exporter lab2 disconnected" in results["hold"]["reason"]
    assert results["after"]["outcome"] == "not-run"
    assert _free(farm, LAB2_A)
    farm.on_board(LAB2_A, "touch /tmp/release-hold")  # the board is ours to tidy again
    # lab2's export restarts its exporter (as systemd would); then the place serves again.
    eventually(
        lambda: f"lab2/{LAB2_A}/NetworkSerialPort" in farm.client("resources"),
        RUN_GUARD,
        "the exporter back",
    )
    assert farm.status()[LAB2_A]["infra_errors"] == 1

    run = farm.hold(LAB2_A)
    farm.client("-p", LAB2_A, "release", "--kick", user=OTHER)
    farm.client("-p", LAB2_A, "acquire", user=OTHER)
    _, err = run.communicate(timeout=RUN_GUARD)
    assert run.returncode == 3, err
    results = _results(farm, err)
    assert results["hold"]["outcome"] == "error"
    # The colleague's `release --kick` and `acquire` are two steps; the run may see either first.
    assert re.search(
        f"taken over by .*/{OTHER}|released by someone else", results["hold"]["reason"]
    )
    state = farm.status()[LAB2_A]
    assert state["holder"].endswith(f"/{OTHER}")  # the colleague keeps it: not ours to release
    assert state["state"] == "bad" and "board" not in state["tags"]
    assert state["tags"]["bad_board"] == "sim"
    assert "infrastructure errors in 2 runs in a row" in state["comment"]


def _results(farm: Farm, stderr: str) -> dict[str, dict]:
    run_id = _run_json(farm, stderr)["run_id"]
    lines = (farm.results / run_id / "results.jsonl").read_text().splitlines()
    return {record["id"]: record for record in map(json.loads, lines)}


@pytest.mark.parametrize("killed", ["harness", "harness-and-keeper"])
def test_sigkill_of_the_harness_leaves_no_place_acquired(clean_farm: Farm, killed: str) -> None:
    """The keeper releases at once when its harness dies; if it dies too, the lease runs out."""
    farm = clean_farm
    run = farm.hold(LAB1_A, env={"HARNESS_FARM_LEASE": "5"})
    keeper = _keeper_of(run.pid)
    killed_at = time.monotonic()
    os.kill(run.pid, signal.SIGKILL)
    if killed == "harness-and-keeper":
        os.kill(keeper, signal.SIGKILL)
    run.communicate(timeout=RUN_GUARD)
    eventually(lambda: _free(farm, LAB1_A), RUN_GUARD, f"{LAB1_A} released")
    released_after = time.monotonic() - killed_at
    farm.on_board(LAB1_A, "touch /tmp/release-hold")
    reaped = [e for e in farm.history() if e["event"] == "reaped" and e["place"] == LAB1_A]
    if killed == "harness-and-keeper":
        assert reaped and "not renewed for 5 s" in reaped[-1]["reason"]
    else:
        assert not reaped
    print(f"released {released_after:.1f} s after SIGKILL of the {killed}")
    assert "lease" not in farm.status()[LAB1_A]["tags"]


def _keeper_of(pid: int) -> int:
    def find() -> int | None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"harness.farm.keeper" in cmdline:
                return int(entry.name)
        return None

    return int(eventually(find, RUN_GUARD, f"the keeper of harness {pid}"))


@pytest.mark.slow  # over a minute on a loaded 2-core machine
def test_an_unhealthy_board_is_marked_bad_skipped_by_reservations_and_returns_after_a_health_check(
    clean_farm: Farm, tmp_path: Path
) -> None:
    import httpx

    farm = clean_farm
    unit = farm.places[LAB1_A]
    fault = farm.hosts["lab1"].info["pdu"].format(index=unit["outlet"]).replace("/value", "/fault")
    farm.client("-p", LAB1_B, "acquire", user=OTHER)
    farm.client("-p", LAB2_A, "acquire", user=OTHER)
    httpx.put(fault, content="dead").raise_for_status()  # the board's PDU outlet fails
    try:
        checked = farm.run("farm", "health", LAB1_A, "--results", str(tmp_path))
        assert checked.returncode == 1, checked.stdout + checked.stderr
        state = farm.status()[LAB1_A]
        assert state["state"] == "bad" and "health check failed" in state["comment"]
        assert "power switch" in state["comment"] and "503" in state["comment"]
        shown = farm.client("-p", LAB1_A, "show")  # what labgrid users see
        tags = next(line for line in shown.splitlines() if "tags:" in line)
        assert "bad_board=sim" in tags and "board=sim" not in tags.replace("bad_board=sim", "")
        refused = farm.run(
            "run", "--board", "sim", "--plan", str(PLANS / "quick.yaml"), "--reserve", "board=sim",
            "--results", str(tmp_path), "--no-submit",
        )  # fmt: skip
        assert refused.returncode == 3
        assert LAB1_A not in refused.stderr  # only the colleague's places were candidates
    finally:
        httpx.put(fault, content="ok").raise_for_status()
    # A short plan stands in for testplans/health.yaml: the test is about the state changes.
    healed = farm.run(
        "farm", "health", LAB1_A, "--plan", str(PLANS / "quick.yaml"), "--results", str(tmp_path)
    )
    assert healed.returncode == 0, healed.stdout + healed.stderr
    state = farm.status()[LAB1_A]
    assert state["state"] == "good" and state["tags"]["board"] == "sim" and not state["comment"]
    events = [e["event"] for e in farm.history() if e["place"] == LAB1_A]
    assert events[-2:] == ["bad", "good"]
    listing = farm.run("farm", "status")
    assert f"{LAB1_A} bad: health check failed" in listing.stdout


def test_health_on_a_schedule_checks_again_until_sigterm_and_leaves_the_place_free(
    clean_farm: Farm, tmp_path: Path
) -> None:
    """`harness farm health --every S` re-checks a place every S seconds; SIGTERM ends it
    after the check under way (never mid-check), with that check's exit code."""
    farm = clean_farm

    def finished_checks() -> int:
        runs = [json.loads(p.read_text()) for p in tmp_path.glob("*/run.json")]
        return sum(run["status"] == "finished" for run in runs)

    scheduled = farm.harness(
        "farm", "health", LAB1_A, "--every", "10", "--plan", str(PLANS / "quick.yaml"),
        "--results", str(tmp_path),
    )  # fmt: skip
    try:
        eventually(lambda: finished_checks() >= 2 or scheduled.poll() is not None, 3 * RUN_GUARD,
                   "a second scheduled health check")  # fmt: skip
        assert scheduled.poll() is None, scheduled.communicate()
    finally:
        scheduled.send_signal(signal.SIGTERM)
    out, err = scheduled.communicate(timeout=RUN_GUARD)
    assert scheduled.returncode == 0, out + err
    assert out.count(f"health: {LAB1_A}: healthy") >= 2
    assert finished_checks() == out.count(f"health: {LAB1_A}: healthy")
    assert _free(farm, LAB1_A)
    assert farm.status()[LAB1_A]["state"] == "good"


@pytest.mark.slow  # over a minute on a loaded 2-core machine
def test_repro_fans_a_customer_case_out_over_places_named_one_by_one(
    clean_farm: Farm, tmp_path: Path
) -> None:
    farm = clean_farm
    case = Path(__file__).resolve().parents[2] / "testplans" / "cases" / "never.yaml"
    done = farm.run(
        "repro", str(case), "--board", "sim", "--place", LAB1_A, "--place", LAB2_A, "--parallel", "2",
        "--repeat", "1", "--results", str(tmp_path), "--no-submit",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(next(tmp_path.glob("*-farm-*/farm.json")).read_text())
    assert {run["place"]: run["verdict"] for run in summary["runs"]} == {
        LAB1_A: "not-reproduced",
        LAB2_A: "not-reproduced",
    }
    for run in summary["runs"]:
        run_json = json.loads((tmp_path / run["run_id"] / "run.json").read_text())
        assert run_json["lab"] == {**run_json["lab"], "kind": "place", "name": run["place"]}
    assert _free(farm, LAB1_A) and _free(farm, LAB2_A)
