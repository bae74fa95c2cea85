"""Each built-in virtual board boots from the built images with the command qemu_command() gives.

These tests own the QEMU process and read its console UNIX socket directly
(the bench and labgrid layers are tested elsewhere), so they prove the images
and the command line alone: login prompt, a real password check, SSH with the
pinned host key, SFTP, the hardware the profile asks for, and a real kernel
panic caused through the out-of-band fault agent.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from harness.model.board import BoardProfile, find_board
from harness.vlab.artifacts import ArchArtifacts
from harness.vlab.build import build_lab
from harness.vlab.qemu_cmd import console_device, qemu_command

pytestmark = pytest.mark.qemu

BOARDS = Path(__file__).resolve().parents[2] / "boards"
# Deadlock guards only (a loaded 2-core host boots slowly); speed is measured in bench/.
BOOT_GUARD = 150.0
COMMAND_GUARD = 60.0
PANIC_MESSAGE = b"Kernel panic - not syncing"


def _die_with_test_process() -> None:
    """No QEMU may outlive the test run, even if pytest is killed."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _connect_unix(path: Path) -> socket.socket:
    """Connect to a socket QEMU is about to create (it appears within moments of launch)."""
    deadline = time.monotonic() + COMMAND_GUARD
    while True:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(str(path))
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _qmp(path: Path, command: str) -> None:
    """Run one QMP command: greeting, capabilities handshake, then the command."""
    with _connect_unix(path) as qmp:
        qmp.settimeout(COMMAND_GUARD)
        replies = qmp.makefile("rb")
        assert b"QMP" in replies.readline()
        for execute in ("qmp_capabilities", command):
            qmp.sendall(json.dumps({"execute": execute}).encode() + b"\n")
            while True:
                reply = json.loads(replies.readline())
                if "event" not in reply:
                    break
            assert "return" in reply, reply


class Console:
    """The board's console socket, read by exactly one owner: this test."""

    def __init__(self, path: Path, log: Path, machine_state: Callable[[], str]):
        self.log = log
        self.machine_state = machine_state
        self.sock = _connect_unix(path)
        self.seen = b""
        self.transcript = b""

    def expect(self, pattern: bytes, guard: float = COMMAND_GUARD) -> bytes:
        """Read until `pattern` (a regex) appears in what arrived since the last match; return that text."""
        deadline = time.monotonic() + guard
        while True:
            match = re.search(pattern, self.seen)
            if match:
                text, self.seen = self.seen[: match.end()], self.seen[match.end() :]
                return text
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = self.log.read_bytes()[-2000:].decode(errors="replace")
                pytest.fail(
                    f"console never showed {pattern!r}; {self.machine_state()}; console log ends with:\n{tail}"
                )
            self.sock.settimeout(remaining)
            with contextlib.suppress(TimeoutError):
                chunk = self.sock.recv(65536)
                if not chunk:
                    pytest.fail(f"console closed while waiting for {pattern!r}")
                self.seen += chunk
                self.transcript += chunk

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def login(self, username: str, password: str) -> bytes:
        self.expect(rb"login: ")
        self.send(username)
        self.expect(rb"[Pp]assword: ")
        self.send(password)
        return self.expect(rb"(# |Login incorrect)")


class RunningBoard:
    def __init__(self, profile: BoardProfile, artifacts: ArchArtifacts, run_dir: Path):
        self.profile = profile
        self.artifacts = artifacts
        self.ssh_port = _free_port()
        self.console_log = run_dir / "console.log"
        self.agent_socket = run_dir / "agent.sock"
        self.argv = qemu_command(
            profile,
            artifacts,
            run_dir=run_dir,
            console_socket=run_dir / "console.sock",
            ssh_port=self.ssh_port,
            qmp_socket=run_dir / "qmp.sock",
            agent_socket=self.agent_socket,
            console_log=self.console_log,
        )
        # Start with the CPUs stopped (-S) and let them run only once the console
        # has its reader: QEMU drops console output nobody is connected to.
        self.stderr_log = run_dir / "qemu.stderr"
        with self.stderr_log.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [*self.argv, "-S"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=_die_with_test_process,
            )
        try:
            self.console = Console(run_dir / "console.sock", self.console_log, self.machine_state)
            _qmp(run_dir / "qmp.sock", "cont")
        except OSError as exc:
            self.stop()
            pytest.fail(
                f"QEMU did not start ({exc}); {self.machine_state()}; argv: {' '.join(self.argv)}"
            )

    def machine_state(self) -> str:
        """For failure messages: is QEMU still running, and what did it say?"""
        code = self.proc.poll()
        state = "QEMU running" if code is None else f"QEMU exited with {code}"
        errors = (
            self.stderr_log.read_text(errors="replace").strip() if self.stderr_log.exists() else ""
        )
        return state + (f" (stderr: {errors[-800:]})" if errors else "")

    def ssh(self, password: str | None = None) -> paramiko.SSHClient:
        """SSH with the build's host key pinned: any other key is refused."""
        client = paramiko.SSHClient()
        key = paramiko.Ed25519Key(data=base64.b64decode(self.artifacts.host_key_base64))
        client.get_host_keys().add(f"[127.0.0.1]:{self.ssh_port}", key.get_name(), key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            "127.0.0.1",
            port=self.ssh_port,
            username=self.profile.ssh.username,
            password=password if password is not None else self.profile.ssh.password,
            allow_agent=False,
            look_for_keys=False,
            timeout=COMMAND_GUARD,
            banner_timeout=COMMAND_GUARD,
            auth_timeout=COMMAND_GUARD,
        )
        return client

    def agent(self, command: str) -> str:
        """One command to the guest's fault agent over the virtio-serial port; returns its reply line.

        The guest notices a newly connected host within about a second, so the
        link is first proven with `ping` (harmless to repeat); the command
        itself is sent exactly once, because `reset` or `panic` must not be.
        """
        with socket.socket(socket.AF_UNIX) as agent:
            agent.connect(str(self.agent_socket))
            received = b""
            deadline = time.monotonic() + COMMAND_GUARD
            while b"pong\n" not in received:
                if time.monotonic() > deadline:
                    pytest.fail(f"the fault agent never answered ping (got {received!r})")
                agent.sendall(b"ping\n")
                agent.settimeout(1.0)
                with contextlib.suppress(TimeoutError):
                    received += agent.recv(4096)
            if command == "ping":
                return "pong"
            received = received[received.rindex(b"pong\n") + 5 :].replace(b"pong\n", b"")
            agent.sendall(command.encode() + b"\n")
            agent.settimeout(COMMAND_GUARD)
            while b"\n" not in received:
                chunk = agent.recv(4096)
                if not chunk:
                    break
                received += chunk.replace(b"pong\n", b"")
            return received.decode().split("\n")[0].strip()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@contextlib.contextmanager
def booted(board_name: str, run_dir: Path) -> Iterator[RunningBoard]:
    profile = find_board(board_name, BOARDS)
    artifacts = build_lab([profile.identity.arch])[profile.identity.arch]
    board = RunningBoard(profile, artifacts, run_dir)
    try:
        yield board
    finally:
        board.stop()


def run(client: paramiko.SSHClient, command: str) -> tuple[int, str]:
    _stdin, stdout, _stderr = client.exec_command(command, timeout=COMMAND_GUARD)
    output = stdout.read().decode()
    return stdout.channel.recv_exit_status(), output


def wait_for_block_devices(client: paramiko.SSHClient, names: list[str]) -> None:
    """Wait (on the board, bounded) until every named disk is in /sys/block.

    The login prompt comes before slower buses finish: USB mass storage shows up as a
    disk seconds after it enumerates, as on real hardware (the harness's own inventory
    check waits likewise).
    """
    polls = int(COMMAND_GUARD * 10)
    tests = " && ".join(f"[ -e /sys/block/{name} ]" for name in names)
    status, _ = run(
        client,
        f"i=0; until {tests}; do i=$((i + 1)); [ $i -ge {polls} ] && exit 1; sleep 0.1; done",
    )
    assert status == 0, f"disks {names} did not all appear within {COMMAND_GUARD:.0f} s"


def sftp_round_trip(client: paramiko.SSHClient, tmp_path: Path) -> None:
    """Put and get a file, and check it on the board while the SFTP channel is still open.

    Debian 12's dropbear (2022.83) may close a session channel opened just after
    another channel's process exited (upstream dropbear issues #173 and #321,
    fixed in 2024.86); paramiko's SFTP close does not wait for sftp-server to
    exit, so the next exec would race it. Keeping SFTP open, as the harness's
    SSH session does, avoids that.
    """
    payload = bytes(range(256)) * 512
    local = tmp_path / "payload.bin"
    local.write_bytes(payload)
    with client.open_sftp() as sftp:
        sftp.put(str(local), "/tmp/payload.bin")
        sftp.get("/tmp/payload.bin", str(tmp_path / "back.bin"))
        status, output = run(client, "sha256sum /tmp/payload.bin")
    assert status == 0
    assert output.split()[0] == hashlib.sha256(payload).hexdigest()
    assert (tmp_path / "back.bin").read_bytes() == payload


def panic_through_agent(board: RunningBoard) -> None:
    assert board.agent("ping") == "pong"
    board.agent("panic")
    board.console.expect(re.escape(PANIC_MESSAGE))


def test_x86_64_board_boots_directly_to_login_with_ssh_sftp_hardware_and_agent_panic(
    tmp_path: Path,
) -> None:
    with booted("qemu-x86_64", tmp_path) as board:
        assert console_device(board.profile) == "ttyS0" == board.artifacts.console_device
        board.console.expect(rb"qemu-x86_64 login: ", BOOT_GUARD)
        board.console.send("root")
        board.console.expect(rb"[Pp]assword: ")
        board.console.send("not-the-password")
        board.console.expect(rb"Login incorrect")
        assert board.console.login("root", "root").endswith(b"# ")
        board.console.send("uname -m")
        board.console.expect(rb"x86_64")

        with pytest.raises(paramiko.AuthenticationException):
            board.ssh(password="wrong").close()
        client = board.ssh()
        try:
            assert run(client, "uname -m") == (0, "x86_64\n")
            assert run(client, "grep -c ^processor /proc/cpuinfo") == (0, "2\n")
            wait_for_block_devices(client, ["vda", "vdb", "sda"])
            sizes = run(client, "for d in vda vdb sda; do cat /sys/block/$d/size; done")[1].split()
            assert sizes == [str(mib * 2048) for mib in (64, 32, 16)]
            assert run(client, "readlink -f /sys/block/sda | grep -c usb") == (0, "1\n")
            # The second NIC is on its own user network, where the lab host is 10.0.3.2.
            assert run(client, "ip -4 -o addr show dev eth1 | grep -o 'inet [0-9./]*'") == (
                0,
                "inet 10.0.3.15/24\n",
            )
            assert "dev eth1" in run(client, "ip route get 10.0.3.2")[1]
            assert run(client, "cat /sys/class/dmi/id/product_name") == (0, "harness,vx86\n")
            assert run(client, "test -c /dev/watchdog && cat /sys/class/tty/ttyS1/type")[0] == 0
            assert run(client, ". /etc/os-release && echo $ID $VERSION_ID") == (
                0,
                "harness-vlab 1.0\n",
            )
            assert run(client, "hostname") == (0, "qemu-x86_64\n")
            sftp_round_trip(client, tmp_path)
        finally:
            client.close()
        panic_through_agent(board)


def test_x86_64_mini_board_has_its_own_hardware_and_an_agent_reset_reboots_it_keeping_disk_data(
    tmp_path: Path,
) -> None:
    with booted("qemu-x86_64-mini", tmp_path) as board:
        board.console.expect(rb"login: ", BOOT_GUARD)
        client = board.ssh()
        try:
            assert run(client, "grep -c ^processor /proc/cpuinfo") == (0, "1\n")
            wait_for_block_devices(client, ["vda", "vdb", "sda"])
            sizes = run(client, "for d in vda vdb sda; do cat /sys/block/$d/size; done")[1].split()
            assert sizes == [str(32 * 2048), str(48 * 2048), str(16 * 2048)]
            assert run(client, "readlink -f /sys/block/sda | grep -c usb") == (0, "1\n")
            assert run(client, "test -e /dev/watchdog")[0] == 1
            assert (
                run(client, "echo written-before-reset | dd of=/dev/vdb conv=fsync 2>/dev/null")[0]
                == 0
            )
        finally:
            client.close()
        assert board.agent("reset") == "ok reset"
        board.console.expect(rb"Linux version", BOOT_GUARD)  # a second boot, not a hang
        board.console.expect(rb"login: ", BOOT_GUARD)
        client = board.ssh()
        try:
            assert run(client, "head -c 20 /dev/vdb") == (0, "written-before-reset")
        finally:
            client.close()


def test_aarch64_board_boots_through_uboot_distro_boot_to_login_with_ssh_sftp_and_agent_panic(
    tmp_path: Path,
) -> None:
    with booted("qemu-aarch64-uboot", tmp_path) as board:
        assert board.artifacts.console_device == "ttyAMA0"
        board.console.expect(rb"U-Boot 20\d\d\.\d\d", BOOT_GUARD)
        board.console.expect(rb"Found /extlinux/extlinux.conf", BOOT_GUARD)
        board.console.expect(rb"Linux version", BOOT_GUARD)
        assert board.console.login("root", "root").endswith(b"# ")
        board.console.send("uname -m")
        board.console.expect(rb"aarch64")

        client = board.ssh()
        try:
            assert run(client, "uname -m") == (0, "aarch64\n")
            wait_for_block_devices(client, ["vda", "sda"])
            assert run(client, "cat /sys/block/vda/size")[1].strip() == str(128 * 2048)
            assert run(client, "cat /sys/block/sda/size")[1].strip() == str(32 * 2048)
            assert run(client, "hostname") == (0, "qemu-aarch64-uboot\n")
            sftp_round_trip(client, tmp_path)
        finally:
            client.close()
        panic_through_agent(board)
        log = board.console.transcript
        assert log.index(b"U-Boot 20") < log.index(b"Linux version") < log.index(PANIC_MESSAGE)
