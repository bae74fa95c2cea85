"""Checking a labgrid environment file, and saying what the harness will use from it.

labgrid parses environment files with its own unbounded PyYAML loader and
reports problems with many exception types. So the file first goes through
`load_yaml` (bounded in size, nodes and depth: see 'Limits' in
docs/plan-format.md; labgrid's `!template` tag allowed), its `$LG_*`
variables are checked against the environment, and only then is it handed to
labgrid's own loader, which builds every target (resources and drivers bound
as labgrid binds them). Whatever labgrid rejects becomes one `UserError`
naming the file (exit 2).

What the harness takes from a target (harness/lab/board.py): a console driver
(labgrid's `ConsoleProtocol`, usually `SerialDriver` over a `RawSerialPort`,
`USBSerialPort` or `NetworkSerialPort`), a `NetworkService` for its own SSH
client, and a power driver (`PowerProtocol`) for recovery and `power-cycle`
steps. Everything else in the file is left to labgrid and ignored by the run.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from harness.errors import Location, UserError
from harness.model.yamlsource import LabgridTemplate, PathKey, SourceDoc, load_yaml

# labgrid's ManualPowerDriver asks a person to switch the power: only at a terminal.
MANUAL_POWER = "ManualPowerDriver"
POWER_NOTES = {
    "NetworkPowerDriver": "a network power switch",
    "ExternalPowerDriver": "commands run on this host",
    "PDUDaemonDriver": "a PDU through pdudaemon",
    MANUAL_POWER: "a person at the bench, asked on the terminal",
}
CONSOLE_PORTS = ("RawSerialPort", "USBSerialPort", "NetworkSerialPort")
POWER_PORTS = ("NetworkPowerPort", "PDUDaemonPort")


@dataclass
class TargetUse:
    """What the harness will use from one target, and what it leaves aside."""

    name: str
    console: str | None = None
    ssh: str | None = None
    power: str | None = None
    power_driver: str | None = None
    ignored: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"target {self.name}:"]
        out.append(f"  console: {self.console or 'MISSING (no console driver)'}")
        out.append(f"  ssh:     {self.ssh or 'none: tests with transport ssh will be errors'}")
        out.append(
            f"  power:   {self.power or 'none: a hung board cannot be recovered, power-cycle steps are errors'}"
        )
        if self.ignored:
            out.append(f"  ignored: {', '.join(self.ignored)}")
        return out


@dataclass
class EnvReport:
    path: Path
    targets: list[TargetUse]

    def lines(self) -> list[str]:
        return [line for target in self.targets for line in target.lines()]

    def target(self, name: str) -> TargetUse:
        return next(t for t in self.targets if t.name == name)


def check_env_file(path: Path, target: str | None = None, field: str | None = None) -> EnvReport:
    """A UserError unless `path` is a labgrid environment the harness can use.

    With `target`, that target must exist; without one, every target is built
    and described (what `harness check` does with a file that has `targets:`
    and no `kind:`).
    """
    if not path.is_file():
        raise UserError("labgrid environment file not found", Location(str(path), None, field))
    doc = load_yaml(path, labgrid_env=True)
    targets = doc.data.get("targets") if isinstance(doc.data, dict) else None
    if not isinstance(targets, dict) or not targets:
        wanted = f"no target {target!r} in the labgrid environment: " if target else ""
        raise doc.error(f"{wanted}a labgrid environment needs a 'targets:' mapping", ("targets",))
    _check_templates(doc)
    if target is not None and target not in targets:
        raise UserError(
            f"no target {target!r} in the labgrid environment (targets: "
            f"{', '.join(map(str, targets))}); name the target in the board profile "
            "(lab: {env: FILE, target: NAME})",
            Location(str(path), doc.lines.get(("targets",)), field or f"targets.{target}"),
        )
    names = [target] if target is not None else [str(name) for name in targets]
    from labgrid import Environment

    try:
        env = Environment(str(path))
    except Exception as exc:  # labgrid reports bad files with many exception types
        raise UserError(
            f"not a usable labgrid environment: {exc}", Location(str(path), None, field)
        ) from None
    uses = []
    for name in names:
        try:
            found = env.get_target(name)
        except Exception as exc:  # labgrid reports bad files with many exception types
            raise UserError(
                f"not a usable labgrid environment: target {name!r}: {exc}",
                Location(str(path), doc.lines.get(("targets", name)), field),
            ) from None
        if found is None:
            raise doc.error(f"no target {name!r} in the labgrid environment", ("targets", name))
        use = describe_target(name, found)
        if use.console is None:
            raise UserError(
                f"target {name!r} has no console the harness can use: give a serial port "
                f"resource ({', '.join(CONSOLE_PORTS)}) and a SerialDriver",
                Location(str(path), doc.lines.get(("targets", name)), f"targets.{name}.drivers"),
            )
        uses.append(use)
    return EnvReport(path, uses)


def _check_templates(doc: SourceDoc) -> None:
    """Every `!template` names only LG_* variables that are set (labgrid fills in no others)."""
    stack: list[tuple[Any, PathKey]] = [(doc.data, ())]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            stack.extend((v, (*where, str(k))) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*where, i)) for i, v in enumerate(value))
        elif isinstance(value, LabgridTemplate):
            for name in _variables(value):
                if not name.startswith("LG_"):
                    raise doc.error(
                        f"!template uses ${name}: labgrid fills in only LG_* variables", where
                    )
                if name not in os.environ:
                    raise doc.error(
                        f"!template uses ${name}, which is not set in the environment", where
                    )


def _variables(text: str) -> list[str]:
    names = []
    for match in Template.pattern.finditer(text):
        name = match.group("named") or match.group("braced")
        if name:
            names.append(name)
    return names


def describe_target(name: str, target: Any) -> TargetUse:
    """What the harness will use from a labgrid Target it built."""
    from labgrid.protocol import ConsoleProtocol, PowerProtocol

    use = TargetUse(name)
    used: set[int] = set()
    for driver in target.drivers:
        cls = type(driver).__name__
        if isinstance(driver, ConsoleProtocol) and use.console is None:
            use.console = f"{cls}{_port_of(driver, used)}"
            used.add(id(driver))
        elif isinstance(driver, PowerProtocol) and use.power is None:
            use.power_driver = cls
            use.power = f"{cls} ({POWER_NOTES.get(cls, 'through labgrid')}){_port_of(driver, used)}"
            if cls == MANUAL_POWER:
                use.power += "; an unattended run cannot power-cycle"
            used.add(id(driver))
        else:
            use.ignored.append(
                cls + (" (the harness has its own SSH client)" if cls == "SSHDriver" else "")
            )
    for resource in target.resources:
        cls = type(resource).__name__
        if cls == "NetworkService" and use.ssh is None:
            use.ssh = (
                f"NetworkService {resource.username}@{resource.address}:{resource.port} "
                "(the harness's own SSH client)"
            )
            used.add(id(resource))
        elif id(resource) not in used and cls not in (*CONSOLE_PORTS, *POWER_PORTS, "RemotePlace"):
            use.ignored.append(cls)
    return use


def _port_of(driver: Any, used: set[int]) -> str:
    """' on <resource>' for the resource a driver is bound to (serial port, power port)."""
    for attr_name in ("port",):
        resource = getattr(driver, attr_name, None)
        if resource is None or isinstance(resource, (str, int)):
            continue
        used.add(id(resource))
        cls = type(resource).__name__
        if cls == "NetworkSerialPort":
            return f" on NetworkSerialPort {resource.host}:{resource.port} ({resource.protocol})"
        if cls in ("RawSerialPort", "USBSerialPort"):
            where = resource.port or "matched by udev"
            return f" on {cls} {where} at {resource.speed} baud"
        if cls == "NetworkPowerPort":
            return f" on NetworkPowerPort {resource.model} {resource.host} #{resource.index}"
        return f" on {cls}"
    return ""


def power_needs_a_person(report: EnvReport, target: str) -> bool:
    """The target's only power switch is a person, and nobody is at a terminal to be asked."""
    return report.target(target).power_driver == MANUAL_POWER and not sys.stdin.isatty()
