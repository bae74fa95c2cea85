"""The run folders registry and bundle tests are built on (runfolder.py) match a real run's.

About 200 registry and bundle tests read folders made by tests/registry/runfolder.py
instead of running the engine. They are only worth something while those folders look
like what `harness run` leaves: this test makes one real run on the simulated board and
holds a made folder to it, file by file and key by key, so a change to the run folder
contract (a file added or moved, a key renamed in run.json, inventory.json, a results
line or submission.json) fails here until runfolder.py follows it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.runfolder import RunFolder
from tests.registry.runfolder import make_run_folder
from tests.run.conftest import harness_run


def _keys(value: Any, depth: int = 2) -> Any:
    """The keys of a JSON object and of the objects in it, `depth` levels down, so two
    files compare by shape and not by content (what a list holds is content)."""
    if isinstance(value, dict) and depth:
        return {key: _keys(item, depth - 1) for key, item in value.items()}
    return type(value).__name__ if isinstance(value, dict | list) else None


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _diagnostics_files(folder: Path) -> tuple[set[str], set[str]]:
    """(files under diagnostics/, files run.json lists as collected there)."""
    listed = _json(folder / "run.json")["diagnostics"]["files"]
    on_disk = {p.relative_to(folder).as_posix() for p in (folder / "diagnostics").iterdir()}
    return on_disk, {f["file"] for f in listed if f["status"] == "collected"}


def test_made_run_folders_have_the_files_and_keys_of_a_real_run(sim_board, tmp_path: Path) -> None:
    # No registry URL in the environment (registry/conftest.py): the run is delivered to the
    # test's own local registry, so it writes submission.json "delivered".
    run = harness_run(sim_board, "all-pass.yaml", tmp_path / "results", submit=True)
    assert run.code == 0, run.stderr[-2000:]
    real = run.folder
    made = make_run_folder(tmp_path / "made", "made-run", submitted="delivered")

    assert sorted(p.name for p in made.iterdir()) == sorted(p.name for p in real.iterdir())
    for folder in (real, made):
        on_disk, listed = _diagnostics_files(folder)
        assert on_disk == listed and on_disk, folder
        assert any((folder / "artifacts").iterdir()), folder
    for name in ("run.json", "inventory.json", "submission.json"):
        assert _keys(_json(made / name)) == _keys(_json(real / name)), name
    made_lines = {json.dumps(_keys(json.loads(line))) for line in (made / "results.jsonl").open()}
    real_lines = {json.dumps(_keys(json.loads(line))) for line in (real / "results.jsonl").open()}
    assert made_lines == real_lines
    # and both are read back by the engine's own reader
    assert RunFolder(made).read_run().status == RunFolder(real).read_run().status == "finished"
