"""GPIO, SPI and CAN loopback fixtures in a board profile: good ones become one precert test
instance each, named after the fixture; malformed ones are refused by `harness check` with
exit 2 naming the file, the line and the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.model.board import load_board
from harness.model.expand import expand_plan
from harness.model.plan import load_plan

REPO = Path(__file__).resolve().parents[2]

BASE = """\
schema: 1
kind: board
name: demo-board
identity: {vendor: ACME, model: Pi-ish, revision: "1", soc: BCM2711, arch: aarch64, compatible: "acme,pi"}
inventory: {cpus: 4, memory_mib: 4096}
lab: {env: lab/acme.yaml}
fixtures:
"""

GOOD = """\
  gpio_loopbacks:
    - name: hdr-11-13
      output: {chip: gpiochip0, line: 17}
      input: {chip: pinctrl-bcm2711, line: 27}
  spi_loopbacks:
    - {name: spi0.0, device: /dev/spidev0.0, speed_hz: 500000}
  can_pairs:
    - {name: can0-can1, a: can0, b: can1, bitrate: 250000}
"""


def test_each_loopback_fixture_is_one_test_instance_named_after_it(tmp_path: Path) -> None:
    file = tmp_path / "board.yaml"
    file.write_text(BASE + GOOD)
    board = load_board(file)
    assert board.fixtures.spi_loopbacks[0].length == 32  # the default transfer size
    plan = expand_plan(load_plan(REPO / "testplans" / "precert.yaml"), board)
    instances = {test.id: test for test in plan.tests}
    assert instances["gpio-loopback[hdr-11-13]"].item["input"] == {
        "chip": "pinctrl-bcm2711",
        "line": 27,
    }
    assert instances["spi-loopback[spi0.0]"].item["device"] == "/dev/spidev0.0"
    assert instances["can-loopback[can0-can1]"].item["bitrate"] == 250000
    assert all(instances[i].blocker for i in instances if "loopback[" in i)


# (fixtures text, line of the error, field, words): one per rule a fixture must keep.
BAD = {
    "same-gpio-line": (
        "  gpio_loopbacks:\n    - name: p\n      output: {chip: gpiochip0, line: 3}\n"
        "      input: {chip: gpiochip0, line: 3}\n",
        9, "fixtures.gpio_loopbacks[0]", "the same line",
    ),
    "gpio-line-negative": (
        "  gpio_loopbacks:\n    - name: p\n      output: {chip: gpiochip0, line: -1}\n"
        "      input: {chip: gpiochip0, line: 3}\n",
        10, "fixtures.gpio_loopbacks[0].output.line", "greater than or equal to 0",
    ),
    "spi-not-spidev": (
        "  spi_loopbacks:\n    - {name: s, device: /dev/ttyS1}\n",
        9, "fixtures.spi_loopbacks[0].device", "spidev",
    ),
    "can-same-interface": (
        "  can_pairs:\n    - {name: c, a: can0, b: can0}\n",
        9, "fixtures.can_pairs[0]", "a and b are both 'can0'",
    ),
    "can-misspelt-key": (
        "  can_pairs:\n    - {name: c, a: can0, b: can1, bitrat: 500000}\n",
        9, "fixtures.can_pairs[0].bitrat", "not a known field",
    ),
    "duplicate-name": (
        "  can_pairs:\n    - {name: c, a: can0, b: can1}\n    - {name: c, a: can2, b: can3}\n",
        8, "fixtures.can_pairs", "name c given twice",
    ),
}  # fmt: skip


def test_malformed_loopback_fixtures_exit_2_naming_file_line_and_field(tmp_path: Path) -> None:
    files = {}
    for case, (text, *_rest) in BAD.items():
        files[case] = tmp_path / f"{case}.yaml"
        files[case].write_text(BASE + text)
    # One `harness check` for every file: it reports each bad file on a line of its own.
    result = subprocess.run(
        [sys.executable, "-m", "harness", "check", *map(str, files.values())],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    for case, (_text, line, field, words) in BAD.items():
        reported = [entry for entry in lines if f"{files[case]}:{line}" in entry]
        assert len(reported) == 1, (case, result.stderr)
        assert f"field '{field}'" in reported[0], (case, reported[0])
        assert words in reported[0], (case, reported[0])
