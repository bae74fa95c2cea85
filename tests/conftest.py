"""Suite-wide pytest configuration: the virtual-lab board fixtures (sim_board, qemu_board, ...),
and the lab build done once before the first QEMU test.

Why the build happens here: the first `qemu` test would otherwise build the lab inside its
fixtures, under that one test's pytest timeout, so a slow download or a loaded host would
fail a test that is about something else. Building before the test loop gives the build its
own, generous bound; every `qemu` test then finds the cache filled. A run without `qemu`
tests (`-m 'not qemu'`) never builds.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_plugins = ["harness.vlab.fixtures"]

# A bound for a hang only: a cold build downloads ~150 MB of Debian packages.
LAB_BUILD_GUARD = 3600.0
_BUILD_FAILURE = pytest.StashKey[str]()


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
        config.stash[_BUILD_FAILURE] = f"`harness lab build` did not finish within {exc.timeout:.0f} s"
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
