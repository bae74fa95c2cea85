"""The labgrid environment file of a running virtual board.

Downstream stages only ever see labgrid targets, so a virtual board must be
described exactly like a bench in a real lab: a network serial port, an SSH
service and a power switch driven by a command. Facts labgrid has no resource
for (which profile the unit is, the SSH host key to pin, where the bench's
control socket and console log are) go under the file's top-level `options:`,
which labgrid keeps and exposes through `Environment.config.get_option()`.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.durable import write_atomic
from harness.vlab.state import BenchState, BoardFacts

# Option names under `options:`; readers should use these constants.
OPT_PROFILE = "harness_board_profile"
OPT_BOARD_NAME = "harness_board_name"
OPT_LAB_NAME = "harness_lab_name"
OPT_LAB_KIND = "harness_lab_kind"
OPT_SSH_HOST_KEY = "harness_ssh_host_key"
OPT_CONTROL = "harness_bench_control"
OPT_CONSOLE_LOG = "harness_console_log"


def power_command(lab_dir: Path, name: str, action: str) -> str:
    """The shell-quoted command labgrid's ExternalPowerDriver runs (it splits with shlex)."""
    argv = [
        sys.executable,
        "-m",
        "harness",
        "lab",
        "--lab-dir",
        str(lab_dir),
        "power",
        name,
        action,
    ]
    return shlex.join(argv)


def env_document(state: BenchState, facts: BoardFacts, lab_dir: Path) -> dict[str, Any]:
    service: dict[str, Any] = {
        "address": "127.0.0.1",
        "port": state.ssh_port,
        "username": facts.ssh_username,
    }
    if facts.ssh_password is not None:
        service["password"] = facts.ssh_password
    options: dict[str, Any] = {
        OPT_PROFILE: state.profile,
        OPT_BOARD_NAME: state.board,
        OPT_LAB_NAME: state.name,
        OPT_LAB_KIND: state.kind,
        OPT_CONTROL: state.control,
        OPT_CONSOLE_LOG: state.console_log,
    }
    if state.ssh_host_key:
        options[OPT_SSH_HOST_KEY] = state.ssh_host_key
    return {
        "targets": {
            "main": {
                "resources": {
                    "NetworkSerialPort": {
                        "host": "127.0.0.1",
                        "port": state.console_port,
                        "speed": facts.baud,
                        "protocol": "raw",
                    },
                    "NetworkService": service,
                },
                "drivers": {
                    "SerialDriver": {},
                    "ExternalPowerDriver": {
                        "cmd_on": power_command(lab_dir, state.name, "on"),
                        "cmd_off": power_command(lab_dir, state.name, "off"),
                        "cmd_cycle": power_command(lab_dir, state.name, "cycle"),
                    },
                },
            }
        },
        "options": options,
    }


def write_env_file(state: BenchState, facts: BoardFacts, lab_dir: Path) -> Path:
    """Write atomically, so a reader never loads half an environment."""
    path = Path(state.env_file)
    header = (
        f"# labgrid environment of virtual board '{state.name}' ({state.board}, {state.kind}).\n"
        "# Written by its bench; valid while `harness lab list` shows it.\n"
    )
    write_atomic(
        path,
        header + yaml.safe_dump(env_document(state, facts, lab_dir), sort_keys=False, width=4096),
        durable=False,
    )
    return path
