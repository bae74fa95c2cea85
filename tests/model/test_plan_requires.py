"""The `requires` language: what a plan author writes decides applicability, safely and predictably."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.model.plan import check_name
from harness.model.requires import RequiresError, parse

SCOPE = {
    "board": {
        "identity": {"arch": "x86_64", "vendor": "ACME"},
        "inventory": {
            "watchdog": True,
            "rtc": False,
            "cpus": 4,
            "block_devices": [
                {"name": "mmcblk0", "size_mib": 30000},
                {"name": "sda", "size_mib": 16},
            ],
            "network_interfaces": ["eth0", "wlan0"],
            "usb_devices": [],
        },
        "boot": {"flow": "u-boot"},
    },
    "facts": {"kernel_release": "6.1.0-27-cloud-amd64", "cpus": 4, "memory_mib": None},
}

TRUE = [
    'board.inventory.watchdog and board.identity.arch == "x86_64"',
    'facts.kernel_release >= "6.1"',
    'facts.kernel_release < "6.10"',
    '"sda" in board.inventory.block_devices[*].name',
    '"nvme0n1" not in board.inventory.block_devices[*].name',
    "board.inventory.block_devices[0].size_mib > 1000",
    '"wlan0" in board.inventory.network_interfaces',
    'board.identity.arch in ["x86_64", "aarch64"]',
    "not board.inventory.rtc",
    "not board.inventory.usb_devices",
    'board.boot.flow == "u-boot" or board.inventory.cpus > 8',
    "(board.inventory.cpus == 4) and (facts.cpus == board.inventory.cpus)",
    "facts.memory_mib == null",
    "board.inventory.cpus >= 4.0",
]

FALSE = [
    'board.identity.arch == "aarch64"',
    'facts.kernel_release >= "6.2"',
    "board.inventory.rtc",
    "facts.memory_mib > 100",
    "facts.memory_mib",
    "board.inventory.cpus > 4 and board.inventory.watchdog",
    '"sdb" in board.inventory.block_devices[*].name',
    'board.inventory.cpus > "3"',
]


@pytest.mark.parametrize("text", TRUE)
def test_expression_that_holds_for_the_board_is_true(text: str) -> None:
    assert parse(text, check_name).evaluate(SCOPE) is True


@pytest.mark.parametrize("text", FALSE)
def test_expression_that_does_not_hold_or_lacks_a_fact_is_false(text: str) -> None:
    assert parse(text, check_name).evaluate(SCOPE) is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("board.inventory.watchdg", "unknown name 'board.inventory.watchdg'"),
        ("facts.kernel", "unknown name 'facts.kernel'"),
        ("os.system", "unknown name 'os'"),
        ("board.inventory.block_devices.name", "use board.inventory.block_devices[*].name"),
        ("board.identity.arch[0]", "is not a list"),
        ("board.identity.arch.x", "has no field 'x'"),
        ("__import__('os')", "has no calls"),
        ("board.inventory.cpus > 1 > 0", "cannot be chained"),
        ("board.inventory.cpus >", "expected a value"),
        ("(board.inventory.cpus", "expected ')'"),
        ("board.inventory.cpus ; 1", "unexpected character ';'"),
        ("", "empty expression"),
        ("board.inventory.block_devices[x]", "expected '*' or an index"),
    ],
)
def test_bad_expression_is_a_load_error_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(RequiresError) as error:
        parse(text, check_name)
    assert message in str(error.value)


def test_error_points_at_the_column_of_the_unknown_name() -> None:
    with pytest.raises(RequiresError) as error:
        parse('board.identity.arch == "x" and facts.nope', check_name)
    assert error.value.column == 32


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abfrd.()[]*=!<> \"'01naotix_,")), max_size=40))
def test_any_input_either_parses_or_raises_requires_error_never_something_else(text: str) -> None:
    try:
        expr = parse(text, check_name)
    except RequiresError:
        return
    assert isinstance(expr.evaluate(SCOPE), bool)
