"""Headless Debian Chromium for the tests that check a page as a user's browser shows it.

One place for the flags, so the registry page and the run report are looked at by the same
browser; a machine without chromium and chromium-driver skips those tests.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def headless_chromium(profile_dir: Path, implicit_wait: float) -> Iterator[object]:
    """A selenium driver on Debian's chromium, quit afterwards; `implicit_wait` is how long
    element look-ups wait (0 for a file: page, which is whole once get() returns)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.skip("Debian chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile_dir}"):  # fmt: skip
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(implicit_wait)
    try:
        yield driver
    finally:
        driver.quit()
