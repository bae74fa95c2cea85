"""gpio-loopback, spi-loopback and can-loopback verdicts on a scripted console.

No virtual board has wired GPIO lines or an SPI controller (QEMU has neither to give), so the
board is scripted here; the CAN check also runs for real on qemu-aarch64-uboot's CAN pair
(tests/run/test_run_qemu.py). The GPIO check's shell commands run in a real shell against a
sysfs tree in a folder, the console playing the kernel's part (export creates gpioN, a wired
input's value is its output's). A working pair passes; a miswired or broken one fails with
the levels, bytes or frames shown.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.lab.result import CommandResult
from harness.run.checks import can, gpio, spi
from harness.run.context import StepFailed, TestContext, Transcript


def _ctx(console: Any, item: dict[str, Any]) -> TestContext:
    test = SimpleNamespace(params={}, item=item)
    return TestContext(
        board=SimpleNamespace(console=console), profile=None, facts={}, test=test,
        artifacts=Path("."), transcript=Transcript(), transport="console",
    )  # type: ignore[arg-type]  # fmt: skip


# ---- GPIO -----------------------------------------------------------------------------


class SysfsGpioConsole:
    """A shell on a board whose sysfs GPIO interface is the folder `root`.

    One chip, gpiochip0 labelled pinctrl-test, at base 512. After each command the console
    does what the kernel would: a number written to `export` becomes a gpioN folder, one
    written to `unexport` removes it. `wired` maps an input line's number to the output
    number whose level it reads; an input not in it floats high.
    """

    def __init__(self, root: Path, wired: dict[int, int]) -> None:
        self.root, self.wired, self.commands = root, wired, []
        (root / "devices" / "gpiochip0").mkdir(parents=True)
        chip = root / "gpiochip512"
        chip.mkdir()
        (chip / "base").write_text("512\n")
        (chip / "label").write_text("pinctrl-test\n")
        (chip / "device").symlink_to(root / "devices" / "gpiochip0")
        for name in ("export", "unexport"):
            (root / name).write_text("")

    def run(self, command: str, timeout: float) -> CommandResult:
        self.commands.append(command)
        # sysfs takes each write to export on its own; the plain files standing for export and
        # unexport here keep every write by appending.
        for name in ("export", "unexport"):
            command = command.replace(f">{self.root}/{name}", f">>{self.root}/{name}")
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
        self._kernel()
        return CommandResult(command, done.returncode, done.stdout + done.stderr, "", 0.01)

    def _kernel(self) -> None:
        for number in (self.root / "export").read_text().split():
            line = self.root / f"gpio{number}"
            line.mkdir()
            (line / "direction").write_text("in\n")
            source = self.wired.get(int(number))
            if source is None:
                (line / "value").write_text("1\n")
            else:
                (line / "value").symlink_to(self.root / f"gpio{source}" / "value")
        for number in (self.root / "unexport").read_text().split():
            for file in (self.root / f"gpio{number}").iterdir():
                file.unlink()
            (self.root / f"gpio{number}").rmdir()
        for name in ("export", "unexport"):
            (self.root / name).write_text("")


PAIR = {
    "name": "hdr-11-13",
    "output": {"chip": "gpiochip0", "line": 17},
    "input": {"chip": "pinctrl-test", "line": 27},
}


def test_gpio_pair_wired_passes_and_the_lines_are_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpio, "SYSFS", str(tmp_path))
    console = SysfsGpioConsole(tmp_path, wired={539: 529})  # line 27 reads line 17
    gpio.loopback(_ctx(console, PAIR))
    assert not (tmp_path / "gpio529").exists() and not (tmp_path / "gpio539").exists()
    assert any("echo low >" in c and "gpio529/direction" in c for c in console.commands)


def test_gpio_pair_not_wired_fails_showing_the_levels_driven_and_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpio, "SYSFS", str(tmp_path))
    console = SysfsGpioConsole(tmp_path, wired={})  # the input floats high
    with pytest.raises(StepFailed) as failed:
        gpio.loopback(_ctx(console, PAIR))
    assert str(failed.value) == (
        "drove gpiochip0 line 17 (GPIO 529) 1 0 1 1 0 0 1 0, "
        "pinctrl-test line 27 (GPIO 539) read 1 1 1 1 1 1 1 1"
    )
    assert not (tmp_path / "gpio529").exists(), "released after a failure too"


def test_gpio_pair_on_a_chip_the_unit_lacks_fails_listing_its_chips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpio, "SYSFS", str(tmp_path))
    console = SysfsGpioConsole(tmp_path, wired={})
    item = {**PAIR, "input": {"chip": "gpiochip3", "line": 1}}
    with pytest.raises(StepFailed) as failed:
        gpio.loopback(_ctx(console, item))
    assert str(failed.value) == (
        "input chip 'gpiochip3' is not on the unit (chips: gpiochip0 (pinctrl-test, base 512))"
    )


# ---- SPI ------------------------------------------------------------------------------


class SpiConsole:
    """A shell with /dev/spidev0.0 and a `spi-pipe` whose MISO is `miso` (a shell snippet
    that writes what the controller clocks in: `cat` for MOSI wired to MISO)."""

    def __init__(self, bin_dir: Path, miso: str | None) -> None:
        self.bin_dir = bin_dir
        bin_dir.mkdir()
        if miso is not None:
            script = bin_dir / "spi-pipe"
            # The options the check gives are checked: the device, one block of 32 bytes.
            script.write_text(
                '#!/bin/sh\n[ "$*" = "-d /dev/spidev0.0 -s 1000000 -b 32 -n 1" ] || '
                f'{{ echo "bad options: $*" >&2; exit 2; }}\n{miso}\n'
            )
            script.chmod(0o755)

    def run(self, command: str, timeout: float) -> CommandResult:
        if command == "[ -c /dev/spidev0.0 ]":
            return CommandResult(command, 0, "", "", 0.01)
        done = subprocess.run(
            ["sh", "-c", f'PATH="{self.bin_dir}:$PATH"; {command}'],
            capture_output=True,
            text=True,
            check=False,
        )
        return CommandResult(command, done.returncode, done.stdout + done.stderr, "", 0.01)


SPI = {"name": "spi0.0", "device": "/dev/spidev0.0", "speed_hz": 1_000_000, "length": 32}


def test_spi_loopback_with_mosi_on_miso_passes(tmp_path: Path) -> None:
    spi.loopback(_ctx(SpiConsole(tmp_path / "bin", miso="exec cat"), SPI))


def test_spi_miso_stuck_high_fails_with_both_byte_strings_and_the_first_difference(
    tmp_path: Path,
) -> None:
    console = SpiConsole(tmp_path / "bin", miso="cat >/dev/null; printf '\\377%.0s' $(seq 32)")
    with pytest.raises(StepFailed) as failed:
        spi.loopback(_ctx(console, SPI))
    reason = str(failed.value)
    assert re.match(
        r"^/dev/spidev0\.0 at 1000000 Hz: sent 32 bytes 00( [0-9a-f]{2}){30} ff, ", reason
    )
    assert "received 32 bytes " + " ".join(["ff"] * 32) + "; first difference at byte 0" in reason


def test_spi_without_spi_pipe_on_the_unit_fails_naming_the_package(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match=r"spi-pipe \(Debian spi-tools\) is not on the unit"):
        spi.loopback(_ctx(SpiConsole(tmp_path / "bin", miso=None), SPI))


# ---- CAN ------------------------------------------------------------------------------


class CanBusConsole:
    """A shell with iproute2 and can-utils whose two interfaces are on one bus.

    `bus(frames)` is what the receiving candump logs of the frames sent: the frames
    themselves on a wired pair, nothing on an unwired one.
    """

    def __init__(self, bus: Any) -> None:
        self.bus, self.commands = bus, []

    def run(self, command: str, timeout: float) -> CommandResult:
        self.commands.append(command)
        out, status = "", 0
        if command.startswith("for p in "):
            out = "iproute2 /sbin/ip\n"
        elif "candump -L -n 4 " in command:
            receiver = re.search(r"candump -L -n 4 (\S+) ", command).group(1)
            frames = re.findall(r"cansend \S+ (\S+?);", command)
            received = self.bus(frames)
            out = f"candump-exit {0 if received else 124}\n" + "".join(
                f"({1796070513 + i}.000001) {receiver} {frame}\n"
                for i, frame in enumerate(received)
            )
        elif "-details link show" in command:
            out = "    can state ERROR-PASSIVE (berr-counter tx 128 rx 0) restarts 0\n"
        return CommandResult(command, status, out, "", 0.01)


CAN = {"name": "can0-can1", "a": "can0", "b": "can1", "bitrate": 250000}


def test_can_pair_on_one_bus_passes_both_ways_and_ends_down() -> None:
    console = CanBusConsole(bus=lambda frames: frames)
    can.pair(_ctx(console, CAN))
    assert sum("type can bitrate 250000" in c for c in console.commands) == 2
    assert sum("candump -L -n 4 " in c for c in console.commands) == 2
    assert console.commands[-1] == "/sbin/ip link set can0 down; /sbin/ip link set can1 down"


def test_can_pair_not_wired_fails_with_the_frames_sent_and_the_sender_state() -> None:
    console = CanBusConsole(bus=lambda frames: [])
    with pytest.raises(StepFailed) as failed:
        can.pair(_ctx(console, CAN))
    assert re.match(
        r"^sent ([0-9A-F]{3}#[0-9A-F]{2,16} ){4}on can0, can1 received nothing within 10 s "
        r"\(can0 state ERROR-PASSIVE; candump-exit 124\)$",
        str(failed.value),
    ), failed.value
    assert console.commands[-1].endswith("/sbin/ip link set can1 down")


def test_can_frame_corrupted_on_the_bus_fails_showing_sent_and_received() -> None:
    def corrupt(frames: list[str]) -> list[str]:
        return [frames[0], frames[1][:-1] + ("0" if frames[1][-1] != "0" else "1"), *frames[2:]]

    with pytest.raises(StepFailed) as failed:
        can.pair(_ctx(CanBusConsole(bus=corrupt), CAN))
    sent, received = re.match(r"^sent (.*) on can0, can1 received (.*) within", str(failed.value)).groups()  # fmt: skip
    assert sent.split()[0] == received.split()[0] and sent.split()[1] != received.split()[1]
