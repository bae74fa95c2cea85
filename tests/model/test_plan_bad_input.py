"""Malformed plans: `harness check` and `harness run` both exit 2 with file, line and field, no traceback.

Each case marks the offending line with `# <-`; the test derives the expected line
number from that marker, so the table stays readable and cannot drift.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli import main

REPO = Path(__file__).resolve().parents[2]
BOARD = REPO / "boards" / "qemu-x86_64.yaml"

HEAD = 'kind: plan\nid: bad\nversion: "1"\ntitle: Bad plan\n'


def plan(body: str) -> str:
    return HEAD + textwrap.dedent(body)


ONE_TEST = """\
tests:
  - id: t1
    title: one
    category: console
    steps:
      - run: "true"
"""

# (case id, file text, expected field (dotted, as printed), expected words in the message)
CASES = [
    (
        "missing-steps",
        plan("tests:\n  - id: t1  # <-\n    title: x\n    category: c\n"),
        "tests[0].steps",
        "required",
    ),
    (
        "unknown-test-key",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    expct: {}  # <-\n    steps: [{run: ls}]\n"
        ),
        "tests[0].expct",
        "not a known field",
    ),
    (
        "numeric-version",
        "kind: plan\nid: bad\nversion: 1.10  # <-\ntitle: t\n",
        "version",
        "quoted string",
    ),
    (
        "two-actions",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    steps:\n      - run: ls  # <-\n        reboot: {}\n"
        ),
        "tests[0].steps[0]",
        "exactly one of",
    ),
    (
        "no-action",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    steps:\n      - transport: ssh  # <-\n"
        ),
        "tests[0].steps[0]",
        "exactly one of",
    ),
    (
        "bad-regex",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    steps:\n      - run: ls\n        expect:\n          stdout: ['(unclosed']  # <-\n"
        ),
        "tests[0].steps[0].expect.stdout",
        "invalid regular expression",
    ),
    (
        "requires-unknown-name",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    requires: board.inventory.watchdg  # <-\n    steps: [{run: ls}]\n"
        ),
        "tests[0].requires",
        "unknown name 'board.inventory.watchdg'",
    ),
    (
        "requires-syntax",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    requires: board.identity.arch ==  # <-\n    steps: [{run: ls}]\n"
        ),
        "tests[0].requires",
        "expected a value",
    ),
    (
        "requires-python-call",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    requires: __import__('os').system('id')  # <-\n    steps: [{run: ls}]\n"
        ),
        "tests[0].requires",
        "has no calls",
    ),
    (
        "compare-unknown-reference",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    steps:\n      - run: nproc\n        expect:\n          compare:\n            - {name: cpus, regex: '(\\d+)', value: '${board.inventory.cpu}', unit: n}  # <-\n"
        ),
        "tests[0].steps[0].expect.compare[0].value",
        "unknown name 'board.inventory.cpu'",
    ),
    (
        "bad-tolerance",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    steps:\n      - run: nproc\n        expect:\n          compare:\n            - {name: cpus, regex: '(\\d+)', value: 2, tolerance: lots, unit: n}  # <-\n"
        ),
        "tests[0].steps[0].expect.compare[0].tolerance",
        "percentage",
    ),
    (
        "duplicate-test-id",
        plan(
            ONE_TEST
            + "  - id: t1  # <-\n    title: again\n    category: console\n    steps: [{run: ls}]\n"
        ),
        "tests[1].id",
        "duplicate test id 't1'",
    ),
    (
        "waiver-unknown-test",
        plan(
            ONE_TEST
            + "waivers:\n  - test: nosuch  # <-\n    reason: known issue\n    expires: 2030-01-01\n"
        ),
        "waivers[0].test",
        "unknown test id 'nosuch'",
    ),
    (
        "waiver-bad-date",
        plan(
            ONE_TEST
            + "waivers:\n  - test: t1\n    reason: known issue\n    expires: someday  # <-\n"
        ),
        "waivers[0].expires",
        "date",
    ),
    (
        "python-step-missing-module",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    steps:\n      - python: no_such_module_h4:check  # <-\n"
        ),
        "tests[0].steps[0].python",
        "no module named 'no_such_module_h4'",
    ),
    (
        "put-missing-file",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    steps:\n      - put: {local: nothere.bin, remote: /tmp/x}  # <-\n"
        ),
        "tests[0].steps[0].put.local",
        "not found",
    ),
    (
        "negative-timeout",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    timeout: -5  # <-\n    steps: [{run: ls}]\n"
        ),
        "tests[0].timeout",
        "greater than 0",
    ),
    (
        "unknown-transport",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    transport: telnet  # <-\n    steps: [{run: ls}]\n"
        ),
        "tests[0].transport",
        "console",
    ),
    (
        "bad-test-id",
        plan(
            "tests:\n  - id: Bad Id  # <-\n    title: x\n    category: c\n    steps: [{run: ls}]\n"
        ),
        "tests[0].id",
        "pattern",
    ),
    (
        "expect-on-reboot",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    steps:\n      - reboot: {}  # <-\n        expect: {exit_status: 0}\n"
        ),
        "tests[0].steps[0]",
        "apply to 'run' steps only",
    ),
    (
        "duplicate-yaml-key",
        plan(
            "tests:\n  - id: t1\n    title: x\n    title: y  # <-\n    category: c\n    steps: [{run: ls}]\n"
        ),
        "tests[0].title",
        "duplicate key",
    ),
    ("wrong-kind", 'kind: plans  # <-\nid: bad\nversion: "1"\ntitle: t\n', "kind", "plan"),
    (
        "manual-without-question",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    steps:\n      - manual:  # <-\n          instructions: look at the LED\n"
        ),
        "tests[0].steps[0].manual.verify",
        "required",
    ),
    (
        "manual-with-expect",
        plan(
            "tests:\n  - id: t1\n    title: x\n    category: c\n    steps:\n      - manual: {instructions: look, verify: green?}  # <-\n        expect: {exit_status: 0}\n"
        ),
        "tests[0].steps[0]",
        "'run' steps only",
    ),
]


def _write(tmp_path: Path, name: str, text: str) -> tuple[Path, int]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(number for number, row in enumerate(text.splitlines(), 1) if "# <-" in row)
    return path, line


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0), capsys.readouterr().err


def _assert_names_file_line_field(
    message: str, path: Path, line: int, field: str, words: str
) -> None:
    assert f"{path}:{line}" in message, message
    assert f"field '{field}'" in message, message
    assert words in message, message
    assert "Traceback" not in message
    assert len(message.strip().splitlines()) == 1, "one paragraph"


@pytest.mark.parametrize(("name", "text", "field", "words"), CASES, ids=[case[0] for case in CASES])
def test_malformed_plan_is_rejected_by_check_with_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, field: str, words: str
) -> None:
    path, line = _write(tmp_path, name, text)
    code, err = _run_cli(["check", str(path)], capsys)
    assert code == 2
    _assert_names_file_line_field(err, path, line, field, words)


@pytest.mark.parametrize(("name", "text", "field", "words"), CASES, ids=[case[0] for case in CASES])
def test_malformed_plan_is_rejected_by_run_before_any_board_starts(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    text: str,
    field: str,
    words: str,
) -> None:
    path, line = _write(tmp_path, name, text)
    monkeypatch.chdir(tmp_path)
    code, err = _run_cli(["run", "--board", str(BOARD), "--plan", str(path), "--no-submit"], capsys)
    assert code == 2
    _assert_names_file_line_field(err, path, line, field, words)
    assert not (tmp_path / "results").exists(), "nothing half-written"


def test_include_cycle_is_reported_at_the_include_that_closes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text(
        HEAD.replace("id: bad", "id: a") + "includes: [b.yaml]\n" + ONE_TEST
    )
    (tmp_path / "b.yaml").write_text(HEAD.replace("id: bad", "id: b") + "includes:\n  - a.yaml\n")
    code, err = _run_cli(["check", str(tmp_path / "a.yaml")], capsys)
    assert code == 2
    assert f"{tmp_path / 'b.yaml'}:6" in err
    assert "field 'includes[0]'" in err
    assert "include cycle: a.yaml -> b.yaml -> a.yaml" in err


def test_missing_include_names_the_include_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "top.yaml"
    path.write_text(HEAD + "includes:\n  - common/base.yaml\n" + ONE_TEST)
    code, err = _run_cli(["check", str(path)], capsys)
    assert code == 2
    assert f"{path}:6, field 'includes[0]'" in err
    assert "included plan 'common/base.yaml' not found" in err


def test_bad_plan_through_the_real_command_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    path, line = _write(tmp_path, "bad", CASES[6][1])
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--board", str(BOARD), "--plan", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,  # a bound for a hang only (a loaded host starts Python slowly)
    )
    assert done.returncode == 2
    assert f"{path}:{line}, field 'tests[0].requires'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()
