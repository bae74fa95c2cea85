"""The registry's read-only web page, driven in headless Chromium against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.registry.store import LOCAL_ADMIN
from tests.browser import headless_chromium

pytestmark = pytest.mark.browser

HOSTILE_VENDOR = '<img src=x onerror="window.__pwned=1">Evil & Co'
HOSTILE_RELEASE = "<script>window.__pwned=2</script>{{ 7*7 }}"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with headless_chromium(tmp_path / "chromium-profile", implicit_wait=5) as driver:
        yield driver


def _ask(driver) -> None:
    """Submit the form and wait until the new page replaced the old one (a readiness wait)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old_page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, "ask").click()

    def old_page_gone(_driver: object) -> bool:
        # Chromium reports a replaced document either as a stale element or, while the new
        # page is still loading, as "Node with given id does not belong to the document".
        try:
            old_page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    WebDriverWait(driver, 30).until(old_page_gone)


def _no_script_ran(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    assert driver.execute_script("return window.__pwned === undefined")
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - raises when no alert is open


def test_boards_page_and_eligibility_form_show_answers_with_reasons(
    browser, db_url, store, lab, make_bundle_bytes, start_server
) -> None:
    from selenium.webdriver.common.by import By

    store.submit_bundle(make_bundle_bytes("run-good", revision="A1", os_release="Debian 12"), lab)
    revoked = store.submit_bundle(
        make_bundle_bytes("run-bad", revision="A1", os_release="Debian 11"), lab
    )
    store.revoke_certificate(revoked["certificate_id"], "evidence <b>faked</b>", LOCAL_ADMIN)
    store.submit_bundle(
        make_bundle_bytes(
            "run-evil", vendor=HOSTILE_VENDOR, model="EV-1", os_release=HOSTILE_RELEASE
        ),
        lab,
    )
    store.register_board("Quiet Boards", "QB-2", "QSoC", ["R1"], LOCAL_ADMIN)
    server = start_server(db_url)

    browser.get(server.url + "/")
    rows = {
        (r.find_element(By.CLASS_NAME, "vendor").text, r.find_element(By.CLASS_NAME, "model").text, r.find_element(By.CLASS_NAME, "revision").text):
        r.find_element(By.CLASS_NAME, "status").text
        for r in browser.find_elements(By.CLASS_NAME, "board-row")
    }  # fmt: skip
    assert rows[("Acme Boards", "AB-100", "A1")] == "certified: Debian 12"
    assert rows[("Quiet Boards", "QB-2", "R1")] == "not certified"
    assert rows[(HOSTILE_VENDOR, "EV-1", "A1")] == f"certified: {HOSTILE_RELEASE}"
    _no_script_ran(browser)

    browser.find_element(By.LINK_TEXT, "Eligibility").click()
    browser.find_element(By.ID, "eligibility-form")
    for field, value in (("vendor", "Acme Boards"), ("model", "AB-100"), ("revision", "A1"),
                         ("os_release", "Debian 11"), ("kernel_release", "6.1.0-27-arm64")):  # fmt: skip
        browser.find_element(By.ID, field).send_keys(value)
    _ask(browser)
    assert browser.find_element(By.ID, "status").text == "not-eligible-related-certificate"
    skipped = [li.text for li in browser.find_elements(By.CLASS_NAME, "not-counted-item")]
    assert any("run-bad" in s and "evidence <b>faked</b>" in s for s in skipped), skipped
    assert any("run-good" in s and "OS release Debian 12, not Debian 11" in s for s in skipped), (
        skipped
    )

    os_field = browser.find_element(By.ID, "os_release")
    os_field.clear()
    os_field.send_keys("Debian 12")
    _ask(browser)
    assert browser.find_element(By.ID, "status").text == "eligible-certified"
    evidence = [li.text for li in browser.find_elements(By.CLASS_NAME, "evidence-item")]
    assert len(evidence) == 1 and "run run-good" in evidence[0]

    for field, value in (
        ("vendor", HOSTILE_VENDOR),
        ("model", "EV-1"),
        ("os_release", HOSTILE_RELEASE),
    ):
        element = browser.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    _ask(browser)
    assert browser.find_element(By.ID, "status").text == "eligible-certified"
    assert HOSTILE_VENDOR in browser.find_element(By.ID, "summary").text
    assert browser.find_element(By.ID, "vendor").get_attribute("value") == HOSTILE_VENDOR
    _no_script_ran(browser)

    browser.find_element(By.ID, "vendor").clear()
    _ask(browser)
    assert "vendor" in browser.find_element(By.ID, "missing").text
