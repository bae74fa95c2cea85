"""Old virtual-lab builds are pruned from the cache; the current ones and recently used ones stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.vlab.build import prune_cache


def make_entry(root: Path, key: str, age_days: float) -> Path:
    entry = root / "lab" / key
    (entry / "x86_64").mkdir(parents=True)
    (entry / "x86_64" / "vmlinux").write_bytes(b"\0" * 16)
    stamp = time.time() - age_days * 86400
    os.utime(entry, (stamp, stamp))
    return entry


def test_only_builds_unused_for_two_weeks_are_removed_by_default(tmp_path: Path) -> None:
    current = make_entry(tmp_path, "current", age_days=40)
    recent = make_entry(tmp_path, "recent", age_days=2)
    stale = make_entry(tmp_path, "stale", age_days=30)
    removed = prune_cache({current}, root=tmp_path)
    assert removed == [stale]
    assert current.is_dir() and recent.is_dir() and not stale.exists()


def test_explicit_prune_removes_every_other_build_but_never_the_current_one(tmp_path: Path) -> None:
    current = make_entry(tmp_path, "current", age_days=0)
    others = [make_entry(tmp_path, f"old{i}", age_days=i) for i in range(3)]
    removed = prune_cache({current}, root=tmp_path, unused_days=None)
    assert sorted(removed) == sorted(others)
    assert [p.name for p in (tmp_path / "lab").iterdir()] == ["current"]


def test_pruning_an_empty_cache_does_nothing(tmp_path: Path) -> None:
    assert prune_cache(set(), root=tmp_path) == []
