"""Suite-wide pytest configuration: the virtual-lab board fixtures (sim_board, qemu_board, ...),
the lab build done once before the first QEMU test, a check that the `qemu` marker is
on every test that boots QEMU (so `-m 'not qemu'` is the fast suite), and how many
pytest-xdist workers share the machine.

Why the build happens here: the first `qemu` test would otherwise build the lab inside its
fixtures, under that one test's pytest timeout, so a slow download or a loaded host would
fail a test that is about something else. Building before the test loop gives the build its
own, generous bound; every `qemu` test then finds the cache filled. A run without `qemu`
tests (`-m 'not qemu'`) never builds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

pytest_plugins = ["harness.vlab.fixtures"]

# A bound for a hang only: a cold build downloads ~150 MB of Debian packages.
LAB_BUILD_GUARD = 3600.0
_BUILD_FAILURE = pytest.StashKey[str]()

# Most of the suite waits on boards, consoles, servers and child harnesses rather than
# computing, so two workers on a two-core machine take a third to a half off its wall time
# (measured: the fast subset 29.8 -> 15.8 min, the whole suite about an hour -> 38 min).
# More than four would only boot more TCG guests than the cores can run.
MAX_WORKERS = 4


# Fixtures that boot QEMU or need the built lab: a test using one must be marked `qemu`,
# or `-m 'not qemu'` would not be the fast suite the README promises.
QEMU_FIXTURES = frozenset({"qemu_board", "lab_artifacts"})


def _deliver_ctrl_c_to_harnesses() -> None:
    """Tests press Ctrl-C on harnesses they start (SIGINT). A suite started in the background
    by a shell without job control (`pytest &` in a script) inherits SIGINT ignored, and so
    would every harness it starts: the signal would vanish and such a test would hang until
    its guard. Handling SIGINT here again (Python's own handler) means children exec with the
    default disposition, as from a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_deliver_ctrl_c_to_harnesses()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's addopts): HARNESS_TEST_WORKERS if set, else the cores, 2 to 4."""
    chosen = os.environ.get("HARNESS_TEST_WORKERS")
    if chosen:
        return int(chosen)
    return max(2, min(os.cpu_count() or 1, MAX_WORKERS))


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
    """Refuse to run a suite whose `qemu` marker lies about a test; a --long soak runs for
    hours, so its per-test timeout is lifted for it alone."""
    unmarked = [
        f"{item.nodeid} (uses {', '.join(sorted(QEMU_FIXTURES & set(item.fixturenames)))})"
        for item in items
        if isinstance(item, pytest.Function)
        and QEMU_FIXTURES & set(item.fixturenames)
        and item.get_closest_marker("qemu") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests that boot QEMU or need the built lab must be marked qemu: " + "; ".join(unmarked)
        )
    _longest_files_first(items)
    if not config.getoption("--long"):
        return
    budget = int(config.getoption("--soak-hours") * 3600) + 1800
    for item in items:
        if item.nodeid.startswith("tests/test_soak.py"):
            item.add_marker(pytest.mark.timeout(budget), append=False)  # before the test's own


def _file_rank(markers: set[str]) -> int:
    """Files that boot QEMU and hold a `slow` test first, then other QEMU files, then slow
    files, then the rest."""
    return (0 if "qemu" in markers else 2) + (0 if "slow" in markers else 1)


def _longest_files_first(items: list[pytest.Item]) -> None:
    """Order whole files by how long they are likely to take, longest first.

    pytest-xdist (`--dist loadfile`) hands files to workers in collection order. A 10-minute
    file that comes last keeps one worker busy while the other idles; handed out first, the
    short files fill in beside it. Within a file, and within a rank, the order is unchanged.
    """
    markers: dict[str, set[str]] = {}
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        path = item.nodeid.split("::", 1)[0]
        first_seen.setdefault(path, index)
        markers.setdefault(path, set()).update(mark.name for mark in item.iter_markers())
    position = {id(item): index for index, item in enumerate(items)}

    def key(item: pytest.Item) -> tuple[int, int, int]:
        path = item.nodeid.split("::", 1)[0]
        return (_file_rank(markers[path]), first_seen[path], position[id(item)])

    items.sort(key=key)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the virtual lab (or find it cached) if any selected test boots QEMU or needs images."""
    config = session.config
    if config.option.collectonly or not any(i.get_closest_marker("qemu") for i in session.items):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("building the virtual lab for the qemu tests (cached after once)")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "harness", "lab", "build"],
            capture_output=True,
            text=True,
            timeout=LAB_BUILD_GUARD,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        config.stash[_BUILD_FAILURE] = (
            f"`harness lab build` did not finish within {exc.timeout:.0f} s"
        )
        return
    if done.returncode != 0:
        config.stash[_BUILD_FAILURE] = (
            f"`harness lab build` failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        )


@pytest.fixture(autouse=True)
def _lab_was_built(request: pytest.FixtureRequest) -> None:
    """A `qemu` test cannot run on a lab that failed to build: say why, once per test."""
    failure = request.config.stash.get(_BUILD_FAILURE, None)
    if failure is not None and request.node.get_closest_marker("qemu"):
        pytest.fail(failure, pytrace=False)
