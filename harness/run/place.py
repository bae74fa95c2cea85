"""A labgrid environment for a unit reserved on a coordinator (`harness run --place NAME`).

The place must already be acquired by the user (`labgrid-client -p NAME acquire`):
the harness never acquires or releases places itself, so a CI job's reservation
stays under the job's control. The environment has a RemotePlace resource (whose
exported resources labgrid binds to the drivers) and the console and power
drivers the Board facade uses; the coordinator comes from $LG_COORDINATOR.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from harness.errors import Location, UserError


def place_env_file(place: str, run_id: str) -> Path:
    coordinator = os.environ.get("LG_COORDINATOR")
    if not coordinator:
        raise UserError(
            "--place needs the coordinator address in $LG_COORDINATOR (e.g. 127.0.0.1:20408)",
            Location(field="--place"),
        )
    env = {
        "options": {"coordinator_address": coordinator},
        "targets": {
            "main": {
                "resources": {"RemotePlace": {"name": place}},
                "drivers": {"SerialDriver": {}},
            }
        },
    }
    folder = Path(tempfile.mkdtemp(prefix=f"harness-{run_id}-"))
    path = folder / "place-env.yaml"
    path.write_text(yaml.safe_dump(env, sort_keys=False), encoding="utf-8")
    return path
