"""SSH command round trip and SFTP throughput: paramiko (SSHSession) against OpenSSH.

Per board: `SSHSession.run("echo N")` against `ssh` through an established
ControlMaster (each command a new process, as a script would call it); then a file
of random bytes copied to the board and back with `SSHSession.put/get` (SFTP) and
with `scp`. Every answer and every copied file is checked (sha256). OpenSSH logs in
with the board's password through SSH_ASKPASS; the board's host key is pinned.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

from bench.context import Context, ssh_material
from bench.core import Row, check, ratio, timed
from harness.lab.board import Board

TITLE = "SSH command and SFTP"
BASELINE = "OpenSSH `ssh` through a ControlMaster; `scp`"
MiB = 1 << 20
GUARD = 600


class OpenSSH:
    def __init__(self, port: int, known: Path, env: dict[str, str], folder: Path):
        self.env = env
        self.control = folder / "ctl"
        self.options = [
            "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
            "-o", f"ControlPath={self.control}", "-o", "PubkeyAuthentication=no",
            "-o", "BatchMode=no", "-o", "LogLevel=ERROR",
        ]  # fmt: skip
        self.port = port
        self.master = subprocess.Popen(
            ["ssh", "-M", "-N", "-o", "ControlPersist=no", "-p", str(port), *self.options, "root@127.0.0.1"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while self._check() != 0:
            if self.master.poll() is not None:
                check(False, f"ssh master exited: {self._stderr()}")
            check(time.monotonic() < deadline, "ssh master did not come up in 60 s")
            time.sleep(0.05)

    def _stderr(self) -> str:
        return self.master.stderr.read().decode(errors="replace") if self.master.stderr else ""

    def _check(self) -> int:
        return subprocess.run(
            ["ssh", "-O", "check", *self.options, "-p", str(self.port), "root@127.0.0.1"],
            env=self.env, capture_output=True, check=False, timeout=GUARD,
        ).returncode  # fmt: skip

    def run(self, command: str) -> str:
        done = subprocess.run(
            ["ssh", "-p", str(self.port), *self.options, "root@127.0.0.1", command],
            env=self.env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=GUARD,
        )  # fmt: skip
        check(done.returncode == 0, f"ssh {command!r} exited {done.returncode}: {done.stderr}")
        return done.stdout

    def scp(self, source: str, dest: str) -> None:
        done = subprocess.run(
            ["scp", "-q", "-P", str(self.port), *self.options, source, dest],
            env=self.env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=GUARD,
        )  # fmt: skip
        check(done.returncode == 0, f"scp {source} {dest} exited {done.returncode}: {done.stderr}")

    def close(self) -> None:
        self.master.terminate()
        self.master.wait(timeout=30)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(ctx: Context) -> Row:
    row = Row("ssh", TITLE, BASELINE)
    count = ctx.n(200, 20)
    for ref in ctx.boards():
        folder = ctx.folder("ssh")
        size = ctx.n(64, 1) * MiB
        payload = folder / "payload.bin"
        payload.write_bytes(os.urandom(size))
        digest = _sha(payload)
        with ctx.board(ref) as running:
            known, env = ssh_material(running, folder)
            board = Board.open(running.profile, running.env_file, console_log=folder / "c.log")
            openssh = OpenSSH(running.ssh_port, known, env, folder)
            try:
                ssh = board.ssh
                ssh.wait_ready(120)
                numbers = iter(range(count))

                def ours(numbers=numbers, ssh=ssh) -> None:
                    index = next(numbers)
                    result = ssh.run(f"echo {index}")
                    check(result.stdout == f"{index}\n", f"SSHSession answered {result.stdout!r}")

                mine = timed(ours, count)
                others = iter(range(count))

                def theirs(others=others, openssh=openssh) -> None:
                    index = next(others)
                    check(openssh.run(f"echo {index}") == f"{index}\n", "ssh answered wrongly")

                base = timed(theirs, count)
                put, get, scp_to, scp_from = [], [], [], []
                for attempt in range(1):
                    back = folder / f"back-{attempt}.bin"
                    put += timed(
                        lambda ssh=ssh, payload=payload: ssh.put(payload, "/tmp/bench-sftp.bin"),
                        1,
                    )
                    get += timed(lambda back=back, ssh=ssh: ssh.get("/tmp/bench-sftp.bin", back), 1)
                    check(_sha(back) == digest, "SFTP round trip changed the bytes")
                    back.unlink()
                    # A QEMU board's /tmp is RAM: one copy at a time.
                    ssh.run("rm -f /tmp/bench-sftp.bin")
                    remote = "root@127.0.0.1:/tmp/bench-scp.bin"
                    scp_to += timed(lambda o=openssh, p=payload, r=remote: o.scp(str(p), r), 1)
                    scp_from += timed(lambda back=back, o=openssh, r=remote: o.scp(r, str(back)), 1)
                    check(_sha(back) == digest, "scp round trip changed the bytes")
                    back.unlink()
                ssh.run("rm -f /tmp/bench-scp.bin")
                with ctx.profiled(f"sftp-{ref}"):  # an extra copy: profiling slows it
                    ssh.put(payload, "/tmp/bench-sftp.bin")
                ssh.run("rm -f /tmp/bench-sftp.bin /tmp/bench-scp.bin")
            finally:
                openssh.close()
                board.close()
        mb = size / 1e6
        theirs_s = row.add(f"{ref}: OpenSSH ssh (ControlMaster)", base, baseline=True)
        ours_s = row.add(f"{ref}: SSHSession.run (paramiko)", mine)
        sftp = row.add(
            f"{ref}: SFTP put + get, {size // MiB} MiB each way",
            [2 * mb / (p + g) for p, g in zip(put, get, strict=True)],
            "MB/s",
        )
        scp = row.add(
            f"{ref}: scp to + from, {size // MiB} MiB each way",
            [2 * mb / (p + g) for p, g in zip(scp_to, scp_from, strict=True)],
            "MB/s",
            True,
        )
        row.add(f"{ref}: SFTP put", [mb / s for s in put], "MB/s")
        row.add(f"{ref}: SFTP get", [mb / s for s in get], "MB/s")
        row.add(f"{ref}: scp to board", [mb / s for s in scp_to], "MB/s", True)
        row.add(f"{ref}: scp from board", [mb / s for s in scp_from], "MB/s", True)
        row.ok(
            f"{ref}: {2 * count} commands answered; {4 * len(put)} copies of {size // MiB} MiB with equal sha256"
        )
        row.target(f"{ref}: SSHSession.run / OpenSSH (median)", ratio(ours_s, theirs_s), "<=", 0.7)
        row.target(f"{ref}: SFTP / scp throughput", sftp.median / scp.median, ">=", 0.8)
    return row
