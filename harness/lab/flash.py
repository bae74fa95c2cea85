"""Deploying an OS image on a physical unit through labgrid's own flashing drivers.

`harness certify --image FILE` on a unit in a lab writes the image to the unit's boot medium
the way a lab engineer would with labgrid: a `USBStorageDriver` bound to the medium as the
lab host sees it (an SD-mux, an SDWire, a USB mass-storage device, local or exported by a
labgrid exporter), and the switch that hands the medium over (`USBSDMuxDriver`,
`USBSDWireDriver`, `USBSDWire3Driver`). With the unit's power off, the switch gives the medium
to the host, labgrid writes the image (its own `write_image`: dd, or bmaptool when a .bmap
file lies next to the image), the switch gives it back, and the unit is powered on, so the
run's first login is on the image just written.

The harness adds nothing to labgrid's drivers; it only checks, before anything is touched,
that the environment has what this needs, and says what is missing (exit 2) otherwise:
a storage driver, a switch, and a power driver the harness can drive (without one, the unit
would go on running the OS it booted before the medium was rewritten).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InfraError, Location, UserError

STORAGE_DRIVER = "USBStorageDriver"
SWITCH_DRIVERS = ("USBSDMuxDriver", "USBSDWireDriver", "USBSDWire3Driver")
MANUAL_POWER = "ManualPowerDriver"


@dataclass(frozen=True)
class Flasher:
    """The drivers of one target that deploy an image: labgrid class names."""

    storage: str
    switch: str
    power: str

    def describe(self) -> str:
        return f"labgrid {self.storage} via {self.switch}, power by {self.power}"


def _target(env_file: Path, target: str) -> tuple[Any, Any]:
    from labgrid import Environment

    try:
        env = Environment(str(env_file))
        found = env.get_target(target)
    except Exception as exc:  # labgrid reports bad files with many exception types
        raise UserError(
            f"not a usable labgrid environment: {exc}", Location(str(env_file), None, "--env")
        ) from None
    if found is None:
        raise UserError(
            f"no target {target!r} in the labgrid environment",
            Location(str(env_file), None, f"targets.{target}"),
        )
    return env, found


def _flasher_of(target: Any, env_file: Path, name: str) -> Flasher:
    from labgrid.protocol import PowerProtocol

    classes = [type(driver).__name__ for driver in target.drivers]
    power = next((type(d).__name__ for d in target.drivers if isinstance(d, PowerProtocol)), None)
    switch = next((cls for cls in SWITCH_DRIVERS if cls in classes), None)
    where = Location(str(env_file), None, f"targets.{name}.drivers")
    missing = []
    if STORAGE_DRIVER not in classes:
        missing.append(
            f"a {STORAGE_DRIVER} (bound to a USBSDMuxDevice, USBSDWireDevice or USBMassStorage "
            "resource, or its Network… form on an exporter) to write the image"
        )
    if switch is None:
        missing.append(f"a switch driver ({', '.join(SWITCH_DRIVERS)}) to hand the medium over")
    if power is None:
        missing.append(
            "a power driver, so the unit boots the image written (NetworkPowerDriver, "
            "ExternalPowerDriver, PDUDaemonDriver, …)"
        )
    elif power == MANUAL_POWER and not sys.stdin.isatty():
        missing.append(
            "a power driver the harness can drive: ManualPowerDriver asks a person, and this "
            "run has no terminal"
        )
    if missing:
        raise UserError(
            f"--image needs labgrid's flashing drivers on target {name!r}, and it lacks "
            + "; ".join(missing)
            + " (deploy the image yourself and run without --image, which records what is "
            "installed)",
            where,
        )
    assert switch is not None and power is not None
    return Flasher(STORAGE_DRIVER, switch, power)


def check_flashing(env_file: Path, target: str) -> Flasher:
    """The drivers that will deploy the image; a UserError (exit 2) naming what is missing."""
    env, found = _target(env_file, target)
    try:
        return _flasher_of(found, env_file, target)
    finally:
        env.cleanup()


def flash_image(env_file: Path, target: str, image: Path) -> Flasher:
    """Write `image` to the unit's boot medium and power the unit on (see the module docstring)."""
    env, found = _target(env_file, target)
    try:
        flasher = _flasher_of(found, env_file, target)
        try:
            power = found.get_driver("PowerProtocol")
            storage = found.get_driver(flasher.storage)
            switch = found.get_driver(flasher.switch)
        except Exception as exc:  # labgrid: a resource not plugged in, an exporter not reachable
            raise InfraError(
                f"cannot reach the flashing hardware of target {target!r} in {env_file}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        try:
            power.off()
            switch.set_mode("host")
            storage.write_image(str(image))
            switch.set_mode("dut")
            power.on()
        except Exception as exc:  # labgrid's ExecutionError, dd/bmaptool failures, a lost mux
            raise InfraError(
                f"flashing {image.name} onto target {target!r} failed "
                f"({flasher.describe()}): {type(exc).__name__}: {exc}"
            ) from None
        return flasher
    finally:
        env.cleanup()
