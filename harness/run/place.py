"""A labgrid environment for a unit reserved on a coordinator (`harness run --place NAME`).

The place must already be acquired by the user (`labgrid-client -p NAME acquire`):
the harness never acquires or releases places itself, so a CI job's reservation
stays under the job's control. The environment has a RemotePlace resource (whose
exported resources labgrid binds to the drivers) and the serial console driver the
Board facade needs; the coordinator comes from $LG_COORDINATOR. SSH host keys
of physical units are checked against the lab's known_hosts ($HARNESS_SSH_KNOWN_HOSTS or
~/.ssh/known_hosts). A place exports no power-switch command in this environment, so
recovery that needs a power cycle reports an infrastructure error instead.
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


@contextlib.contextmanager
def place_env_file(place: str, run_id: str) -> Iterator[Path]:
    """A temporary environment file for `place`, removed when the run is over."""
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
    try:
        path = folder / "place-env.yaml"
        path.write_text(yaml.safe_dump(env, sort_keys=False), encoding="utf-8")
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
