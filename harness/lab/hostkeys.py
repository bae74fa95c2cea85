"""Which SSH host keys the harness accepts.

A certification result is evidence about one physical unit; a harness that
silently trusts whatever answers on the board's address could certify the
wrong machine. So an unknown key is rejected unless the lab said otherwise:

* a pinned key (the virtual lab knows its boards' keys: the env file names it),
* a known_hosts file (`ssh_known_hosts` target option, `HARNESS_SSH_KNOWN_HOSTS`,
  or ~/.ssh/known_hosts),
* trust-on-first-use, only when asked for explicitly (`ssh_trust_on_first_use: true`
  target option or `HARNESS_SSH_TRUST_ON_FIRST_USE=1`); the key is then recorded
  in the known_hosts file so the next connection is checked against it.

Target options are read from the labgrid environment file:

    targets:
      main:
        options:
          ssh_host_key: /path/to/ssh_host_ed25519_key.pub   # or the key line itself
          ssh_known_hosts: /path/to/known_hosts
          ssh_trust_on_first_use: false
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from harness.lab.errors import HostKeyRejected


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def parse_public_key(text: str) -> paramiko.PKey:
    """A key from an OpenSSH public key line ("ssh-ed25519 AAAA... comment")."""
    parts = text.split()
    if len(parts) < 2:
        raise HostKeyRejected(f"not an OpenSSH public key line: {text[:60]!r}")
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1]))
    except Exception as exc:  # paramiko raises several unrelated types for bad keys
        raise HostKeyRejected(f"cannot read the pinned SSH host key {parts[0]} ...: {exc}") from exc


def host_entry(address: str, port: int) -> str:
    """How known_hosts names a host: plain for port 22, `[addr]:port` otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


@dataclass
class HostKeyPolicy:
    pinned: list[paramiko.PKey] = field(default_factory=list)
    known_hosts: Path | None = None
    trust_on_first_use: bool = False

    @classmethod
    def from_options(cls, options: dict[str, object], base: Path | None = None) -> HostKeyPolicy:
        """Build the policy from a target's options, then the environment, then defaults."""
        pinned: list[paramiko.PKey] = []
        key = options.get("ssh_host_key")
        if key:
            text = str(key)
            candidate = Path(text) if base is None else base / text
            if not text.startswith(("ssh-", "ecdsa-")) and candidate.exists():
                text = candidate.read_text()
            pinned = [parse_public_key(line) for line in text.splitlines() if line.strip()]
        known = options.get("ssh_known_hosts") or os.environ.get("HARNESS_SSH_KNOWN_HOSTS")
        if known:
            known_path: Path | None = Path(str(known)) if base is None else base / str(known)
        else:
            known_path = Path.home() / ".ssh" / "known_hosts"
        tofu = _truthy(options.get("ssh_trust_on_first_use", False)) or _truthy(
            os.environ.get("HARNESS_SSH_TRUST_ON_FIRST_USE", "")
        )
        return cls(pinned=pinned, known_hosts=known_path, trust_on_first_use=tofu)

    def apply(self, client: paramiko.SSHClient, address: str, port: int) -> None:
        """Load the accepted keys into `client` and make it reject (or record) unknown ones."""
        entry = host_entry(address, port)
        if self.pinned:
            for key in self.pinned:
                client.get_host_keys().add(entry, key.get_name(), key)
            client.set_missing_host_key_policy(_Reject(self, entry))
            return
        if self.known_hosts is not None and self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(
            _Record(self) if self.trust_on_first_use else _Reject(self, entry)
        )


class _Reject(paramiko.MissingHostKeyPolicy):
    def __init__(self, policy: HostKeyPolicy, entry: str):
        self.policy = policy
        self.entry = entry

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        where = "the pinned key" if self.policy.pinned else f"known_hosts {self.policy.known_hosts}"
        raise HostKeyRejected(
            f"unknown SSH host key for {hostname}: {key.get_name()} {key.fingerprint} is not in {where}; "
            "add it to the known_hosts file after checking it on the board's console, or allow "
            "trust-on-first-use for this lab (target option ssh_trust_on_first_use: true)"
        )


class _Record(paramiko.MissingHostKeyPolicy):
    def __init__(self, policy: HostKeyPolicy):
        self.policy = policy

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        if self.policy.known_hosts is not None:
            self.policy.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with open(self.policy.known_hosts, "a", encoding="utf-8") as out:
                out.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
