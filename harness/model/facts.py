"""What the harness discovers on a running board ("facts").

The profile says what a healthy unit *should* have; facts say what this unit
*has*. Both are visible to `requires` expressions and to `${...}` references
in expectations, so the field names here are part of the plan language and
are checked when a plan is loaded. Every field may be None: discovery on an
odd board must degrade to "unknown", never crash the run.

`InventoryRecord` is the run folder's inventory.json: the facts beside what the profile
promised, the running kernel's identity and how long the device set took to settle.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.model.board import Inventory


class BlockDeviceFact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    size_mib: int | None = None
    removable: bool | None = None


class UsbDeviceFact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor_id: str | None = None
    product_id: str | None = None
    kind: str | None = None
    block_device: str | None = None  # the disk a mass-storage device shows as (sda)


class Facts(BaseModel):
    """Discovered once per run (and again after a reboot); serialised into inventory.json."""

    model_config = ConfigDict(extra="forbid")

    kernel_release: str | None = None
    kernel_version: str | None = None
    arch: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    hostname: str | None = None
    cpus: int | None = None
    memory_mib: int | None = None
    block_devices: list[BlockDeviceFact] = []
    network_interfaces: list[str] = []
    usb_devices: list[UsbDeviceFact] = []
    serial_ports: int | None = None
    watchdog: bool | None = None
    rtc: bool | None = None
    cpufreq: bool | None = None
    thermal_zones: int | None = None
    boot_id: str | None = None


class SettleRecord(BaseModel):
    """How the device set settled after the last boot (harness/lab/settle.py SettleReport)."""

    model_config = ConfigDict(extra="forbid")

    settled: bool
    seconds: float
    looks: int
    missing: list[str]


class InventoryRecord(BaseModel):
    """inventory.json, written by the run session each time facts are discovered.

    One model for the file so the engine and every tool that makes run folders (the
    registry and bundle tests among them) write the same keys.
    """

    model_config = ConfigDict(extra="forbid")

    facts: Facts
    profile: Inventory = Field(
        description="what the profile promised, so a report of the folder (or its bundle) "
        "can set the unit against it without the profile file"
    )
    kernel: dict[str, Any] = Field(
        description="the running kernel's identity (harness/lab/kernel_identity.py)"
    )
    collected_at: str
    settle: SettleRecord | None = Field(
        description="how long the device set took to stop changing after the last boot; "
        "null when the board link does not wait for it"
    )
