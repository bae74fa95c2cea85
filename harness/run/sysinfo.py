"""Diagnostics of the unit, saved as files in the run folder's `diagnostics/` at the end of a run.

The kernel log, the kernel's configuration (where the kernel exposes it), its command line,
the loaded modules, the device tree (the blob the kernel booted with, and a `dtc`-free text
dump of it made on the lab host: harness/run/fdtdump.py) or DMI, and
the firmware versions (the bootloader banner the run saw, DMI's BIOS fields, U-Boot's
`/chosen` entry, what /sys/firmware holds). A person reading a failure a month later gets
the unit's state with the evidence, and because the files are in the run folder the signed
bundle carries them, each with its sha256 in the manifest and in run.json.

An engine phase, not plan tests (docs/run-report.md "Diagnostics"): it runs after the last
test whatever the plan selected or how far it got, and it can never change an outcome.
Each item is one shell command; exit status 3 means the unit does not have it (`absent`),
any other failure is recorded as `failed` with the reason. Nothing here raises: a board
that stops answering half-way leaves the items not read as `failed`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.lab.contract import BoardLink
from harness.lab.errors import BoardFault
from harness.lab.result import CommandResult
from harness.model.board_evidence import DiagnosticFile, DiagnosticsInfo
from harness.report.runfolder import iso, utc_now
from harness.run import fdtdump

if TYPE_CHECKING:
    from harness.run.executor import TestExecutor

log = logging.getLogger(__name__)

FOLDER = "diagnostics"
ABSENT = 3  # the exit status an item's command uses for "the unit has no such thing"
TIMEOUT = 60.0

_DT = "/sys/firmware/devicetree/base"
# The blob the kernel booted with, gzip'd (QEMU pads it to 1 MiB of mostly zeros) and base64'd
# (binary through a command channel); its text view is made on the lab host (fdtdump.py).
_FDT = (
    "if [ -r /sys/firmware/fdt ]; then gzip -c /sys/firmware/fdt | base64; "
    f"elif [ -d {_DT} ]; then echo 'a device tree, but no /sys/firmware/fdt to read it from' "
    f">&2; exit 1; else echo 'no device tree (/sys/firmware/fdt)' >&2; exit {ABSENT}; fi"
)
_DMI = "/sys/class/dmi/id"
_DMI_DUMP = (
    f"[ -d {_DMI} ] || {{ echo 'no DMI ({_DMI})' >&2; exit {ABSENT}; }}; "
    f'for f in {_DMI}/*; do [ -f "$f" ] && [ -r "$f" ] && '
    'echo "${f##*/}: $(cat "$f" 2>/dev/null)"; done; true'
)
_FIRMWARE = (
    f"for f in bios_vendor bios_version bios_date bios_release; do [ -r {_DMI}/$f ] && "
    f'echo "dmi $f: $(cat {_DMI}/$f)"; done; '
    f"[ -r {_DT}/chosen/u-boot,version ] && "
    f"echo \"device tree /chosen/u-boot,version: $(tr -d '\\0' < {_DT}/chosen/u-boot,version)\"; "
    '[ -d /sys/firmware/efi ] && echo "efi: $(cat /sys/firmware/efi/fw_platform_size '
    '2>/dev/null)-bit, runtime: $(ls /sys/firmware/efi/runtime-map 2>/dev/null | wc -l) entries"; '
    "echo \"/sys/firmware: $(ls /sys/firmware 2>/dev/null | tr '\\n' ' ')\"; true"
)
_CONFIG = (
    "if [ -r /proc/config.gz ]; then zcat /proc/config.gz; "
    'elif [ -r "/boot/config-$(uname -r)" ]; then cat "/boot/config-$(uname -r)"; '
    'else echo "the kernel exposes no configuration (/proc/config.gz, /boot/config-$(uname -r))" '
    f">&2; exit {ABSENT}; fi"
)


# Commands the items use, probed like the plan's `tools:` (harness/run/tools.py supplies the
# missing ones); base64 carries the output over a console (see `_console_command`).
TOOLS = ("cat", "dmesg", "zcat", "gzip", "lsmod", "tr", "ls", "wc", "base64")


@dataclass(frozen=True)
class Item:
    """One diagnostic: a command whose output is the text of `file`.

    With `blob`, the command prints a gzip file base64-encoded instead: it is kept as `blob`
    (entry `<name>-blob`) and `render` makes the text of `file` from its uncompressed bytes.
    """

    name: str
    file: str
    command: str
    blob: str | None = None
    render: Callable[[bytes], str] | None = None


ITEMS: tuple[Item, ...] = (
    Item("dmesg", "dmesg.txt", "dmesg"),
    Item("kernel-config", "kernel-config.txt", _CONFIG),
    Item("cmdline", "cmdline.txt", "cat /proc/cmdline"),
    Item("modules", "modules.txt", "lsmod 2>/dev/null || cat /proc/modules"),
    Item("devicetree", "devicetree.txt", _FDT, "devicetree.dtb.gz", fdtdump.dump),
    Item("dmi", "dmi.txt", _DMI_DUMP),
    Item("firmware", "firmware.txt", _FIRMWARE),
)


def not_collected(reason: str) -> DiagnosticsInfo:
    """What run.json says when the unit could not be asked at all."""
    return DiagnosticsInfo(problem=reason)


def after_run(
    board: BoardLink | None,
    executor: TestExecutor | None,
    lab_lost: str | None,
    board_problem: str | None,
    run_folder: Path,
    bootloader: str | None,
) -> DiagnosticsInfo:
    """At the end of a session: collect if the board answers, else say why not.

    A board left crashed by the last test is recovered first (the executor's recovery,
    bounded like before any test): its configuration, modules and firmware are still worth
    having, and its kernel log was already kept in the console log.
    """
    why = f"the lab was lost: {lab_lost}" if lab_lost else None
    if executor is None or board is None:
        why = why or board_problem or "no test reached the board in this session"
    elif why is None and executor.board_lost:
        why = f"the board was lost: {executor.state.last_problem}"
    elif why is None and executor.needs_recovery:
        problem = executor.recover()
        why = problem and f"the board did not answer after the last test: {problem}"
    if why is not None or board is None:
        return not_collected(why or "no board")
    try:
        return collect(board, run_folder, bootloader)
    except OSError:
        raise  # the run folder cannot be written: the run stops resumable, as for results
    except Exception as exc:  # a harness bug here must not cost the run its verdict
        log.warning("collecting the diagnostics failed", exc_info=True)
        return not_collected(f"the harness failed collecting them: {type(exc).__name__}: {exc}")


def collect(board: BoardLink, run_folder: Path, bootloader: str | None) -> DiagnosticsInfo:
    """Read every item from the unit into `run_folder/diagnostics/`; never raises.

    SSH is used where the board has it (separate stderr, no console framing for a long
    kernel log); the console otherwise. `bootloader` is the banner the run saw on the
    console (run.json software.bootloader), the one firmware version no command can read.
    """
    via = "ssh" if board.has_ssh else "console"
    folder = run_folder / FOLDER
    folder.mkdir(exist_ok=True)
    files: list[DiagnosticFile] = []
    for item in ITEMS:
        files.extend(_collect_one(board, via, folder, item, bootloader))
    return DiagnosticsInfo(collected_at=iso(utc_now()), via=via, files=files)


def _collect_one(
    board: BoardLink, via: str, folder: Path, item: Item, bootloader: str | None
) -> list[DiagnosticFile]:
    def problem(status: str, reason: str) -> list[DiagnosticFile]:
        names = [item.name] if item.blob is None else [f"{item.name}-blob", item.name]
        entry = {"status": status, "command": item.command, "reason": reason[:300]}
        return [DiagnosticFile(name=name, **entry) for name in names]  # type: ignore[arg-type]

    try:
        if via == "ssh":
            result = board.ssh.run(item.command, timeout=TIMEOUT)
        else:
            result = _console_run(board, item.command)
    except (HarnessError, BoardFault) as exc:
        log.info("diagnostic %s not read", item.name, exc_info=True)
        return problem("failed", f"{type(exc).__name__}: {exc}")
    if result.exit_status != 0:
        why = (result.stderr or result.stdout).strip().splitlines()
        status = "absent" if result.exit_status == ABSENT else "failed"
        return problem(status, why[-1] if why else f"exit status {result.exit_status}")
    if not result.stdout.strip():
        stderr = result.stderr.strip()[:200]
        return problem("failed", "the command printed nothing" + (f" ({stderr})" if stderr else ""))
    if item.blob is None:
        text = result.stdout
        if item.name == "firmware" and bootloader:
            text = f"bootloader banner on the console: {bootloader}\n{text}"
        return [_saved(folder, item.name, item.file, item.command, _clean(text).encode())]
    try:
        packed = base64.b64decode("".join(result.stdout.split()), validate=True)
        text = item.render(gzip.decompress(packed)) if item.render else ""
    except (binascii.Error, ValueError, OSError, EOFError) as exc:  # gzip errors are OSErrors
        return problem("failed", f"the unit sent no readable blob: {exc}")
    return [
        _saved(folder, f"{item.name}-blob", item.blob, item.command, packed),
        _saved(folder, item.name, item.file, item.command, text.encode()),
    ]


def _saved(folder: Path, name: str, file: str, command: str, data: bytes) -> DiagnosticFile:
    (folder / file).write_bytes(data)
    return DiagnosticFile(
        name=name,
        status="collected",
        file=f"{FOLDER}/{file}",
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        command=command,
    )


def _console_run(board: BoardLink, command: str) -> CommandResult:
    """Over a console the output travels base64-encoded: a kernel log replayed on the
    console would otherwise read as a new crash to the crash watch (a panic line, an Oops)."""
    wrapped = (
        f"( out=$( {{ {command} ; }} 2>&1 ); s=$?; printf '%s\\n' \"$out\" | base64; exit $s )"
    )
    result = board.console.run(wrapped, timeout=TIMEOUT)
    try:
        text = base64.b64decode("".join(result.stdout.split()), validate=True)
    except (binascii.Error, ValueError):
        text = result.stdout.encode()
    return CommandResult(
        command, result.exit_status, text.decode("utf-8", "replace"), "", result.duration
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(text: str) -> str:
    """Line endings normalised and control characters dropped: the files are read as text."""
    return _CONTROL.sub("", text.replace("\r\n", "\n"))
