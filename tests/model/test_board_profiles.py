"""Board profiles: the shipped ones load, and every malformed one is rejected with file, line and field."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.model.board import find_board, load_board

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "boards").glob("*.yaml"))

GOOD = textwrap.dedent(
    """\
    schema: 1
    kind: board
    name: demo-board
    identity:
      vendor: ACME
      model: Pi-ish
      revision: "1.2"
      soc: BCM2711
      arch: aarch64
      compatible: acme,pi-ish
    console:
      baud: 115200
      password: secret
    inventory:
      cpus: 4
      memory_mib: 4096
      block_devices:
        - {name: mmcblk0, size_mib: 30000}
    lab:
      env: lab/acme.yaml
    """
)


def run_check(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "check", *map(str, files)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


@pytest.mark.parametrize("profile", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_board_profile_is_valid(profile: Path) -> None:
    board = load_board(profile)
    assert board.name == profile.stem
    assert board.lab.virtual is not None
    assert len(board.sha256 or "") == 64


def test_shipped_boards_cover_direct_and_u_boot_on_both_architectures() -> None:
    boards = [load_board(p) for p in SHIPPED]
    assert {(b.identity.arch, b.boot.flow) for b in boards} >= {
        ("x86_64", "direct"),
        ("aarch64", "u-boot"),
    }
    assert len(boards) >= 3


def test_a_valid_profile_checks_ok(tmp_path: Path) -> None:
    file = tmp_path / "good.yaml"
    file.write_text(GOOD)
    result = run_check(file)
    assert result.returncode == 0, result.stderr
    assert f"ok: {file}" in result.stdout


# (description, text replacement on GOOD, expected line, expected field, words in the message)
BAD_PROFILES = [
    (
        "unknown key",
        ("  baud: 115200\n", "  baud: 115200\n  buad: 9600\n"),
        13,
        "console.buad",
        "not a known field",
    ),
    ("baud not a number", ("baud: 115200", "baud: fast"), 12, "console.baud", "integer"),
    ("negative baud", ("baud: 115200", "baud: -5"), 12, "console.baud", "greater than 0"),
    ("unknown arch", ("arch: aarch64", "arch: sparc"), 9, "identity.arch", "sparc"),
    ("missing vendor", ("  vendor: ACME\n", ""), 4, "identity.vendor", "required"),
    ("bad name", ("name: demo-board", "name: Demo Board!"), 3, "name", "pattern"),
    ("cpus zero", ("cpus: 4", "cpus: 0"), 15, "inventory.cpus", "greater than 0"),
    (
        "block device without name",
        ("{name: mmcblk0, size_mib: 30000}", "{size_mib: 30000}"),
        18,
        "inventory.block_devices[0].name",
        "required",
    ),
    (
        "two ways to reach",
        ("  env: lab/acme.yaml\n", "  env: lab/acme.yaml\n  place: rpi-07\n"),
        19,
        "lab",
        "exactly one",
    ),
    ("no way to reach", ("  env: lab/acme.yaml\n", "  target: main\n"), 19, "lab", "exactly one"),
    (
        "duplicate key",
        ("  cpus: 4\n", "  cpus: 4\n  cpus: 8\n"),
        16,
        "inventory.cpus",
        "duplicate key",
    ),
    ("broken YAML", ("  cpus: 4\n", "  cpus: [4\n"), 16, "", "invalid YAML"),
    ("list mixed with mapping", ("schema: 1\n", "- schema: 1\n"), 2, "", "YAML"),
]


@pytest.mark.parametrize(
    "replace,line,field,words",
    [case[1:] for case in BAD_PROFILES],
    ids=[case[0] for case in BAD_PROFILES],
)
def test_malformed_profile_is_rejected_with_file_line_and_field(
    tmp_path: Path, replace: tuple[str, str], line: int, field: str, words: str
) -> None:
    old, new = replace
    assert old in GOOD
    file = tmp_path / "board.yaml"
    file.write_text(GOOD.replace(old, new, 1))
    result = run_check(file)
    assert result.returncode == 2
    message = result.stderr
    assert "Traceback" not in message
    assert f"{file}:{line}" in message, message
    if field:
        assert f"field '{field}'" in message, message
    assert words.lower() in message.lower(), message
    assert len(message.strip().splitlines()) == 1, "one paragraph, no dump"


def test_missing_file_is_bad_input_not_a_crash(tmp_path: Path) -> None:
    result = run_check(tmp_path / "nope.yaml")
    assert result.returncode == 2
    assert "file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_reports_every_bad_file_and_still_accepts_the_good_ones(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("cpus: 4", "cpus: many"))
    result = run_check(bad, good)
    assert result.returncode == 2
    assert f"ok: {good}" in result.stdout
    assert f"{bad}:15" in result.stderr


def test_board_can_be_named_instead_of_given_by_path() -> None:
    assert find_board("qemu-x86_64", REPO / "boards").identity.arch == "x86_64"


def test_unknown_board_name_lists_the_known_ones() -> None:
    with pytest.raises(UserError) as err:
        find_board("no-such-board", REPO / "boards")
    assert "qemu-x86_64" in str(err.value)


def test_a_profile_that_is_a_list_is_rejected_as_not_a_mapping(tmp_path: Path) -> None:
    file = tmp_path / "list.yaml"
    file.write_text("- kind: board\n- name: x\n")
    result = run_check(file)
    assert result.returncode == 2
    assert "missing 'kind'" in result.stderr or "mapping" in result.stderr


def test_an_impossible_date_anywhere_is_bad_input_with_its_line(tmp_path: Path) -> None:
    file = tmp_path / "board.yaml"
    file.write_text(GOOD.replace("  cpus: 4\n", "  cpus: 4\n  bought: 2026-02-30\n"))
    result = run_check(file)
    assert result.returncode == 2
    assert f"{file}:16" in result.stderr
    assert "2026-02-30" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_plan_given_as_a_board_profile_is_refused_naming_the_kind(tmp_path: Path) -> None:
    file = tmp_path / "board.yaml"
    file.write_text(GOOD.replace("kind: board", "kind: plan"))
    with pytest.raises(UserError) as err:
        load_board(file)
    assert f"{file}:2" in str(err.value)
    assert "expected kind 'board'" in str(err.value)
