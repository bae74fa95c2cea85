"""`--baseline` is input like any other: a folder or bundle whose run.json is not a finished repro
run of the case is refused with one message naming the baseline (exit 2), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.model.case import load_case
from harness.repro.session import load_baseline

CASES = Path(__file__).resolve().parents[2] / "testplans" / "cases"

RUN_JSONS = {
    "a list": "[]",
    "nested 100,000 deep": '{"kind": "repro", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "a certification run": json.dumps({"kind": "certification", "run_id": "r", "verdict": "certified"}),
    "a repro run with a bad summary": json.dumps({"kind": "repro", "run_id": "r", "summary": {"reproduced": "many"}}),
    "not JSON": "{kind: repro",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RUN_JSONS))
def test_baseline_folder_whose_run_json_is_not_a_repro_run_is_bad_input(
    tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "baseline"
    folder.mkdir()
    (folder / "run.json").write_text(RUN_JSONS[name])
    with pytest.raises(UserError) as raised:
        load_baseline(folder, load_case(CASES / "always.yaml"))
    assert raised.value.location.field == "--baseline"
    assert str(folder) in str(raised.value.location.file)


def test_baseline_that_is_neither_folder_nor_bundle_is_bad_input(tmp_path: Path) -> None:
    for source in (tmp_path / "missing", tmp_path / "junk.tar"):
        if source.name == "junk.tar":
            source.write_bytes(b"not a tar at all" * 100)
        with pytest.raises(UserError) as raised:
            load_baseline(source, load_case(CASES / "always.yaml"))
        assert raised.value.location.field == "--baseline"
