"""Diagnostics of the unit, saved as files in the run folder's `diagnostics/` at the end of a run.

The kernel log, the kernel's configuration (where the kernel exposes it), its command line,
the loaded modules, the device tree (a `dtc`-free dump: each property as text) or DMI, and
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
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.lab.contract import BoardLink
from harness.lab.errors import BoardFault
from harness.lab.result import CommandResult
from harness.model.board_evidence import DiagnosticFile, DiagnosticsInfo
from harness.report.runfolder import iso, utc_now

if TYPE_CHECKING:
    from harness.run.executor import TestExecutor

log = logging.getLogger(__name__)

FOLDER = "diagnostics"
ABSENT = 3  # the exit status an item's command uses for "the unit has no such thing"
TIMEOUT = 60.0

_DT = "/sys/firmware/devicetree/base"
# Each property of the device tree as `path = text`, strings split at NULs, anything that is
# not printable shown as '.', values cut at 200 bytes: readable without dtc, and bounded.
_DT_DUMP = (
    f"[ -d {_DT} ] || {{ echo 'no device tree ({_DT})' >&2; exit {ABSENT}; }}; "
    f"echo \"model: $(tr -d '\\0' < {_DT}/model 2>/dev/null)\"; "
    f"echo \"compatible: $(tr '\\0' ' ' < {_DT}/compatible 2>/dev/null)\"; "
    f"find {_DT} -type f | sort | while read -r f; do "
    f"printf '%s = %s\\n' \"${{f#{_DT}}}\" \"$(head -c 200 \"$f\" | tr '\\0' ' ' | "
    "tr -c '[:print:]' '.')\"; done"
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
TOOLS = ("cat", "dmesg", "zcat", "lsmod", "find", "sort", "head", "tr", "ls", "wc", "base64")


@dataclass(frozen=True)
class Item:
    name: str
    file: str
    command: str


ITEMS: tuple[Item, ...] = (
    Item("dmesg", "dmesg.txt", "dmesg"),
    Item("kernel-config", "kernel-config.txt", _CONFIG),
    Item("cmdline", "cmdline.txt", "cat /proc/cmdline"),
    Item("modules", "modules.txt", "lsmod 2>/dev/null || cat /proc/modules"),
    Item("devicetree", "devicetree.txt", _DT_DUMP),
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
        files.append(_collect_one(board, via, folder, item, bootloader))
    return DiagnosticsInfo(collected_at=iso(utc_now()), via=via, files=files)


def _collect_one(
    board: BoardLink, via: str, folder: Path, item: Item, bootloader: str | None
) -> DiagnosticFile:
    try:
        if via == "ssh":
            result = board.ssh.run(item.command, timeout=TIMEOUT)
        else:
            result = _console_run(board, item.command)
    except (HarnessError, BoardFault) as exc:
        log.info("diagnostic %s not read", item.name, exc_info=True)
        return DiagnosticFile(
            name=item.name,
            status="failed",
            command=item.command,
            reason=f"{type(exc).__name__}: {exc}",
        )
    text = result.stdout
    if item.name == "firmware" and bootloader:
        text = f"bootloader banner on the console: {bootloader}\n{text}"
    if result.exit_status != 0:
        why = (result.stderr or result.stdout).strip().splitlines()
        return DiagnosticFile(
            name=item.name,
            status="absent" if result.exit_status == ABSENT else "failed",
            command=item.command,
            reason=(why[-1] if why else f"exit status {result.exit_status}")[:300],
        )
    if not text.strip():
        return DiagnosticFile(
            name=item.name,
            status="failed",
            command=item.command,
            reason="the command printed nothing"
            + (f" (stderr: {result.stderr.strip()[:200]})" if result.stderr.strip() else ""),
        )
    data = _clean(text).encode("utf-8")
    (folder / item.file).write_bytes(data)
    return DiagnosticFile(
        name=item.name,
        status="collected",
        file=f"{FOLDER}/{item.file}",
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        command=item.command,
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
