"""Which kernel build a board runs: its GNU build id, release, version and module signing key.

`uname -r` is a string anyone can set when building a kernel; the GNU build id
in `/sys/kernel/notes` is a hash the linker computed over the kernel actually
running, so it is what vendor-kernel eligibility rests on. Everything is read
with tools a minimal busybox image has (`uname`, `od` or `hexdump`, `tail`,
`find`, `wc`), in one console command (plus one for the module signature when a
signed module is found), and parsed here rather than on the board.

The module signing key (issuer and serial of the key that signed a module the
kernel loaded) is a second, independent fact: Debian signs with a key
generated at build time, so it differs between two builds of one release. It
is None where no signed, uncompressed module is found.

Use: `read_kernel_identity(board.console)` (or `board.ssh`): anything with
`.run(cmd, timeout=...) -> CommandResult`. Repro runs should call it right
after the board is opened, next to the other facts, and record `.to_dict()`.
"""

from __future__ import annotations

import re
import struct
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from asn1crypto import cms

from harness.kernelid.notes import NoteError, build_id_from_note_section
from harness.lab.result import CommandResult

_MODULE_MAGIC = b"~Module signature appended~\n"
_SIG_INFO = 12  # struct module_signature
_PKCS7 = 2
_MAX_SIGNATURE = 16384

# One line: console sessions send one line per command. A subshell keeps the session's variables.
# d FILE OFFSET: hex bytes of FILE from OFFSET, with od or else hexdump (busybox has one of them;
# both read the file themselves, so the fallback never sees an already drained pipe).
_DUMP_FUNCTION = (
    'd() { od -An -v -tx1 -j "$2" "$1" 2>/dev/null'
    ' || hexdump -v -s "$2" -e \'16/1 " %02x" "\\n"\' "$1"; }; '
)
IDENTITY_SCRIPT = (
    "( " + _DUMP_FUNCTION + 'echo "@release $(uname -r)"; '
    'echo "@version $(uname -v)"; '
    "echo @notes; d /sys/kernel/notes 0; echo @end; "
    "m=$(sed -n '1s/ .*//p' /proc/modules 2>/dev/null); "
    'f=""; [ -n "$m" ] && f=$(find /lib/modules -name "$m.ko" -o -name "$(echo $m | tr _ -).ko" 2>/dev/null | head -n 1); '
    "sed -n 's/^.* asymmetri \\(.*\\): X509.*/@key \\1/p' /proc/keys 2>/dev/null; "
    'echo "@module $m $f"; '
    'if [ -n "$f" ]; then echo @tail; d "$f" $(( $(wc -c < "$f") - 40 )); echo @end; fi '
    ")"
)


def _tail_command(path: str, count: int) -> str:
    return (
        f"( {_DUMP_FUNCTION}echo @tail; "
        f'd "{path}" $(( $(wc -c < "{path}") - {count} )); echo @end )'
    )


class Shell(Protocol):
    def run(self, command: str, timeout: float = ...) -> CommandResult: ...


@dataclass(frozen=True)
class KernelIdentity:
    kernel_release: str | None
    kernel_version: str | None
    build_id: str | None
    """GNU build id (hex) from /sys/kernel/notes; None when the kernel does not expose it."""
    build_id_source: str | None
    module_signer: str | None
    module_sig_key: str | None
    """Serial number (hex, as `modinfo` prints sig_key) of the key that signed `module`."""
    module: str | None
    builtin_keys: tuple[str, ...] = ()
    """The kernel's built-in trusted keys from /proc/keys ("description: key id"); Debian's
    module signing key is generated per build, so its id is a second build fingerprint."""
    problem: str | None = None
    """Why a fact could not be read (kept in the record instead of failing the run)."""

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["builtin_keys"] = list(self.builtin_keys)
        return record


def _hex_block(lines: list[str], start: int) -> tuple[bytes, int]:
    """Bytes from od/hexdump lines after index `start` up to "@end"."""
    data = bytearray()
    index = start
    while index < len(lines) and lines[index].strip() != "@end":
        for token in lines[index].split():
            if re.fullmatch(r"[0-9a-fA-F]{2}", token):
                data.append(int(token, 16))
        index += 1
    return bytes(data), index


def _tagged(output: str) -> tuple[dict[str, str], dict[str, bytes], list[str]]:
    values: dict[str, str] = {}
    keys: list[str] = []
    blocks: dict[str, bytes] = {}
    lines = output.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if line in ("@notes", "@tail"):
            blocks[line[1:]], index = _hex_block(lines, index + 1)
        elif line.startswith("@key "):
            keys.append(line[5:].strip())
        elif line.startswith("@"):
            tag, _, rest = line[1:].partition(" ")
            values[tag] = rest.strip()
        index += 1
    return values, blocks, keys


def signature_signer(signed_tail: bytes) -> tuple[str, str]:
    """(issuer, serial hex) of the key that signed a module, from the file's signed tail.

    Raises ValueError when the tail is not a PKCS#7 module signature.
    """
    if not signed_tail.endswith(_MODULE_MAGIC):
        raise ValueError("no module signature")
    info = signed_tail[-len(_MODULE_MAGIC) - _SIG_INFO : -len(_MODULE_MAGIC)]
    _algo, _hash, id_type, _signer_len, _key_len, sig_len = struct.unpack(">BBBBB3xI", info)
    if id_type != _PKCS7 or sig_len > _MAX_SIGNATURE:
        raise ValueError("not a PKCS#7 module signature")
    end = len(signed_tail) - len(_MODULE_MAGIC) - _SIG_INFO
    if sig_len > end:
        raise ValueError("signature longer than the bytes read")
    try:
        signed = cms.ContentInfo.load(signed_tail[end - sig_len : end])
        sid = signed["content"]["signer_infos"][0]["sid"]
        if sid.name == "issuer_and_serial_number":
            issuer = (
                sid.chosen["issuer"].native.get("common_name")
                or sid.chosen["issuer"].human_friendly
            )
            return str(issuer), f"{sid.chosen['serial_number'].native:X}"
        return "", sid.chosen.native.hex().upper()
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable PKCS#7 signature ({exc})") from None


def _module_signer(shell: Shell, path: str, last_bytes: bytes, timeout: float) -> tuple[str, str]:
    """Signer of the module at `path`, given its last 40 bytes; reads just the signature over `shell`."""
    if not last_bytes.endswith(_MODULE_MAGIC):
        raise ValueError("module is not signed")
    (sig_len,) = struct.unpack(">I", last_bytes[-len(_MODULE_MAGIC) - 4 : -len(_MODULE_MAGIC)])
    if sig_len > _MAX_SIGNATURE:
        raise ValueError("module signature is implausibly long")
    need = sig_len + _SIG_INFO + len(_MODULE_MAGIC)
    blocks = _tagged(shell.run(_tail_command(path, need), timeout=timeout).stdout)[1]
    return signature_signer(blocks.get("tail", b""))


def read_kernel_identity(shell: Shell, timeout: float = 60.0) -> KernelIdentity:
    """The running kernel's identity, read over `shell` (a console or SSH session)."""
    values, blocks, keys = _tagged(shell.run(IDENTITY_SCRIPT, timeout=timeout).stdout)
    problems: list[str] = []
    build_id = None
    notes = blocks.get("notes", b"")
    if notes:
        try:
            build_id = build_id_from_note_section(notes)
        except NoteError as exc:
            problems.append(f"/sys/kernel/notes: {exc}")
        if build_id is None and not problems:
            problems.append("/sys/kernel/notes has no GNU build id note")
    else:
        problems.append("/sys/kernel/notes is not readable")
    module, _, path = values.get("module", "").partition(" ")
    signer = sig_key = None
    if path:
        try:
            signer, sig_key = _module_signer(shell, path, blocks.get("tail", b""), timeout)
        except ValueError as exc:
            problems.append(f"module {module}: {exc}")
    return KernelIdentity(
        kernel_release=values.get("release") or None,
        kernel_version=values.get("version") or None,
        build_id=build_id,
        build_id_source="/sys/kernel/notes" if build_id else None,
        module_signer=signer,
        module_sig_key=sig_key,
        module=module or None,
        builtin_keys=tuple(keys),
        problem="; ".join(problems) or None,
    )
