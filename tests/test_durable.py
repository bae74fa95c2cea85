"""Atomic writes: readers see the old or the new file, and no temporary file is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.durable import write_atomic


@pytest.mark.parametrize("durable", [True, False])
def test_write_atomic_replaces_the_file_and_leaves_no_temporary(
    tmp_path: Path, durable: bool
) -> None:
    target = tmp_path / "run.json"
    target.write_text("old")
    write_atomic(target, '{"new": true}\n', durable=durable)
    assert target.read_text() == '{"new": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
