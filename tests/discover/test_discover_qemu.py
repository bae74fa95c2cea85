"""`harness board discover` on the QEMU x86_64 board: identity from its DMI table (which the
virtual lab fills from the profile), its
disk, interface, UARTs, watchdog and RTC, and a draft that `harness check` accepts and
that certifies the board."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.discover.discover_helpers import PRECERT, SMOKE, draft_of, harness, run_verdict

pytestmark = pytest.mark.qemu

INVENTORY_TESTS = "cpu-count or memory-size or block-devices or network-interfaces or serial-ports"


def test_qemu_x86_64_draft_reads_dmi_and_devices_and_certifies_the_board(
    qemu_board, tmp_path: Path
) -> None:
    board = qemu_board("qemu-x86_64")
    out = tmp_path / "pc.yaml"
    done = harness(
        "board", "discover", "--env", str(board.env_file), "--out", str(out), cwd=tmp_path
    )
    assert done.code == 0, done.stderr
    draft = draft_of(out)
    # The virtual lab gives the guest an SMBIOS table from the profile's identity.
    identity = board.profile.identity
    assert draft["identity"]["vendor"] == identity.vendor, "DMI sys_vendor"
    assert draft["identity"]["compatible"] == identity.compatible, "DMI product_name"
    assert draft["identity"]["revision"] == identity.revision, "DMI product_version"
    expected = board.profile.inventory
    inventory = draft["inventory"]
    assert inventory["cpus"] == expected.cpus
    assert inventory["memory_mib"] == expected.memory_mib, "MemTotal rounds up to the RAM fitted"
    assert inventory["block_devices"] == [{"name": "vda", "size_mib": 64}]
    assert inventory["network_interfaces"] == ["eth0"]
    assert (inventory["serial_ports"], inventory["watchdog"], inventory["rtc"]) == (2, True, True)

    assert harness("check", str(out), cwd=tmp_path).code == 0
    smoke, meta = run_verdict(out, SMOKE, tmp_path / "results")
    assert smoke.code == 0, smoke.stderr
    assert meta["verdict"] == "certified"
    precert, meta = run_verdict(out, PRECERT, tmp_path / "results", "-k", INVENTORY_TESTS)
    assert meta["counts"]["fail"] == 0 and meta["counts"]["error"] == 0, precert.stderr
    assert meta["counts"]["pass"] == 5
