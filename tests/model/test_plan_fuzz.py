"""Whatever a plan file contains, loading it ends in a Plan or a UserError with a location: never a crash."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import UserError
from harness.model.plan import load_plan

KEYS = [
    "id", "title", "category", "steps", "run", "reboot", "power-cycle", "put", "get", "python",
    "expect", "exit_status", "stdout", "stderr_absent", "compare", "value", "regex", "op", "unit",
    "tolerance", "requires", "timeout", "blocker", "transport", "measure", "name", "local", "remote",
    "random_bytes", "same_as_put", "includes", "waivers", "test", "reason", "expires",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "x",
            "ssh",
            "console",
            "(",
            "${board.inventory.cpus}",
            "10%",
            "a:b",
            "2030-01-01",
            "==",
            "",
        ]
    ),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)
tests = st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=6), max_size=3)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tests=tests,
    extra=st.dictionaries(st.sampled_from(["includes", "waivers", "defaults"]), values, max_size=2),
)
def test_any_plan_loads_or_is_rejected_with_file_and_line(
    tmp_path: Path, tests: list, extra: dict
) -> None:
    path = tmp_path / "fuzz.yaml"
    document = {
        "kind": "plan",
        "id": "fuzz",
        "version": "1",
        "title": "fuzz",
        "tests": tests,
        **extra,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        plan = load_plan(path)
    except UserError as error:
        assert error.location.file is not None
        assert error.location.line is not None, str(error)
        return
    assert [test.id for test in plan.tests] == [test["id"] for test in tests]
