"""Drafting a profile from what a unit reports (no board): identity sources, the inventory
as the checks compare it, and a comment wherever a person must decide."""

from __future__ import annotations

import yaml

from harness.discover.draft import Settings, draft_profile, fitted_memory, render
from harness.discover.probe import parse_probe
from harness.model.board import BoardProfile, Boot, Console, Inventory, Lab, Ssh
from harness.model.facts import BlockDeviceFact, Facts, UsbDeviceFact

PI_PROBE = """\
@dt_model Raspberry Pi 4 Model B Rev 1.4
@dt_compatible raspberrypi,4-model-b brcm,bcm2711
@uboot 2023.07.02
@cpu_hardware BCM2835
@cpu_revision d03114
@netdev eth0 hw 0x1003
@netdev wlan0 hw 0x1002
@netdev docker0 virtual 0x1003
"""
PI_FACTS = Facts(
    arch="aarch64",
    cpus=4,
    memory_mib=7812,
    block_devices=[
        BlockDeviceFact(name="mmcblk0", size_mib=30436, removable=False),
        BlockDeviceFact(name="sda", size_mib=14800, removable=True),
        BlockDeviceFact(name="mmcblk1", size_mib=0, removable=True),
    ],
    usb_devices=[
        UsbDeviceFact(vendor_id="1d6b", product_id="0003", kind="hub"),
        UsbDeviceFact(vendor_id="0781", product_id="5583", kind="mass-storage"),
    ],
    serial_ports=2,
    watchdog=True,
    rtc=False,
    kernel_release="6.6.31",
)
PC_PROBE = """\
@efi yes
@dmi_sys_vendor QEMU
@dmi_product_name Standard PC (Q35 + ICH9, 2009)
@dmi_product_version To be filled by O.E.M.
@dmi_board_version Default string
@cpu_model QEMU Virtual CPU version 2.5+
@netdev eth0 hw 0x1003
"""


def _settings() -> Settings:
    used = BoardProfile.model_construct(
        name="unit",
        console=Console(password="secret"),
        ssh=Ssh(),
        boot=Boot(),
        inventory=Inventory.model_construct(),
        lab=Lab.model_construct(target="main"),
    )
    return Settings(used, 1500000, {"env": "lab/pi.yaml"}, "the environment", "SSH answered")


def test_device_tree_board_draft_takes_identity_from_dt_and_marks_vendor_revision_for_a_person() -> (
    None
):
    draft = draft_profile(None, parse_probe(PI_PROBE), PI_FACTS, _settings())
    text = render(draft, ["header"])
    profile = BoardProfile.model_validate(yaml.safe_load(text))
    assert profile.name == "raspberry-pi-4-model-b-rev-1.4"
    assert profile.identity.model == "Raspberry Pi 4 Model B Rev 1.4"
    assert profile.identity.compatible == "raspberrypi,4-model-b"
    assert profile.identity.soc == "brcm,bcm2711", "the SoC is the device tree's last compatible"
    assert profile.identity.revision == "d03114"
    assert profile.identity.vendor == "raspberrypi"
    assert profile.boot.flow == "u-boot", "the device tree's /chosen names U-Boot"
    assert profile.console.baud == 1500000, "the environment's serial port speed"
    assert profile.console.password == "secret", "the settings that logged in"
    for decided in ("identity.vendor", "identity.revision", "inventory.memory_mib"):
        assert any(line.startswith(decided) for line in draft.decide), draft.decide
    assert "  # DECIDE: the vendor's name as the certificate shows it" in text


def test_inventory_is_what_the_checks_compare_root_hubs_virtual_and_empty_devices_left_out() -> (
    None
):
    draft = draft_profile(None, parse_probe(PI_PROBE), PI_FACTS, _settings())
    inventory = BoardProfile.model_validate(yaml.safe_load(render(draft, []))).inventory
    assert inventory.cpus == 4
    assert inventory.memory_mib == 8192, "MemTotal 7812 MiB is an 8 GiB board"
    assert [(d.name, d.size_mib) for d in inventory.block_devices] == [
        ("mmcblk0", 30436),
        ("sda", 14800),
    ], "a card reader without a card is not a device a unit must show"
    assert inventory.network_interfaces == ["eth0"], "wlan0 is down, docker0 is not hardware"
    assert [(u.kind, u.vendor_id) for u in inventory.usb_devices] == [("mass-storage", "0781")]
    assert (inventory.serial_ports, inventory.watchdog, inventory.rtc) == (2, True, False)
    text = render(draft, [])
    assert "removable here: sda, mmcblk1" not in text  # mmcblk1 has no medium: not drafted
    assert "removable here: sda" in text
    assert "hardware interfaces that are down were left out: wlan0" in text
    assert "left out, not hardware: docker0" in text
    assert "left out, no medium: mmcblk1" in text


def test_pc_draft_takes_identity_from_dmi_and_ignores_placeholder_dmi_strings() -> None:
    facts = Facts(arch="x86_64", cpus=2, memory_mib=216)
    draft = draft_profile(None, parse_probe(PC_PROBE), facts, _settings())
    profile = BoardProfile.model_validate(yaml.safe_load(render(draft, [])))
    assert profile.identity.vendor == "QEMU"
    assert profile.identity.model == "Standard PC (Q35 + ICH9, 2009)"
    assert profile.identity.compatible == "Standard PC (Q35 + ICH9, 2009)"
    assert profile.identity.revision == "unknown", "firmware filler is not a revision"
    assert profile.identity.soc == "QEMU Virtual CPU version 2.5+"
    assert profile.inventory.memory_mib == 256
    assert any("EFI firmware" in line for line in draft.decide)


def test_memory_is_drafted_as_the_next_usual_size_that_precert_accepts() -> None:
    for memtotal, fitted in [(216, 256), (1900, 2048), (2900, 3072), (5800, 6144), (24105, 24576)]:
        assert fitted_memory(memtotal) == fitted
        # precert: MemTotal <= size (+1 %) and >= size - 30 %
        assert memtotal <= fitted and memtotal >= 0.7 * fitted
