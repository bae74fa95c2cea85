"""Commands and file transfer over SSH (paramiko), with exit status and separate stderr.

The address and credentials come from labgrid's `NetworkService` resource, so a
physical lab and the virtual lab are reached the same way. Host keys are
checked per hostkeys.py.

Failure meanings: `SSHConnectFailed` (could not open a session),
`SSHLinkLost` (an open link died: power off, reboot, network), both lab
errors; `CommandTimeout` when a command overran but the link still answers
(the test's problem). Note that QEMU user networking accepts TCP connections on
the forwarded port even while the guest is down, so a TCP connect proves
nothing: `wait_ready()` only returns once a command has succeeded.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from pathlib import Path

import paramiko

from harness.lab.consolelog import ConsoleLog
from harness.lab.errors import (
    CommandTimeout,
    HostKeyRejected,
    SSHConnectFailed,
    SSHLinkLost,
)
from harness.lab.hostkeys import HostKeyPolicy
from harness.lab.result import CommandResult

# Errors paramiko and the socket layer raise when a link dies under us.
LINK_ERRORS = (paramiko.SSHException, EOFError, OSError, socket.timeout)
PROBE_TIMEOUT = 3.0


class SSHSession:
    """One SSH connection to a board; reconnects on demand after a reboot."""

    def __init__(
        self,
        address: str,
        port: int,
        username: str,
        password: str | None = None,
        key_file: str | None = None,
        host_keys: HostKeyPolicy | None = None,
        connect_timeout: float = 10.0,
        log: ConsoleLog | None = None,
    ):
        self.address = address
        self.port = port
        self.username = username
        self.password = password
        self.key_file = key_file
        self.host_keys = host_keys or HostKeyPolicy()
        self.connect_timeout = connect_timeout
        self.log = log
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    @classmethod
    def from_network_service(
        cls,
        service: object,
        host_keys: HostKeyPolicy,
        key_file: str | None = None,
        log: ConsoleLog | None = None,
    ) -> SSHSession:
        """From a labgrid NetworkService resource (address, port, username, password)."""
        return cls(
            address=service.address,  # type: ignore[attr-defined]
            port=service.port,  # type: ignore[attr-defined]
            username=service.username,  # type: ignore[attr-defined]
            password=service.password,  # type: ignore[attr-defined]
            key_file=key_file,
            host_keys=host_keys,
            log=log,
        )

    # --- connection ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        return bool(transport and transport.is_active())

    def connect(self) -> None:
        """Open the connection (no-op when open). Raises SSHConnectFailed, HostKeyRejected."""
        if self.connected:
            return
        self.close()
        client = paramiko.SSHClient()
        self.host_keys.apply(client, self.address, self.port)
        try:
            client.connect(
                self.address,
                port=self.port,
                username=self.username,
                password=self.password,
                key_filename=self.key_file,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except HostKeyRejected:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyRejected(
                f"SSH host key of {self.address}:{self.port} changed: got {exc.key.get_name()} "
                f"{exc.key.fingerprint}, expected {exc.expected_key.fingerprint}; this may not be "
                "the board you think it is"
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise SSHConnectFailed(
                f"SSH login as {self.username!r} on {self.address}:{self.port} was refused: {exc}"
            ) from exc
        except LINK_ERRORS as exc:
            client.close()
            raise SSHConnectFailed(
                f"cannot open SSH to {self.address}:{self.port}: {exc or type(exc).__name__}"
            ) from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(5)
            # Small request/response packets: without this, Nagle and delayed ACKs add ~40 ms.
            with contextlib.suppress(OSError):
                transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
        self._client = client

    def close(self) -> None:
        for thing in (self._sftp, self._client):
            if thing is not None:
                with contextlib.suppress(*LINK_ERRORS):
                    thing.close()
        self._sftp = None
        self._client = None

    def reconnect(self) -> None:
        self.close()
        self.connect()

    def wait_ready(self, timeout: float) -> float:
        """Reconnect and retry until `true` succeeds over SSH; seconds it took.

        Raises SSHConnectFailed when no command succeeded within `timeout`.
        """
        started = time.monotonic()
        last: Exception | None = None
        while time.monotonic() - started < timeout:
            try:
                self.connect()
                if self.run("true", timeout=max(1.0, min(10.0, timeout))).ok:
                    return time.monotonic() - started
            except HostKeyRejected:
                raise
            except (SSHConnectFailed, SSHLinkLost, CommandTimeout) as exc:
                last = exc
                self.close()
            time.sleep(0.2)
        raise SSHConnectFailed(
            f"no SSH command succeeded on {self.address}:{self.port} within {timeout:g} s"
            + (f" (last: {last})" if last else "")
        )

    def _transport(self) -> paramiko.Transport:
        self.connect()
        assert self._client is not None
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise SSHLinkLost(f"SSH link to {self.address}:{self.port} is down")
        return transport

    # --- commands -----------------------------------------------------------------------
    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        """Run `command` in a fresh channel; exit status, stdout and stderr kept apart.

        Raises CommandTimeout (link still answers), SSHLinkLost (it does not).
        """
        transport = self._transport()
        started = time.perf_counter()
        try:
            channel = transport.open_session(timeout=min(timeout, self.connect_timeout))
            channel.exec_command(command)
            out, err = self._collect(channel, time.monotonic() + timeout)
        except _Overran as overran:
            self._after_timeout(command, timeout)
            raise CommandTimeout(command, timeout, overran.output, via="ssh") from None
        except LINK_ERRORS as exc:
            self._drop()
            raise SSHLinkLost(
                f"SSH link to {self.address}:{self.port} dropped while running {command!r}: "
                f"{exc or type(exc).__name__}"
            ) from exc
        status = channel.recv_exit_status()
        channel.close()
        if status < 0:
            # The channel closed without an exit status: the server or the link went away.
            self._drop()
            raise SSHLinkLost(
                f"SSH link to {self.address}:{self.port} closed before {command!r} reported its exit status"
            )
        result = CommandResult(
            command=command,
            exit_status=status,
            stdout=out.decode("utf-8", errors="replace"),
            stderr=err.decode("utf-8", errors="replace"),
            duration=time.perf_counter() - started,
        )
        if self.log is not None:
            self.log.note(f"ssh: {command} -> exit {status}")
        return result

    def _collect(self, channel: paramiko.Channel, deadline: float) -> tuple[bytes, bytes]:
        out, err = bytearray(), bytearray()
        while True:
            while channel.recv_ready():
                out += channel.recv(65536)
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
            if channel.exit_status_ready() and channel.eof_received:
                if not channel.recv_ready() and not channel.recv_stderr_ready():
                    return bytes(out), bytes(err)
                continue
            if channel.closed:
                return bytes(out), bytes(err)
            if not channel.get_transport().is_active():  # type: ignore[union-attr]
                raise EOFError("transport closed")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                channel.close()
                raise _Overran(out.decode("utf-8", errors="replace"))
            select.select([channel], [], [], min(remaining, 0.2))

    def _after_timeout(self, command: str, timeout: float) -> None:
        """A command overran: a link that cannot run `true` either is lost (board hung or off)."""
        try:
            transport = self._transport()
            probe = transport.open_session(timeout=PROBE_TIMEOUT)
            probe.exec_command("true")
            self._collect(probe, time.monotonic() + PROBE_TIMEOUT)
            probe.close()
        except (_Overran, *LINK_ERRORS) as exc:
            self._drop()
            raise SSHLinkLost(
                f"{command!r} timed out after {timeout:g} s over SSH and the link no longer answers "
                "(board hung, off or rebooting)"
            ) from exc

    def _drop(self) -> None:
        self.close()

    # --- files --------------------------------------------------------------------------
    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._transport()
            assert self._client is not None
            try:
                self._sftp = self._client.open_sftp()
            except LINK_ERRORS as exc:
                raise SSHLinkLost(f"cannot open SFTP on {self.address}:{self.port}: {exc}") from exc
        return self._sftp

    def sftp(self) -> paramiko.SFTPClient:
        """The session's SFTP client, for what put/get do not cover (mkdir, chmod, symlink,
        remove); its errors are paramiko's and OSError, raised as they are."""
        return self._sftp_client()

    def put(self, local: str | Path, remote: str) -> None:
        """Copy a file to the board (SFTP)."""
        try:
            self._sftp_client().put(str(local), remote)
        except LINK_ERRORS as exc:
            if isinstance(exc, OSError) and self.connected:
                raise  # a file problem (missing, no permission), not the link
            self._drop()
            raise SSHLinkLost(f"SFTP put {local} -> {remote} failed: {exc}") from exc

    def get(self, remote: str, local: str | Path) -> None:
        """Copy a file from the board (SFTP)."""
        try:
            self._sftp_client().get(remote, str(local))
        except LINK_ERRORS as exc:
            if isinstance(exc, OSError) and self.connected:
                raise  # a file problem (missing, no permission), not the link
            self._drop()
            raise SSHLinkLost(f"SFTP get {remote} -> {local} failed: {exc}") from exc


class _Overran(Exception):
    def __init__(self, output: str):
        self.output = output
