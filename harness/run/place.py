"""A labgrid environment for a unit held on a coordinator (`harness run --place/--reserve`).

The place is held for the run by a keeper process (harness/farm/hold.py): it
reserves and acquires the place, and always releases it. A place the user
acquired beforehand (`labgrid-client -p NAME acquire`) is used as it is and
left acquired. The environment has a RemotePlace resource (whose exported
resources labgrid binds to the drivers), the serial console driver the Board
facade needs and, when the place exports a power switch labgrid knows, its
power driver, so recovery can power-cycle the unit. The coordinator comes from
$LG_COORDINATOR. SSH host keys of physical units are checked against the lab's
known_hosts ($HARNESS_SSH_KNOWN_HOSTS or ~/.ssh/known_hosts).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from harness.errors import Location, UserError
from harness.farm.address import coordinator_address

# Power resources a place can export -> the labgrid driver that switches them (as
# `labgrid-client power` pairs them). The first one found is used.
POWER_DRIVERS = {
    "NetworkPowerPort": "NetworkPowerDriver",
    "PDUDaemonPort": "PDUDaemonDriver",
    "NetworkUSBPowerPort": "USBPowerDriver",
    "NetworkSiSPMPowerPort": "SiSPMPowerDriver",
    "TasmotaPowerPort": "TasmotaPowerDriver",
    "NetworkYKUSHPowerPort": "YKUSHPowerDriver",
}


def require_coordinator(option: str) -> str:
    """$LG_COORDINATOR, which labgrid's RemotePlace reads too; exit 2 without it."""
    if not os.environ.get("LG_COORDINATOR"):
        raise UserError(
            f"{option} needs the coordinator address in $LG_COORDINATOR (e.g. 127.0.0.1:20408)",
            Location(field=option),
        )
    return coordinator_address()


def place_environment(place: str, resource_classes: set[str]) -> dict[str, object]:
    drivers: dict[str, object] = {"SerialDriver": {}}
    for resource, driver in POWER_DRIVERS.items():
        if resource in resource_classes:
            drivers[driver] = {}
            break
    return {
        "options": {"coordinator_address": coordinator_address()},
        "targets": {"main": {"resources": {"RemotePlace": {"name": place}}, "drivers": drivers}},
    }


@contextlib.contextmanager
def place_env_file(place: str, run_id: str, resource_classes: set[str]) -> Iterator[Path]:
    """A temporary environment file for `place`, removed when the run is over."""
    folder = Path(tempfile.mkdtemp(prefix=f"harness-{run_id}-"))
    try:
        path = folder / "place-env.yaml"
        env = place_environment(place, resource_classes)
        path.write_text(yaml.safe_dump(env, sort_keys=False), encoding="utf-8")
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
