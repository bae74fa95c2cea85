"""Loading good plans: includes, defaults, waivers, fingerprints, and the shipped plans."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from harness.model.plan import load_plan

REPO = Path(__file__).resolve().parents[2]

BASE = """\
kind: plan
id: base
version: "1"
title: Base checks
defaults: {blocker: false, timeout: 5, transport: ssh}
tests:
  - id: base-one
    title: first
    category: console
    steps: [{run: "true"}]
"""

TOP = """\
kind: plan
id: top
version: "2.1"
title: Top plan
includes: [common/base.yaml]
tests:
  - id: top-one
    title: reboot and compare
    category: boot
    timeout: 300
    requires: board.inventory.watchdog
    steps:
      - reboot:
      - run: nproc
        expect:
          compare:
            - {name: cpus, regex: '(\\d+)', value: '${board.inventory.cpus}', tolerance: "10%", unit: count}
waivers:
  - {test: base-one, reason: known vendor erratum, expires: 2030-01-31}
"""


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "base.yaml").write_text(BASE)
    top = tmp_path / "top.yaml"
    top.write_text(TOP)
    return top


def test_included_tests_come_first_and_keep_their_own_defaults(tmp_path: Path) -> None:
    plan = load_plan(_tree(tmp_path))
    assert (plan.id, plan.version) == ("top", "2.1")
    assert [test.id for test in plan.tests] == ["base-one", "top-one"]
    base, top = plan.tests
    assert (base.blocker, base.timeout, base.transport) == (False, 5, "ssh")
    assert (top.blocker, top.timeout, top.transport) == (True, 300, "console")
    assert base.source == f"{tmp_path / 'common' / 'base.yaml'}:7"
    assert [step.kind for step in top.steps] == ["reboot", "run"]


def test_waiver_applies_until_and_including_its_expiry_date(tmp_path: Path) -> None:
    waiver = load_plan(_tree(tmp_path)).waiver_for("base-one")
    assert waiver is not None
    assert waiver.active_on(dt.date(2030, 1, 31))
    assert not waiver.active_on(dt.date(2030, 2, 1))


def test_plan_fingerprint_changes_when_an_included_file_changes(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    before = load_plan(top).sha256
    assert load_plan(top).sha256 == before
    (tmp_path / "common" / "base.yaml").write_text(BASE.replace("first", "first, renamed"))
    assert load_plan(top).sha256 != before


def test_shipped_precert_plan_covers_the_issue_checklist() -> None:
    plan = load_plan(REPO / "testplans" / "precert.yaml")
    assert (plan.id, plan.version) == ("precert", "1.0")
    ids = {test.id for test in plan.tests}
    assert {
        "console-login",
        "software-identity",
        "cpu-count",
        "memory-size",
        "block-devices",
        "network-interfaces",
        "usb-devices",
        "watchdog",
        "rtc-readable",
        "ssh-command",
        "sftp-roundtrip",
        "reboot",
        "dmesg-clean",
    } <= ids
    assert plan.test("usb-devices").requires == "board.inventory.usb_devices"
    assert plan.test("watchdog").requires == "board.inventory.watchdog"


def test_asking_a_plan_for_a_test_it_does_not_have_names_the_plan_and_its_tests() -> None:
    plan = load_plan(REPO / "testplans" / "smoke.yaml")
    with pytest.raises(KeyError) as caught:
        plan.test("wachdog")
    message = caught.value.args[0]
    assert message.startswith("plan 'smoke' has no test 'wachdog' (its tests: ")
    assert all(test.id in message for test in plan.tests)


def test_every_shipped_plan_loads() -> None:
    for path in sorted((REPO / "testplans").glob("*.yaml")):
        assert load_plan(path).tests, path
