"""Suite-wide pytest configuration: the virtual-lab board fixtures (sim_board, qemu_board, ...)."""

from __future__ import annotations

import pytest

pytest_plugins = ["harness.vlab.fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness soak")
    group.addoption(
        "--long",
        action="store_true",
        help="tests/test_soak.py: run fault cycles for --soak-hours instead of the short CI set",
    )
    group.addoption("--soak-hours", type=float, default=4.0, help="length of a --long soak")
    group.addoption("--soak-seed", type=int, default=20261130, help="seed of the soak's draws")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A --long soak runs for hours: lift the suite's per-test timeout for it alone."""
    if not config.getoption("--long"):
        return
    budget = int(config.getoption("--soak-hours") * 3600) + 1800
    for item in items:
        if item.nodeid.startswith("tests/test_soak.py"):
            item.add_marker(pytest.mark.timeout(budget), append=False)  # before the test's own
