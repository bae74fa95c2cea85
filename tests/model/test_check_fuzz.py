"""Whatever file `harness check` is given, it ends in exit 0 or exit 2 naming the file: never a traceback.

Fuzzed through the real entry point (`harness.cli.main`, in-process, output
captured by click's CliRunner): board profiles, plans with waivers, customer
cases, labgrid environment files (each a valid document mutated by hypothesis, so most
examples are *nearly* valid and reach the deep checks), YAML built from its
own syntax (anchors, aliases, merge keys, flow and block nesting) and raw
bytes. Every example also proves that `harness check` wrote nothing: the
folder holding the file and the working directory are unchanged afterwards.
A SIGALRM bound turns a hang into a failure. Example counts are bounded so the
module runs in about a minute on a loaded 2-core machine (deadline=None: timing
deadlines are flaky there).
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from harness.cli import main
from tests.model.test_board_profiles import GOOD as GOOD_BOARD_TEXT
from tests.model.test_check_env_file import GOOD as GOOD_ENV_TEXT

REPO = Path(__file__).resolve().parents[2]
GOOD_PLAN = yaml.safe_load((REPO / "tests" / "run" / "plans" / "all-pass.yaml").read_text())
GOOD_PLAN["waivers"] = [
    {"test": "console-echo", "reason": "vendor erratum 12", "expires": "2030-01-01"},
    {"test": "sftp", "reason": "expired", "expires": "2001-01-01", "ticket": "LAB-1"},
]
GOOD_BOARD = yaml.safe_load(GOOD_BOARD_TEXT)
# Every part of a customer case (docs/case-format.md): steps of each phase, every signature part.
CASES = REPO / "testplans" / "cases"
CUSTOMER_LOG = "kernel-panic.customer.log"
GOOD_CASE = yaml.safe_load((CASES / "intermittent.yaml").read_text())
GOOD_CASE["setup"].append({"put": {"local": CUSTOMER_LOG, "remote": "/tmp/customer.log"}})
GOOD_CASE["signature"].update(crash=["panic"], timeout=True, customer_log=True)
GOOD_CASE["settings"].update(between="power-cycle", timeout=30)
GOOD_CASE["attachments"] = [{"file": CUSTOMER_LOG, "kind": "console"}]
GOOD_ENV = yaml.safe_load(GOOD_ENV_TEXT)

HANG_BOUND_S = 30  # one `harness check` of a small file takes milliseconds

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KEYS = [
    "kind", "id", "title", "version", "tests", "steps", "run", "expect", "waivers", "test",
    "reason", "expires", "ticket", "includes", "defaults", "timeout", "requires", "name",
    "identity", "console", "inventory", "lab", "env", "virtual", "place", "target", "targets",
    "main", "resources", "drivers", "NetworkSerialPort", "NetworkService", "SerialDriver",
    "ExternalPowerDriver", "options", "host", "port", "address", "cmd_on", "<<",
    "case", "customer_ref", "severity", "subsystem", "description", "summary", "seen_on",
    "setup", "trigger", "cleanup", "signature", "exit_status", "output", "crash",
    "customer_log", "match", "settings", "iterations", "between", "attachments", "file",
    "python", "put", "local", "remote",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            "x",
            "main",
            "plan",
            "board",
            "case",
            "2030-02-30",
            "2026-01-01",
            "127.0.0.1",
            "qemu",
            "ssh",
            "console",
            "${board.inventory.cpus}",
            "../../etc/passwd",
            "a:b",
            "\x00",
        ]
    ),
    st.text(max_size=16),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """`base` with a few of its values dropped, replaced or joined by unknown keys."""
    if draw(st.integers(0, 24)) == 0:
        return draw(values)
    if isinstance(base, dict):
        out: dict[Any, Any] = {}
        for key, value in base.items():
            roll = draw(st.integers(0, 24))
            if roll == 0:
                continue  # dropped
            out[key] = draw(values) if roll == 1 else draw(mutated(value))
        if draw(st.integers(0, 9)) == 0:
            out[draw(st.sampled_from(KEYS))] = draw(values)
        return out
    if isinstance(base, list):
        items = [draw(mutated(item)) for item in base if draw(st.integers(0, 24)) != 0]
        if items and draw(st.integers(0, 9)) == 0:
            items.append(items[0])  # a duplicate test id, waiver, block device...
        return items
    return base


# YAML from its own syntax: anchors, aliases, merge keys, tags, flow and block nesting.
yaml_tokens = st.lists(
    st.sampled_from(
        [
            "kind: plan\n",
            "kind: board\n",
            "kind: case\n",
            "targets:\n",
            "tests:\n",
            "  - ",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ", ",
            ": ",
            "&a ",
            "&b ",
            "*a",
            "*b",
            "<<: ",
            "!!str ",
            "!!python/name:os.system ",
            "!!binary ",
            "? ",
            "|\n  ",
            ">-\n  ",
            "'",
            '"',
            "\\",
            "#",
            "---\n",
            "...\n",
            "%YAML 1.1\n",
            "\t",
            "\n",
            "  ",
            "x",
            "1",
            "2026-02-30",
            "~",
            "\ufeff",
            "\x00",
            "\x85",
            "@",
            "`",
        ]
    ),
    max_size=40,
).map("".join)


@contextmanager
def hang_bound(seconds: int) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"harness check still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
    }


def harness_check(file: Path, content: bytes) -> tuple[int, str]:
    """Write `content` to `file`, run `harness check` on it in a fresh working directory."""
    file.write_bytes(content)
    before = _tree(file.parent)
    with tempfile.TemporaryDirectory() as cwd:
        old = os.getcwd()
        os.chdir(cwd)
        try:
            runner = CliRunner()
            with runner.isolation() as (out, err, _), hang_bound(HANG_BOUND_S):
                try:
                    main(["check", str(file)])
                    code = 0
                except SystemExit as exited:
                    code = int(exited.code or 0)
                text = out.getvalue().decode() + err.getvalue().decode()
        finally:
            os.chdir(old)
        assert os.listdir(cwd) == [], "harness check wrote into the working directory"
    assert _tree(file.parent) == before, "harness check changed the folder of its input"
    event(f"{file.stem}: exit {code}")
    assert code in (0, 2), text
    assert "Traceback" not in text
    if code == 0:
        assert f"ok: {file}" in text
    else:
        assert text.startswith(f"harness: {file}"), text
    return code, text


def _expect_line(code: int, text: str, file: Path) -> None:
    """A mapping at the top level: every refusal points at a line."""
    if code == 2:
        rest = text[len(f"harness: {file}") :]
        assert rest[:1] == ":" and rest[1:2].isdigit(), text


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as path:
        yield Path(path)


@settings(FUZZ, max_examples=60)
@given(document=mutated(GOOD_BOARD))
@example(document={**GOOD_BOARD, "kind": ["board"]})  # found by this test: was a TypeError
def test_fuzzed_board_profile_is_accepted_or_refused_with_file_and_line(
    folder: Path, document: Any
) -> None:
    file = folder / "board.yaml"
    code, text = harness_check(file, _dump(document))
    if isinstance(document, dict) and document.get("kind") == "board":
        _expect_line(code, text, file)


@settings(FUZZ, max_examples=60)
@given(document=mutated(GOOD_PLAN))
def test_fuzzed_plan_with_waivers_is_accepted_or_refused_with_file_and_line(
    folder: Path, document: Any
) -> None:
    file = folder / "plan.yaml"
    code, text = harness_check(file, _dump(document))
    if isinstance(document, dict) and document.get("kind") == "plan":
        _expect_line(code, text, file)


@settings(FUZZ, max_examples=60)
@given(document=mutated(GOOD_CASE))
@example(document=GOOD_CASE)  # the unmutated case is valid: exit 0
def test_fuzzed_customer_case_is_accepted_or_refused_with_file_and_line(
    folder: Path, document: Any
) -> None:
    """A case is untrusted input from a customer: the same promise, with its attachment beside it."""
    if not (folder / CUSTOMER_LOG).exists():
        (folder / CUSTOMER_LOG).write_bytes((CASES / CUSTOMER_LOG).read_bytes())
    file = folder / "case.yaml"
    code, text = harness_check(file, _dump(document))
    if isinstance(document, dict) and document.get("kind") == "case":
        _expect_line(code, text, file)
    if document == GOOD_CASE:
        assert code == 0, text


@settings(FUZZ, max_examples=40)
@given(document=mutated(GOOD_ENV))
def test_fuzzed_labgrid_env_file_is_accepted_or_refused_naming_the_file(
    folder: Path, document: Any
) -> None:
    harness_check(folder / "env.yaml", _dump(document))


@settings(FUZZ, max_examples=150)
@given(text=yaml_tokens)
def test_yaml_syntax_soup_is_accepted_or_refused_naming_the_file(folder: Path, text: str) -> None:
    harness_check(folder / "soup.yaml", text.encode("utf-8", "surrogatepass"))


@settings(FUZZ, max_examples=60)
@given(content=st.binary(max_size=200))
def test_raw_bytes_are_accepted_or_refused_naming_the_file(folder: Path, content: bytes) -> None:
    harness_check(folder / "raw.yaml", content)


@settings(FUZZ, max_examples=25)
@given(
    levels=st.integers(1, 12),
    fan=st.integers(2, 12),
    depth=st.integers(0, 120),
    merge=st.booleans(),
)
def test_generated_alias_bombs_and_nesting_are_refused_or_small(
    folder: Path, levels: int, fan: int, depth: int, merge: bool
) -> None:
    """Bombs of every shape: refused with a line, or small enough to load (then checked normally)."""
    lines = ["kind: plan", "id: bomb", "version: '1'", "title: bomb", "x0: &x0 [lol, lol]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*x{level - 1}"] * fan)
        if merge:
            lines.append(f"x{level}: &x{level} {{<<: [{refs}], k{level}: *x{level - 1}}}")
        else:
            lines.append(f"x{level}: &x{level} [{refs}]")
    lines.append("deep: " + "[" * depth + "]" * depth)
    file = folder / "bomb.yaml"
    code, text = harness_check(file, ("\n".join(lines) + "\n").encode())
    assert code == 2  # x0... are not plan fields, so even a small bomb is refused
    _expect_line(code, text, file)
