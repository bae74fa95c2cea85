"""Board profile schema: a board *model*, not a unit.

A profile says what the board is (identity), how to talk to it (console),
how it boots, what hardware a healthy unit must show (inventory, which
certification plans compare against), and how to reach a unit: a labgrid
environment file, a labgrid place, or the built-in virtual lab (`virtual:`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.errors import Location, UserError
from harness.model.bootloaders import ResolvedBootloader
from harness.model.yamlsource import load_yaml, validate

# Where names are looked up, like every default path of the harness (plans in PLANS_DIR,
# harness/model/plan.py; results/): relative to the working directory, the lab's project
# folder, never to where the harness package is installed.
BOARDS_DIR = Path("boards")


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a profile must not silently drop a check."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class Identity(Strict):
    vendor: str = Field(min_length=1)
    model: str = Field(min_length=1)
    revision: str = Field(min_length=1)
    soc: str = Field(min_length=1)
    arch: Literal["x86_64", "aarch64", "armv7l", "riscv64"]
    compatible: str = Field(
        min_length=1, description="device-tree compatible string (or DMI product name on x86)"
    )


class Console(Strict):
    baud: int = Field(default=115200, gt=0)
    login_prompt: str = Field(default="login: ", min_length=1, description="regex")
    username: str = "root"
    password: str | None = None
    password_prompt: str = Field(default="[Pp]assword: ", description="regex")
    shell_prompt: str = Field(default=r"[#$] ", description="regex matched at the end of a line")
    login_timeout: float = Field(default=120.0, gt=0)


class Ssh(Strict):
    username: str = "root"
    password: str | None = None
    key_file: str | None = None
    port: int = Field(default=22, gt=0, lt=65536)


class Bootloader(Strict):
    """How the board's bootloader shows itself and how to drive it, as data.

    Every field defaults from the table in `harness/model/bootloaders.py` for
    `boot.flow`, so a profile names only what its board does differently.
    """

    banner: str | None = Field(default=None, description="regex of the banner it prints first")
    prompt: str | None = Field(default=None, description="regex of its command prompt")
    autoboot: str | None = Field(
        default=None, description="regex of the autoboot countdown line (the board boots alone)"
    )
    menu: str | None = Field(default=None, description="regex of a boot menu waiting for a key")
    menu_key: str = Field(default="\n", description="key that starts the highlighted entry")
    interrupt: str = Field(default="\x03", min_length=1, description="key that stops autoboot")
    kill_line: str = Field(
        default="\x03", min_length=1, description="key that discards a typed prompt line"
    )
    boot_command: str | None = Field(default=None, description="command that boots the OS")
    on_autoboot: Literal["wait", "interrupt"] = Field(
        default="wait",
        description="wait: let the countdown run out (no keystroke during boot); "
        "interrupt: stop it and type boot_command",
    )


class Boot(Strict):
    flow: Literal["direct", "u-boot", "barebox", "grub"] = "direct"
    bootloader: Bootloader = Bootloader()
    timeout: float = Field(default=180.0, gt=0, description="power-on to login prompt, seconds")
    settle_timeout: float = Field(
        default=60.0,
        gt=0,
        description="after login: how long devices (block, network, USB, serial) may keep "
        "appearing before the board counts as up anyway",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_keys(cls, data: object) -> object:
        """Profiles written before `bootloader:` existed keep loading."""
        if isinstance(data, dict):
            legacy = {
                "bootloader_prompt": "prompt",
                "bootloader_banner": "banner",
                "boot_command": "boot_command",
            }
            moved = {new: data[old] for old, new in legacy.items() if old in data}
            if moved:
                data = {k: v for k, v in data.items() if k not in legacy}
                loader = dict(data.get("bootloader") or {})
                data["bootloader"] = {**moved, **loader}
        return data

    @property
    def loader(self) -> ResolvedBootloader | None:
        """The bootloader's settings with the flow's defaults filled in; None for direct boot."""
        from harness.model.bootloaders import resolve

        return resolve(self.flow, self.bootloader)


class BlockDevice(Strict):
    name: str
    size_mib: int | None = Field(default=None, gt=0)


class UsbDevice(Strict):
    kind: Literal["mass-storage", "hub", "network", "serial", "hid", "other"] = "mass-storage"
    vendor_id: str | None = None
    product_id: str | None = None


class Inventory(Strict):
    """What a healthy unit of this model must show; `harness` discovers the real values on the board."""

    cpus: int = Field(gt=0)
    memory_mib: int = Field(
        gt=0, description="total RAM as configured; the kernel reports a little less"
    )
    block_devices: list[BlockDevice] = []
    network_interfaces: list[str] = []
    usb_devices: list[UsbDevice] = []
    serial_ports: int = Field(
        default=1, ge=0, description="UARTs the kernel registers, console included"
    )
    watchdog: bool = False
    rtc: bool = False


class VirtualDisk(Strict):
    size_mib: int = Field(gt=0, le=4096)


class Virtual(Strict):
    """How the built-in virtual lab realises this model as a QEMU machine."""

    machine: str = Field(description="QEMU -M value, e.g. q35 or virt")
    cpu: str | None = Field(default=None, description="QEMU -cpu value")
    smp: int = Field(default=1, gt=0, le=8)
    memory_mib: int = Field(default=256, ge=128, le=4096)
    disks: list[VirtualDisk] = []
    usb_storage: VirtualDisk | None = None
    extra_uart: bool = False
    watchdog: Literal["i6300esb"] | None = None
    rtc: bool = True
    extra_args: list[str] = []


class Lab(Strict):
    """How to reach a unit. Exactly one of the three."""

    virtual: Virtual | None = None
    env: str | None = Field(
        default=None, description="labgrid environment file (relative to the profile)"
    )
    target: str = Field(default="main", description="target name inside the environment file")
    place: str | None = Field(default=None, description="labgrid coordinator place name")

    @model_validator(mode="after")
    def _exactly_one(self) -> Lab:
        given = [name for name in ("virtual", "env", "place") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'virtual', 'env' or 'place'"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class BoardProfile(Strict):
    schema_version: Literal[1] = Field(default=1, alias="schema")
    kind: Literal["board"] = "board"
    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]*$", description="short id used on the command line"
    )
    identity: Identity
    console: Console = Console()
    ssh: Ssh = Ssh()
    boot: Boot = Boot()
    inventory: Inventory
    lab: Lab

    # Filled in by load_board, not by the YAML.
    source: Path | None = Field(default=None, exclude=True)
    sha256: str | None = Field(default=None, exclude=True)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def resolve(self, relative: str) -> Path:
        """A path given in the profile, relative to the profile's folder."""
        base = self.source.parent if self.source else Path.cwd()
        return (base / relative).resolve()


def load_board(file: str | Path) -> BoardProfile:
    """Load and validate a board profile; every problem is a UserError with file, line and field."""
    doc = load_yaml(file)
    if isinstance(doc.data, dict) and doc.data.get("kind", "board") != "board":
        raise doc.error(f"expected kind 'board', got {doc.data.get('kind')!r}", ("kind",))
    board = validate(doc, BoardProfile)
    board.source = Path(file).resolve()
    board.sha256 = hashlib.sha256(Path(file).read_bytes()).hexdigest()
    if board.lab.virtual and board.boot.flow not in ("direct", "u-boot"):
        raise doc.error("the virtual lab boots directly or through U-Boot only", ("boot", "flow"))
    if (
        board.lab.virtual
        and board.boot.flow == "u-boot"
        and board.identity.arch not in ("aarch64", "x86_64")
    ):
        raise doc.error(
            "the virtual lab boots U-Boot only for aarch64 and x86_64", ("boot", "flow")
        )
    for field in ("banner", "prompt", "autoboot", "menu"):
        pattern = getattr(board.boot.bootloader, field)
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise doc.error(
                    f"not a valid regular expression: {exc}", ("boot", "bootloader", field)
                ) from None
    return board


def find_board(name_or_path: str, boards_dir: Path | None = None) -> BoardProfile:
    """Accept either a profile path or a board name from `boards/` (BOARDS_DIR)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_board(path)
    boards_dir = boards_dir or BOARDS_DIR.absolute()
    for candidate in sorted(boards_dir.glob("*.y*ml")):
        if candidate.stem == name_or_path:
            return load_board(candidate)
    known = ", ".join(sorted(p.stem for p in boards_dir.glob("*.y*ml"))) or "none"
    raise UserError(
        f"no board profile named '{name_or_path}' (known in {boards_dir}: {known})",
        Location(name_or_path),
    )
