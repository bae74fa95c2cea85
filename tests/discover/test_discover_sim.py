"""`harness board discover` on the simulated board: the draft passes `harness check` and
certifies the board it came from; the file is written whole, never over one that exists."""

from __future__ import annotations

import os
from pathlib import Path

from tests.discover.discover_helpers import (
    PRECERT,
    SMOKE,
    draft_of,
    harness,
    results_of,
    run_verdict,
)

INVENTORY_TESTS = "cpu-count or memory-size or block-devices or network-interfaces or serial-ports"


def test_sim_draft_passes_check_and_is_certified_by_smoke_and_precert_inventory(
    sim_board, tmp_path: Path
) -> None:
    out = tmp_path / "draft.yaml"
    done = harness(
        "board", "discover", "--env", str(sim_board.env_file), "--out", str(out), cwd=tmp_path
    )
    assert done.code == 0, done.stderr
    assert f"drafted {out}" in done.stderr
    assert "choices for a person" in done.stderr and "identity.vendor" in done.stderr
    text = out.read_text()
    assert "# DECIDE: the vendor's name" in text
    draft = draft_of(out)
    assert draft["kind"] == "board"
    assert draft["lab"] == {"env": os.path.relpath(sim_board.env_file, tmp_path)}
    assert draft["console"]["username"] == "root" and draft["console"]["baud"] == 115200
    assert draft["identity"]["arch"] == sim_board.profile.identity.arch

    checked = harness("check", str(out), cwd=tmp_path)
    assert checked.code == 0, checked.stderr

    smoke, meta = run_verdict(out, SMOKE, tmp_path / "results")
    assert smoke.code == 0, smoke.stderr
    assert meta["verdict"] == "certified"
    assert meta["board"]["name"] == draft["name"]
    # The inventory drafted is the inventory precert compares: its inventory tests all pass
    # (the rest is deselected, so the run is `incomplete`, never failed).
    precert, meta = run_verdict(out, PRECERT, tmp_path / "results", "-k", INVENTORY_TESTS)
    assert meta["counts"]["fail"] == 0 and meta["counts"]["error"] == 0, precert.stderr
    passed = {r["id"] for r in results_of(meta) if r["outcome"] == "pass"}
    assert {"cpu-count", "memory-size", "block-devices", "network-interfaces"} <= passed


def test_existing_profile_is_kept_unless_force_and_a_failed_discovery_leaves_no_file(
    sim_board, tmp_path: Path
) -> None:
    out = tmp_path / "mine.yaml"
    out.write_text("# a person's profile\n")
    env = str(sim_board.env_file)
    kept = harness("board", "discover", "--env", env, "--out", str(out), cwd=tmp_path)
    assert kept.code == 2
    assert "field '--out': exists; give --force to replace it" in kept.stderr
    assert out.read_text() == "# a person's profile\n"

    failed_out = tmp_path / "never.yaml"
    failed = harness(
        "board", "discover", "--env", env, "--out", str(failed_out), "--password", "wrong",
        cwd=tmp_path,
    )  # fmt: skip
    assert failed.code == 3
    assert "refused the console login" in failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"], "no file, no temp file"

    forced = harness(
        "board", "discover", "--env", env, "--out", str(out), "--force", "--name", "my-sbc",
        cwd=tmp_path,
    )  # fmt: skip
    assert forced.code == 0, forced.stderr
    assert draft_of(out)["name"] == "my-sbc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]


def test_running_virtual_board_by_name_gives_a_virtual_lab_draft_that_certifies(
    sim_board, tmp_path: Path
) -> None:
    lab_dir = {"HARNESS_LAB_DIR": str(Path(sim_board.state().state_dir).parent)}
    done = harness(
        "board", "discover", "--board", sim_board.name, "--out", "-", cwd=tmp_path, env=lab_dir
    )
    assert done.code == 0, done.stderr
    out = tmp_path / "virtual.yaml"
    out.write_text(done.stdout)
    assert draft_of(out)["lab"] == {"virtual": {"machine": "sim"}}
    assert harness("check", str(out), cwd=tmp_path).code == 0
    # Its lab is the virtual lab's: `harness run` starts a board of its own for the run.
    smoke, meta = run_verdict(out, SMOKE, tmp_path / "results")
    assert smoke.code == 0, smoke.stderr
    assert meta["verdict"] == "certified"


def test_bad_options_exit_2_naming_the_option_before_any_board_is_touched(tmp_path: Path) -> None:
    neither = harness("board", "discover", "--out", "-", cwd=tmp_path)
    assert neither.code == 2
    assert "field '--board': give --env ENV" in neither.stderr
    bad_name = harness("board", "discover", "--env", "x.yaml", "--name", "My Board", cwd=tmp_path)
    assert bad_name.code == 2 and "field '--name'" in bad_name.stderr
    no_env = harness("board", "discover", "--env", "missing.yaml", "--out", "-", cwd=tmp_path)
    assert no_env.code == 2
    assert "missing.yaml, field '--env': labgrid environment file not found" in no_env.stderr
    no_dir = harness(
        "board", "discover", "--env", "x.yaml", "--out", "no/such/d.yaml", cwd=tmp_path
    )
    assert no_dir.code == 2 and "its folder does not exist" in no_dir.stderr
    no_boards = harness("board", "discover", "--env", "x.yaml", cwd=tmp_path)
    assert no_boards.code == 2 and "no boards/ folder here to draft into" in no_boards.stderr
    everything = neither.stderr + bad_name.stderr + no_env.stderr + no_dir.stderr
    assert "Traceback" not in everything + no_boards.stderr
