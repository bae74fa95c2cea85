"""`harness check` validates labgrid environment files (a file with `targets:` and no `kind:`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

GOOD = """\
targets:
  main:
    resources:
      NetworkSerialPort: {host: 127.0.0.1, port: 4001, speed: 115200, protocol: raw}
      NetworkService: {address: 127.0.0.1, port: 2222, username: root}
    drivers:
      SerialDriver: {}
options:
  harness_lab_kind: qemu
"""


def _check(file: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(["check", str(file)])
    out = capsys.readouterr()
    return int(exited.value.code or 0), out.out + out.err


def test_a_usable_labgrid_environment_passes_harness_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env.yaml"
    env.write_text(GOOD)
    code, text = _check(env, capsys)
    assert code == 0, text
    assert f"ok: {env}" in text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("targets: {}\n", "needs a 'targets:' mapping"),
        ("targets:\n  main:\n    resources:\n      NoSuchResource: {}\n", "not a usable labgrid"),
        (
            GOOD.replace("SerialDriver: {}", "SerialDriver: {}\n      SerialDriver: {}"),
            "duplicate key",
        ),
    ],
    ids=["empty-targets", "unknown-resource", "duplicate-driver"],
)
def test_a_broken_labgrid_environment_exits_2_naming_the_file(
    text: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env.yaml"
    env.write_text(text)
    code, out = _check(env, capsys)
    assert code == 2, out
    assert str(env) in out and words in out
    assert "Traceback" not in out
