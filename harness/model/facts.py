"""What the harness discovers on a running board ("facts").

The profile says what a healthy unit *should* have; facts say what this unit
*has*. Both are visible to `requires` expressions and to `${...}` references
in expectations, so the field names here are part of the plan language and
are checked when a plan is loaded. Every field may be None: discovery on an
odd board must degrade to "unknown", never crash the run.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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
