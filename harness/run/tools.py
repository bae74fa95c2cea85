"""Tools the unit's OS lacks, supplied by the harness for the run and removed after it.

A plan names the commands its checks use (`tools:`, docs/plan-format.md "Tools"). When the
run opens the board, each is looked up on the console shell's PATH (`command -v`, a shell
builtin). For the missing ones the static helper of the board's architecture
(harness/vlab/toolset.py: Debian's busybox-static) is copied over SFTP into a folder of its
own under /tmp, with one symlink per missing command that the helper provides; every
command the run sends afterwards (console, SSH, a reboot's command) gets that folder at the
*end* of its PATH, so the board's own tools always win and only the missing ones come from
the helper. Everything on the board is done over SFTP (mkdir, put, chmod, symlink, remove),
so supplying tools needs no tool on the board but its SSH server.

A boot empties /tmp on most images: after every boot the harness drove (reboot, power
cycle, a recovery) the folder is put back. When the run ends (finished, failed, or stopped
by Ctrl-C or SIGTERM) the folder is removed, and run.json `tools` says what was supplied
(binary, sha256, Debian package and version) and whether the removal worked; folders left
by a harness that was killed outright are removed by the next run on the board.

Board-side commands the harness itself needs (its diagnostics, say) are probed the same way.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import shlex
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

from harness.errors import HarnessError
from harness.lab.contract import BoardLink, CommandChannel, FileChannel
from harness.lab.errors import BoardFault
from harness.lab.result import CommandResult
from harness.lab.states import BoardState
from harness.model.board_evidence import HelperBinary, MissingTool, ToolsInfo

if TYPE_CHECKING:
    from harness.vlab.toolset import Toolset

log = logging.getLogger(__name__)

# What can go wrong copying to or removing from the board: a lab problem, a board that
# crashed under the command, a file error, or the SFTP link itself.
PROBLEMS = (HarnessError, BoardFault, OSError, paramiko.SSHException, EOFError)

PREFIX = "harness-tools-"
PARENT = "/tmp"
_TOOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def probe(board: BoardLink, tools: list[str]) -> list[str]:
    """The tools (in the order given) that the console shell's PATH does not find."""
    names = " ".join(shlex.quote(t) for t in tools if _TOOL_NAME.match(t))
    if not names:
        return []
    result = board.console.run(
        f'for t in {names}; do command -v "$t" >/dev/null 2>&1 || echo "missing:$t"; done',
        timeout=30,
    )
    missing = set(re.findall(r"^missing:(\S+)\s*$", result.stdout, re.MULTILINE))
    return [t for t in tools if t in missing]


class SuppliedTools:
    """The helper folder on one board: installs it, keeps it there across boots, removes it."""

    def __init__(self, board: BoardLink, toolset: Toolset, missing: list[str]):
        self.board = board
        self.toolset = toolset
        self.missing = missing
        self.directory = f"{PARENT}/{PREFIX}{secrets.token_hex(4)}"
        self.provided: list[str] = []
        self.unavailable: dict[str, str] = {}
        self.removed: bool | None = None
        self._boot_id: str | None = None

    # ---- on the board -----------------------------------------------------------------

    def install(self) -> None:
        """Copy the helper, link the missing tools it provides; raises HarnessError/OSError."""
        sftp = self.board.ssh.sftp()
        _remove_stale(sftp)
        sftp.mkdir(self.directory, 0o700)
        binary = f"{self.directory}/{self.toolset.binary.name}"
        sftp.put(str(self.toolset.binary), binary)
        sftp.chmod(binary, 0o755)
        listing = self.board.ssh.run(f"{binary} --list", timeout=30)
        applets = set(listing.stdout.split()) if listing.exit_status == 0 else set()
        self.provided, self.unavailable = [], {}
        for tool in self.missing:
            if tool in applets:
                sftp.symlink(self.toolset.binary.name, f"{self.directory}/{tool}")
                self.provided.append(tool)
            else:
                self.unavailable[tool] = (
                    f"not on the unit, and {self.toolset.package} {self.toolset.version} "
                    "has no such applet"
                    if listing.exit_status == 0
                    else f"the helper does not run on the unit: {listing.stderr.strip()[:200]}"
                )
        self._boot_id = self.board.boot_id()

    def ensure(self) -> None:
        """Put the folder back if the board booted since (a boot empties /tmp)."""
        if self.removed or self._boot_id is None:
            return
        try:
            if self.board.boot_id() != self._boot_id:
                self.install()
        except PROBLEMS:
            log.info("helper tools not put back after a boot", exc_info=True)

    def remove(self) -> None:
        """Remove the folder (over SFTP); `removed` records whether it worked."""
        if self.removed is not None:
            return
        try:
            sftp = self.board.ssh.sftp()
            _remove_folder(sftp, self.directory)
            self.removed = True
        except PROBLEMS:
            log.warning("could not remove %s from the board", self.directory, exc_info=True)
            self.removed = False

    # ---- what run.json says ------------------------------------------------------------

    def wrap(self, command: str) -> str:
        """`command` with the helper folder at the end of PATH (idempotent in a kept shell)."""
        folder = self.directory
        return f'PATH="${{PATH%:{folder}}}:{folder}"; {command}'

    def info(self, probed: list[str]) -> ToolsInfo:
        helper = HelperBinary(
            name=self.toolset.binary.name,
            sha256=self.toolset.sha256,
            package=self.toolset.package,
            version=self.toolset.version,
            deb_arch=self.toolset.deb_arch,
            provides=self.provided,
        )
        return ToolsInfo(
            probed=probed,
            missing=self.missing,
            helpers=[helper] if self.provided else [],
            unavailable=[MissingTool(name=n, reason=r) for n, r in self.unavailable.items()],
            directory=self.directory,
            removed=self.removed,
        )


def _remove_folder(sftp: Any, folder: str) -> None:
    try:
        names = sftp.listdir(folder)
    except FileNotFoundError:
        return  # a boot emptied /tmp: nothing left to remove
    for name in names:
        sftp.remove(f"{folder}/{name}")
    sftp.rmdir(folder)


def _remove_stale(sftp: Any) -> None:
    """Folders an earlier harness left (killed before it could clean up) go first."""
    with contextlib.suppress(OSError):
        for entry in sftp.listdir_attr(PARENT):
            if entry.filename.startswith(PREFIX) and stat.S_ISDIR(entry.st_mode or 0):
                with contextlib.suppress(OSError):
                    _remove_folder(sftp, f"{PARENT}/{entry.filename}")


class _PathChannel:
    """A command channel whose commands see the helper folder on their PATH."""

    def __init__(self, channel: CommandChannel, tools: SuppliedTools):
        self._channel, self._tools = channel, tools

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        result = self._channel.run(self._tools.wrap(command), timeout=timeout)
        return CommandResult(
            command, result.exit_status, result.stdout, result.stderr, result.duration
        )


class _PathFileChannel(_PathChannel):
    def __init__(self, channel: FileChannel, tools: SuppliedTools):
        super().__init__(channel, tools)
        self._files = channel

    def put(self, local: str | Path, remote: str) -> None:
        self._files.put(local, remote)

    def get(self, remote: str, local: str | Path) -> None:
        self._files.get(remote, local)

    def sftp(self) -> Any:
        return self._files.sftp()


class ToolsBoard:
    """The board as the tests see it while helpers are supplied (implements BoardLink).

    Delegates everything; commands get the helper folder on PATH, and after a boot the
    folder is put back before the caller goes on.
    """

    def __init__(self, board: BoardLink, tools: SuppliedTools):
        self._board, self.tools = board, tools
        self.profile = board.profile

    @property
    def boot_times(self) -> list[float]:
        return self._board.boot_times

    @property
    def last_settle(self) -> Any:
        return self._board.last_settle

    @property
    def console(self) -> CommandChannel:
        return _PathChannel(self._board.console, self.tools)

    @property
    def ssh(self) -> FileChannel:
        return _PathFileChannel(self._board.ssh, self.tools)

    @property
    def has_ssh(self) -> bool:
        return self._board.has_ssh

    @property
    def state(self) -> BoardState:
        return self._board.state

    @property
    def crash_events(self) -> Any:
        return self._board.crash_events

    @property
    def machine_stats(self) -> Any:
        return self._board.machine_stats

    def ensure_shell(self) -> None:
        self._board.ensure_shell()
        self.tools.ensure()

    def reboot(self, command: str = "reboot", restart_within: float | None = None) -> float:
        seconds = self._board.reboot(self.tools.wrap(command), restart_within)
        self.tools.ensure()
        return seconds

    def power_cycle(self) -> float:
        seconds = self._board.power_cycle()
        self.tools.ensure()
        return seconds

    def boot_id(self) -> str:
        return self._board.boot_id()

    def software_identity(self) -> Any:
        return self._board.software_identity()

    def close(self) -> None:
        self.tools.remove()
        self._board.close()


def supply(
    board: BoardLink, tools: list[str], toolset_for: Any = None
) -> tuple[BoardLink, ToolsInfo]:
    """Probe `tools`; if any is missing, supply helpers. Returns the board the run should use
    (wrapped when helpers were supplied) and what run.json records. Never raises a lab
    problem: a tool that cannot be supplied is recorded, and the tests that use it fail."""
    if toolset_for is None:
        from harness.vlab.toolset import toolset_for
    probed = list(dict.fromkeys(tools))
    try:
        missing = probe(board, probed)
    except (HarnessError, BoardFault) as exc:
        why = f"could not look the tools up on the unit: {exc}"
        return board, ToolsInfo(probed=probed, unavailable=[MissingTool(name="*", reason=why)])
    if not missing:
        return board, ToolsInfo(probed=probed)

    def unsupplied(reason: str) -> tuple[BoardLink, ToolsInfo]:
        return board, ToolsInfo(
            probed=probed,
            missing=missing,
            unavailable=[MissingTool(name=tool, reason=reason) for tool in missing],
        )

    if not board.has_ssh:
        return unsupplied("missing, and the board has no SSH to copy a helper over")
    try:
        toolset = toolset_for(board.profile.identity.arch)
    except (HarnessError, OSError) as exc:
        return unsupplied(f"missing, and no helper toolset could be had: {exc}")
    supplied = SuppliedTools(board, toolset, missing)
    try:
        supplied.install()
    except PROBLEMS as exc:
        supplied.remove()
        return unsupplied(f"missing, and copying the helper to the unit failed: {exc}")
    return ToolsBoard(board, supplied), supplied.info(probed)
