"""A lab host of the virtual farm: virtual boards behind a real labgrid exporter.

`harness lab export` (export_cli.py) builds one: it starts (or adopts) virtual
boards, plugs each into an outlet of a virtual PDU (pdu.py), writes the
exporter configuration a lab admin would write for a rack of boards (a
network serial console, an SSH service and a `NetworkPowerPort` per board),
runs `labgrid-exporter` with it against a coordinator (started here, or an
existing one), and creates a tagged place per board. From then on the boards
are reached only the labgrid way: `labgrid-client`, or `harness run --place`.

While it serves, it restarts an exporter that died (as systemd would on a
lab host) and, next to a coordinator it started, runs the lease reaper.
`farm.json` in the farm folder says what is where once everything is up;
`farm.env` has the variables a shell needs to use the farm.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from harness.durable import write_atomic
from harness.errors import InfraError
from harness.farm.client import FarmClient
from harness.farm.health import History, is_bad
from harness.farm.lease import Reaper
from harness.farm.pdu import VirtualPDU
from harness.farm.services import START_GUARD, Service, start_coordinator, start_exporter
from harness.farm.tags import profile_tags
from harness.model.board import BoardProfile
from harness.vlab.state import BenchState

RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass
class Unit:
    """One exported virtual board: its place, bench, outlet and tags."""

    place: str
    board: str
    profile: str
    bench: str
    console_port: int
    ssh_port: int
    outlet: int
    tags: dict[str, str]
    adopted: bool = False
    ssh_host_key: str | None = None

    def exporter_group(self, facts: dict[str, Any]) -> dict[str, Any]:
        service: dict[str, Any] = {
            "address": "127.0.0.1",
            "port": self.ssh_port,
            "username": facts["ssh_username"],
        }
        if facts.get("ssh_password"):
            service["password"] = facts["ssh_password"]
        return {
            "NetworkSerialPort": {
                "host": "127.0.0.1",
                "port": self.console_port,
                "speed": facts["baud"],
                "protocol": "raw",
            },
            "NetworkService": service,
            "NetworkPowerPort": {"model": "rest", "host": facts["pdu_url"], "index": self.outlet},
        }


@dataclass
class FarmHost:
    """The processes and state of one lab host; `stop()` takes down what it started."""

    folder: Path
    exporter_name: str
    lab_dir: Path
    coordinator: str
    units: list[Unit] = field(default_factory=list)
    physical: list[str] = field(default_factory=list)
    services: dict[str, Service] = field(default_factory=dict)
    started_benches: list[BenchState] = field(default_factory=list)
    pdu: VirtualPDU | None = None
    client: FarmClient | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    # ---- bringing it up ---------------------------------------------------------------------

    def start(
        self,
        profiles: list[BoardProfile],
        adopt: list[str],
        places_for: list[BoardProfile],
        listen: str | None,
    ) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if listen is not None:
            self.coordinator = listen
            self.services["coordinator"] = start_coordinator(self.folder / "coordinator", listen)
        self.pdu = VirtualPDU().start()
        facts = self._start_boards(profiles, adopt)
        config = self.folder / f"exporter-{self.exporter_name}.yaml"
        groups = {unit.place: unit.exporter_group(facts[unit.place]) for unit in self.units}
        config.write_text(
            "## labgrid exporter configuration of virtual lab host "
            f"{self.exporter_name} (written by harness lab export)\n"
            + yaml.safe_dump(groups, sort_keys=False),
            encoding="utf-8",
        )
        self.services["exporter"] = start_exporter(
            self.folder, self.coordinator, self.exporter_name, config
        )
        self.client = FarmClient(self.coordinator)
        self._wait_for_resources()
        self.client.run(self._make_places(places_for))
        self._write_files()

    def _start_boards(
        self, profiles: list[BoardProfile], adopt: list[str]
    ) -> dict[str, dict[str, Any]]:
        from harness.vlab import state as lab_state
        from harness.vlab.boardhost import board_kind, start_bench
        from harness.vlab.handle import RunningBoard
        from harness.vlab.state import BoardFacts

        assert self.pdu is not None
        states: list[tuple[BenchState, bool, BoardProfile | None]] = []
        counts: dict[str, int] = {}
        for profile in profiles:
            if board_kind(profile) == "qemu":
                from harness.vlab.build import build_lab

                build_lab([profile.identity.arch])
            counts[profile.name] = counts.get(profile.name, 0) + 1
            name = lab_state.check_name(
                f"{self.exporter_name}-{profile.name}-{counts[profile.name]}"
            )
            state = start_bench(profile, name, lab_dir=self.lab_dir, owner=os.getpid())
            self.started_benches.append(state)
            states.append((state, False, profile))
        for name in adopt:
            states.append((lab_state.find(self.lab_dir, name), True, None))
        facts: dict[str, dict[str, Any]] = {}
        for state, adopted, _ in states:
            board = RunningBoard(state)
            board.wait_until_up()
            state = board.state()
            bench_facts = BoardFacts.load(Path(state.state_dir) / "board.json")
            place = state.name
            outlet = self.pdu.plug(state.name, state.control)
            self.units.append(
                Unit(
                    place=place,
                    board=state.board,
                    profile=state.profile,
                    bench=state.name,
                    console_port=state.console_port,
                    ssh_port=state.ssh_port,
                    outlet=outlet,
                    tags=profile_tags(board.profile),
                    adopted=adopted,
                    ssh_host_key=state.ssh_host_key,
                )
            )
            facts[place] = {
                "baud": bench_facts.baud,
                "ssh_username": bench_facts.ssh_username,
                "ssh_password": bench_facts.ssh_password,
                "pdu_url": self.pdu.url,
            }
        return facts

    def _wait_for_resources(self) -> None:
        assert self.client is not None
        wanted = {(self.exporter_name, unit.place) for unit in self.units}
        deadline = time.monotonic() + START_GUARD
        while True:
            served = {(path[0], path[1]) for path in self.client.resources()}
            if wanted <= served:
                return
            exporter = self.services["exporter"]
            if not exporter.alive():
                raise InfraError(f"labgrid-exporter exited: {exporter.log.read_text()[-1500:]}")
            if time.monotonic() > deadline:
                raise InfraError(
                    f"the coordinator never listed the resources of exporter {self.exporter_name}"
                )
            self.client.run(self.client.wait_change(1.0))

    async def _make_places(self, places_for: list[BoardProfile]) -> None:
        assert self.client is not None
        for unit in self.units:
            await self._ensure_place(unit.place, f"{self.exporter_name}/{unit.place}/*", unit.tags)
        for profile in places_for:
            name = str(profile.lab.place)
            await self._ensure_place(name, f"*/{name}/*", profile_tags(profile))
            self.physical.append(name)

    async def _ensure_place(self, name: str, match: str, tags: dict[str, str]) -> None:
        """Create the place if need be, add its match, and tag it (a bad place keeps its state)."""
        assert self.client is not None
        place = self.client.place(name)
        if place is None:
            await self.client.create_place(name)
            place = self.client.place(name)
        assert place is not None
        if match not in place.matches:
            await self.client.add_match(name, match)
        if not is_bad(place):
            await self.client.set_tags(name, tags)

    def _write_files(self) -> None:
        known_hosts = self.folder / "known_hosts"
        lines = [
            f"[127.0.0.1]:{unit.ssh_port} {unit.ssh_host_key}"
            for unit in self.units
            if unit.ssh_host_key
        ]
        write_atomic(known_hosts, "\n".join(lines) + "\n", durable=False)
        env = {
            "LG_COORDINATOR": self.coordinator,
            "HARNESS_SSH_KNOWN_HOSTS": str(known_hosts),
            "HARNESS_FARM_DIR": str(self.folder),
        }
        write_atomic(
            self.folder / "farm.env",
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()),
            durable=False,
        )
        write_atomic(
            self.folder / "farm.json", json.dumps(self.describe(), indent=2), durable=False
        )

    def describe(self) -> dict[str, Any]:
        return {
            "coordinator": self.coordinator,
            "exporter": self.exporter_name,
            "pid": os.getpid(),
            "pids": {name: service.pid for name, service in self.services.items()},
            "pdu": self.pdu.url if self.pdu else None,
            "known_hosts": str(self.folder / "known_hosts"),
            "env": str(self.folder / "farm.env"),
            "places": [asdict(unit) for unit in self.units],
            "physical_places": self.physical,
        }

    # ---- serving ----------------------------------------------------------------------------

    def serve(self, reaper: bool) -> None:
        """Until `stopping` is set: restart a dead exporter, reap expired leases."""
        assert self.client is not None
        reap = Reaper(self.client, History(self.folder)) if reaper else None
        restarts = 0
        next_restart = 0.0
        while not self.stopping.is_set():
            exporter = self.services["exporter"]
            if not exporter.alive() and time.monotonic() >= next_restart:
                click.echo(
                    f"export: labgrid-exporter {self.exporter_name} exited "
                    f"({exporter.proc.returncode}); restarting it",
                    err=True,
                )
                config = self.folder / f"exporter-{self.exporter_name}.yaml"
                self.services["exporter"] = start_exporter(
                    self.folder, self.coordinator, self.exporter_name, config
                )
                delay = RESTART_BACKOFF[min(restarts, len(RESTART_BACKOFF) - 1)]
                next_restart = time.monotonic() + delay
                restarts += 1
                self._write_files()
            if reap is not None:
                try:
                    for line in self.client.run(reap.step()):
                        click.echo(f"reaper: {line}", err=True)
                except InfraError as exc:
                    click.echo(f"reaper: {exc}", err=True)
            self.client.run(self.client.wait_change(1.0))

    def stop(self) -> None:
        """Exporter first (places lose their resources), then boards, PDU, coordinator."""
        from harness.vlab.boardhost import stop_bench

        if "exporter" in self.services:
            self.services.pop("exporter").stop()
        for state in self.started_benches:
            with contextlib.suppress(Exception):
                stop_bench(state)
        if self.pdu is not None:
            self.pdu.stop()
        if self.client is not None:
            self.client.close()
        for service in self.services.values():
            service.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.folder / "farm.json").unlink()
