"""Lab fixtures in a board profile (`fixtures:`): what the lab wires to each unit.

A network peer, loopback pairs (UART, GPIO, SPI, CAN), an operator and a display. Each
loopback list is the list a template test of the plan expands over
(`for_each: board.fixtures.gpio_loopbacks`), so a lab without the fixture has no instance of
that test, and one with two pairs has two. Kept apart from harness/model/board.py, which
describes the board model; these describe the bench around one unit.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Instance names become test ids (`gpio-loopback[NAME]`) and pytest `-k` keywords.
INSTANCE_NAME = r"^[A-Za-z0-9._-]+$"
# A Linux network interface name (IFNAMSIZ 16, no slash or blank).
INTERFACE_NAME = r"^[A-Za-z0-9_.-]{1,15}$"


class _Named(Protocol):
    name: str


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt fixture must not silently drop its test."""

    model_config = ConfigDict(extra="forbid")


class NetworkPeer(_Strict):
    """The lab host as a peer for network transfers: the harness serves and receives data there."""

    address: str = Field(min_length=1, description="the lab host's address as the board reaches it")
    bind: str = Field(
        default="0.0.0.0", description="where the harness listens on the lab host for the board"
    )
    interfaces: dict[str, str] = Field(
        default={},
        description="the lab host's address through a given board interface, where it is not "
        "`address` (a second NIC on another network: {eth1: 10.0.3.2})",
    )

    def address_for(self, interface: str) -> str:
        """The lab host's address as the board reaches it through `interface`."""
        return self.interfaces.get(interface, self.address)


class UartLoopback(_Strict):
    """A UART whose TX is wired to its own RX (or to another UART's RX): bytes sent come back."""

    name: str = Field(pattern=INSTANCE_NAME, description="instance name, e.g. ttyS1")
    tx: str = Field(min_length=1, description="device that sends, e.g. /dev/ttyS1")
    rx: str | None = Field(default=None, description="device that receives; default: tx itself")
    baud: int = Field(default=115200, gt=0)


class GpioLine(_Strict):
    """One GPIO line, named the way the board's GPIO character devices and `gpioinfo` name it."""

    chip: str = Field(
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="the chip's device name (gpiochip0) or its label (pinctrl-bcm2835)",
    )
    line: int = Field(ge=0, le=4095, description="line offset within the chip")


class GpioLoopback(_Strict):
    """An output GPIO wired to an input GPIO: the level driven on one is read on the other."""

    name: str = Field(pattern=INSTANCE_NAME, description="instance name, e.g. hdr-11-13")
    output: GpioLine = Field(description="the line the check drives")
    input: GpioLine = Field(description="the line wired to it, read back")

    @model_validator(mode="after")
    def _two_lines(self) -> GpioLoopback:
        if self.output == self.input:
            raise ValueError("output and input are the same line: a pair needs two lines")
        return self


class SpiLoopback(_Strict):
    """An SPI controller with MOSI wired to MISO: a full-duplex transfer reads back what it sent."""

    name: str = Field(pattern=INSTANCE_NAME, description="instance name, e.g. spi0.0")
    device: str = Field(
        pattern=r"^/dev/spidev[0-9]+\.[0-9]+$", description="the spidev node, /dev/spidevB.C"
    )
    speed_hz: int = Field(default=1_000_000, gt=0, le=100_000_000)
    length: int = Field(default=32, ge=1, le=4096, description="bytes per transfer")


class CanPair(_Strict):
    """Two CAN interfaces of the unit on one bus (wired and terminated): frames cross both ways."""

    name: str = Field(pattern=INSTANCE_NAME, description="instance name, e.g. can0-can1")
    a: str = Field(pattern=INTERFACE_NAME, description="one interface, e.g. can0")
    b: str = Field(pattern=INTERFACE_NAME, description="the other, e.g. can1")
    bitrate: int = Field(default=500_000, gt=0, le=1_000_000, description="bus bitrate, bit/s")

    @model_validator(mode="after")
    def _two_interfaces(self) -> CanPair:
        if self.a == self.b:
            raise ValueError(f"a and b are both {self.a!r}: a pair needs two interfaces")
        return self


class Fixtures(_Strict):
    """What the lab has wired to each unit; a test that needs a missing fixture is skipped."""

    network_peer: NetworkPeer | None = None
    uart_loopbacks: list[UartLoopback] = []
    gpio_loopbacks: list[GpioLoopback] = []
    spi_loopbacks: list[SpiLoopback] = []
    can_pairs: list[CanPair] = []
    operator: bool = Field(
        default=False, description="a person is at the bench to answer manual steps"
    )
    display: bool = Field(
        default=False, description="a monitor on the unit's display output (HDMI, DSI) to look at"
    )

    @field_validator("uart_loopbacks", "gpio_loopbacks", "spi_loopbacks", "can_pairs")
    @classmethod
    def _unique_names(cls, items: list[_Named]) -> list[_Named]:
        names = [item.name for item in items]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"name {', '.join(twice)} given twice (each names one test instance)")
        return items
