"""Template tests expand once per profiled device, and plan parameters resolve plan < lab < CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.model.board import find_board
from harness.model.expand import expand_plan, parse_overrides
from harness.model.plan import load_plan

REPO = Path(__file__).resolve().parents[2]
PRECERT = REPO / "testplans" / "precert.yaml"


def _precert(board: str, **cli: str) -> dict[str, object]:
    profile = find_board(str(REPO / "boards" / f"{board}.yaml"))
    plan = expand_plan(load_plan(PRECERT), profile, cli)
    return {test.id: test for test in plan.tests}


def test_storage_template_has_one_instance_per_profiled_disk_with_its_own_title() -> None:
    tests = _precert("qemu-x86_64-mini")
    instances = sorted(test_id for test_id in tests if test_id.startswith("storage-rw["))
    assert instances == ["storage-rw[sda]", "storage-rw[vda]", "storage-rw[vdb]"]
    assert tests["storage-rw[vdb]"].title == "vdb keeps what is written to it"
    assert tests["storage-rw[vdb]"].item == {"name": "vdb", "size_mib": 48}
    assert "4 MiB of random data" in (tests["storage-rw[vdb]"].description or "")
    assert "storage-rw" not in tests, "the template itself is not run"


def test_fixture_templates_follow_the_lab_fixtures_of_each_board() -> None:
    assert "uart-loopback[ttyS1]" in _precert("qemu-x86_64")
    assert not any(test_id.startswith("uart-loopback") for test_id in _precert("qemu-x86_64-mini"))
    link = _precert("qemu-x86_64")["network-link[eth0]"]
    assert link.steps[0].run is not None and "/sys/class/net/eth0/carrier" in link.steps[0].run


def test_precert_on_the_x86_board_has_at_least_45_tests_counting_each_device_instance() -> None:
    tests = _precert("qemu-x86_64")
    assert len(tests) >= 45, sorted(tests)
    per_device = sorted(test_id for test_id in tests if "[" in test_id)
    assert per_device == [
        "network-address[eth0]", "network-address[eth1]",
        "network-link[eth0]", "network-link[eth1]",
        "network-ping[eth0]", "network-ping[eth1]",
        "network-transfer[eth0]", "network-transfer[eth1]",
        "storage-rw[sda]", "storage-rw[vda]", "storage-rw[vdb]",
        "uart-loopback[ttyS1]",
        "usb-storage[sda]",
    ]  # fmt: skip


def test_a_template_over_one_field_of_a_list_has_instances_only_for_items_that_have_it(
    tmp_path: Path,
) -> None:
    """`usb_devices[*].block_device`: a USB disk is an instance, a hub (no disk) is not."""
    source = (REPO / "boards" / "qemu-x86_64.yaml").read_text()
    lab = tmp_path / "lab-board.yaml"
    lab.write_text(
        source.replace(
            "    - {kind: mass-storage, block_device: sda}\n",
            "    - {kind: hub}\n    - {kind: mass-storage, block_device: sdb}\n"
            "    - {kind: mass-storage, block_device: sda}\n",
        )
    )
    plan = expand_plan(load_plan(PRECERT), find_board(str(lab)))
    usb = [test for test in plan.tests if test.id.startswith("usb-storage")]
    assert [test.id for test in usb] == ["usb-storage[sdb]", "usb-storage[sda]"]
    assert (
        usb[0].item == "sdb"
        and usb[0].title == "USB disk sdb is on USB and reads back the same twice"
    )


def test_each_interface_reaches_the_lab_host_at_its_own_address_where_the_profile_says_so() -> None:
    peer = find_board(str(REPO / "boards" / "qemu-x86_64.yaml")).fixtures.network_peer
    assert peer is not None
    assert (peer.address_for("eth0"), peer.address_for("eth1")) == ("10.0.2.2", "10.0.3.2")


def test_parameters_default_then_lab_then_command_line(tmp_path: Path) -> None:
    source = (REPO / "boards" / "qemu-x86_64.yaml").read_text()
    lab = tmp_path / "lab-board.yaml"
    lab.write_text(source + "parameters: {warm_reboots: 5, storage_mib: 16, other_plan: 1}\n")
    profile = find_board(str(lab))
    plan = expand_plan(load_plan(PRECERT), profile, parse_overrides(["warm_reboots=7"]))
    assert plan.parameters["warm_reboots"] == 7, "the command line wins"
    assert plan.parameters["storage_mib"] == 16, "the lab's value beats the plan default"
    assert plan.parameters["power_cycles"] == 1, "plan default"
    assert "other_plan" not in plan.parameters
    assert plan.test("reboot-warm").params["warm_reboots"] == 7


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["warm_reboot=2"], "has no parameter 'warm_reboot'"),
        (["warm_reboots=many"], "must be a number"),
        (["warm_reboots"], "expected NAME=VALUE"),
    ],
)
def test_bad_parameter_on_the_command_line_is_named(pairs: list[str], message: str) -> None:
    profile = find_board(str(REPO / "boards" / "qemu-x86_64.yaml"))
    with pytest.raises(UserError, match=message):
        expand_plan(load_plan(PRECERT), profile, parse_overrides(pairs))
