"""labgrid environment files as labgrid users write them: `harness check` and `harness run --env`.

Several targets, `!template` with `$LG_*` variables, the usual serial ports and power
drivers: `harness check` validates them with labgrid's own loader and says what a run will
use; what cannot work is an exit-2 paragraph naming file, line and field.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
QUICK_PLAN = REPO / "tests" / "farm" / "plans" / "quick.yaml"

LAB = """\
targets:
  rpi:
    resources:
      USBSerialPort:
        match: {ID_SERIAL_SHORT: "A12345"}
        speed: 115200
      NetworkService: {address: !template "${LG_RPI_IP}", username: root}
      PDUDaemonPort: {host: pdu.lab, pdu: apc1, index: 3}
    drivers:
      SerialDriver: {}
      PDUDaemonDriver: {}
      SSHDriver: {}
  bbb:
    resources:
      RawSerialPort: {port: !template $LG_BBB_TTY, speed: 115200}
      NetworkPowerPort: {model: rest, host: 'http://pdu.lab/outlet/{index}/value', index: 2}
    drivers:
      SerialDriver: {}
      NetworkPowerDriver: {}
  x86:
    resources:
      NetworkSerialPort: {host: ser.lab, port: 4003}
    drivers:
      SerialDriver: {}
      ExternalPowerDriver: {cmd_on: 'pdu on 3', cmd_off: 'pdu off 3'}
  bench:
    resources:
      NetworkSerialPort: {host: ser.lab, port: 4004}
    drivers:
      SerialDriver: {}
      ManualPowerDriver: {}
"""
LG_VARS = {"LG_RPI_IP": "10.0.0.5", "LG_BBB_TTY": "/dev/ttyS1"}


def _harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LG_")}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=REPO, env={**clean, **(env or {})}, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip


def test_harness_check_says_what_a_run_uses_from_each_target_of_a_labgrid_environment(
    tmp_path: Path,
) -> None:
    env = tmp_path / "lab.yaml"
    env.write_text(LAB)
    done = _harness("check", str(env), env=LG_VARS)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "console: SerialDriver on USBSerialPort matched by udev at 115200 baud" in out
    assert "ssh:     NetworkService root@10.0.0.5:22" in out  # the !template filled in
    assert "power:   PDUDaemonDriver (a PDU through pdudaemon)" in out
    assert "SSHDriver (the harness has its own SSH client)" in out
    assert "console: SerialDriver on RawSerialPort /dev/ttyS1 at 115200 baud" in out
    assert "power:   NetworkPowerDriver (a network power switch) on NetworkPowerPort rest" in out
    assert "power:   ExternalPowerDriver (commands run on this host)" in out
    assert "ManualPowerDriver (a person at the bench, asked on the terminal); an unattended" in out
    assert out.count("ssh:     none: tests with transport ssh will be errors") == 3


NO_CONSOLE = """\
targets:
  main:
    resources:
      NetworkService: {address: 10.0.0.5, username: root}
    drivers:
      ExternalPowerDriver: {cmd_on: 'pdu on 3', cmd_off: 'pdu off 3'}
"""


@pytest.mark.parametrize(
    ("text", "env", "words"),
    [
        (
            LAB,
            {"LG_RPI_IP": "10.0.0.5"},
            "lab.yaml:15, field 'targets.bbb.resources.RawSerialPort.port': !template uses "
            "$LG_BBB_TTY, which is not set in the environment",
        ),
        (
            LAB.replace("$LG_BBB_TTY", "$HOME"),
            LG_VARS,
            "!template uses $HOME: labgrid fills in only LG_* variables",
        ),
        (
            NO_CONSOLE,
            {},
            "field 'targets.main.drivers': target 'main' has no console the harness can use",
        ),
    ],
    ids=["lg-variable-not-set", "not-an-lg-variable", "no-console"],
)
def test_a_labgrid_environment_the_harness_cannot_use_exits_2_naming_file_line_and_field(
    tmp_path: Path, text: str, env: dict[str, str], words: str
) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    done = _harness("check", str(path), env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr


def _sim_env(sim_board, tmp_path: Path, power: dict[str, object] | None = None) -> Path:
    """The sim board's env file as a lab would write it: two targets, the host as a !template."""
    doc = yaml.safe_load(Path(sim_board.env_file).read_text())
    main = doc["targets"]["main"]
    if power is not None:
        main["drivers"] = {"SerialDriver": {}, **power}
    text = yaml.safe_dump(
        {"targets": {"spare": {"resources": {"NetworkSerialPort": {"host": "ser.lab", "port": 1}},
                               "drivers": {"SerialDriver": {}}},
                     "main": main},
         "options": doc["options"]},
        sort_keys=False,
    ).replace("host: 127.0.0.1", "host: !template ${LG_SIM_HOST}", 1)  # fmt: skip
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return path


def test_harness_run_uses_a_two_target_environment_with_lg_templates(
    sim_board, tmp_path: Path
) -> None:
    env = _sim_env(sim_board, tmp_path)
    assert "!template ${LG_SIM_HOST}" in env.read_text()
    done = _harness(
        "run", "--board", str(sim_board.profile.source), "--plan", str(QUICK_PLAN), "--env", str(env),
        "--results", str(tmp_path / "results"), "--no-submit", "--plain",
        env={"LG_SIM_HOST": "127.0.0.1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pass     console-echo" in done.stderr and "verdict: certified" in done.stderr


def test_harness_run_refuses_what_cannot_work_before_touching_the_board(
    sim_board, tmp_path: Path
) -> None:
    manual = _sim_env(sim_board, tmp_path, power={"ManualPowerDriver": {}})
    cycle_plan = tmp_path / "cycle.yaml"
    cycle_plan.write_text(
        "kind: plan\nid: cycle\nversion: '1'\ntitle: power cycle\n"
        "tests:\n  - {id: cycle, title: cycle, category: power, steps: [{power-cycle: {}}]}\n"
    )
    results = tmp_path / "results"
    no_person = _harness(
        "run", "--board", str(sim_board.profile.source), "--plan", str(cycle_plan), "--env", str(manual),
        "--results", str(results), "--no-submit", env={"LG_SIM_HOST": "127.0.0.1"},
    )  # fmt: skip
    assert no_person.returncode == 2, no_person.stderr
    assert "ManualPowerDriver, which asks a person" in no_person.stderr
    assert "field 'targets.main.drivers'" in no_person.stderr
    profile = tmp_path / "rpi.yaml"
    data = yaml.safe_load(Path(sim_board.profile.source).read_text())
    data["lab"] = {"env": "lab.yaml", "target": "rpi4-07"}
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    no_target = _harness(
        "run", "--board", str(profile), "--plan", str(QUICK_PLAN), "--results", str(results),
        "--no-submit", env={"LG_SIM_HOST": "127.0.0.1"},
    )  # fmt: skip
    assert no_target.returncode == 2, no_target.stderr
    assert (
        "no target 'rpi4-07' in the labgrid environment (targets: spare, main)" in no_target.stderr
    )
    assert not results.exists() or not any(results.iterdir())  # no run folder: nothing started
