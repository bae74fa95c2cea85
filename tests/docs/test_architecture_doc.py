"""docs/architecture.md names what the code has: every module it cites exists, and every stage,
board state and registry table in the code appears in it."""

from __future__ import annotations

import re
from pathlib import Path

from harness.lab.states import BoardState
from harness.registry.schema import metadata

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")


def _mermaid(kind: str) -> str:
    """The text of the doc's mermaid diagram that starts with `kind`."""
    blocks = re.findall(r"```mermaid\n(.*?)```", DOC, re.S)
    found = [block for block in blocks if block.lstrip().startswith(kind)]
    assert len(found) == 1, f"one {kind} diagram expected, found {len(found)}"
    return found[0]


def test_every_module_the_page_cites_exists() -> None:
    cited = set(re.findall(r"`(harness/[\w/]+(?:\.py)?)`", DOC))
    assert len(cited) > 20
    missing = sorted(path for path in cited if not (REPO / path).exists())
    assert not missing, f"docs/architecture.md cites modules that do not exist: {missing}"


def test_every_stage_package_is_on_the_map() -> None:
    packages = {p.parent.name for p in (REPO / "harness").glob("*/__init__.py")}
    stages = _mermaid("flowchart")
    absent = sorted(name for name in packages if f"harness/{name}" not in stages)
    assert not absent, f"packages missing from the stage diagram: {absent}"
    tabled = sorted(name for name in packages if f"`harness/{name}/`" not in DOC)
    assert not tabled, f"packages missing from the stage table: {tabled}"


def test_the_state_diagram_has_every_board_state() -> None:
    diagram = _mermaid("stateDiagram")
    states = set(re.findall(r"(\w+) -->|--> (\w+)", diagram))
    named = {name for pair in states for name in pair if name}
    assert named - {"*"} == {state.value for state in BoardState}


def test_the_data_model_diagram_has_every_registry_table() -> None:
    diagram = _mermaid("erDiagram")
    pairs = re.findall(r"^\s+(\w+)(?:\s+\S+\s+(\w+))?", diagram, re.M)
    named = {name for pair in pairs for name in pair if name} - {"erDiagram"}
    assert named == set(metadata.tables)
