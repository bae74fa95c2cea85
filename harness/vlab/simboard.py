"""The simulated board: a real login and a real SSH server in Linux namespaces, up in milliseconds.

Fast tests and benchmarks need a board that boots in well under a second yet
behaves like one where it matters to the harness: a console with a login
prompt and a real password check, a shell that runs real commands, and an SSH
server with exec, exit status, separate stderr and SFTP. So nothing here is
scripted: "powering on" starts busybox `init` as PID 1 of fresh mount, UTS and
PID namespaces, chrooted into a copy-on-write overlay of the host's root (a RAM
upper layer, so the board cannot change the host and forgets its writes at
power-off). Its inittab runs busybox `getty` on a pty that the bench relays to
TCP, and the host's dropbear on 127.0.0.1:<ssh port>, which runs the host's
sftp-server. Its own /etc (passwd, shadow from the profile's password,
hostname, os-release) marks it as a simulation, and the console banner says so.

Boot id: a namespace cannot get a new kernel boot id, so the bench writes a
fresh UUID per power-on and bind-mounts it over /proc/sys/kernel/random/boot_id
inside the board. Code that detects reboots by that file works unchanged.

Power off kills the namespace's PID 1 (through `unshare --kill-child`), which
makes the kernel kill every process in it: the same abrupt loss as pulling a
board's plug. Hang freezes every process of the board (SIGSTOP), resume thaws
it; reset is a power cycle; panic freezes the board after printing the
kernel's panic line on its console (a namespace cannot panic the host kernel,
and this is the one message on this board that is written by the bench).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shlex
import shutil
import signal
import subprocess
import termios
import tty
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from harness.errors import InfraError
from harness.vlab.faults import ProcessMachine
from harness.vlab.lifeline import die_with_parent
from harness.vlab.relay import ConsoleRelay

if TYPE_CHECKING:
    from harness.model.board import BoardProfile

SIM_SHELL = "/bin/ash"  # a busybox ash, like the QEMU boards' userland

_SETUP_SCRIPT = r"""#!/bin/sh
# Runs as PID 1 of the board's new namespaces, then becomes busybox init.
set -eu
d=$SIM_DIR
root=$d/root
mount -t tmpfs -o size=256m,mode=0755 sim-ram "$d/ram"
mkdir -p "$d/ram/upper" "$d/ram/work"
mount -t overlay sim-root -o "lowerdir=/,upperdir=$d/ram/upper,workdir=$d/ram/work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mkdir -p "$root/root" "$root/etc/harness-sim"
cp "$d/etc/"* "$root/etc/"
cp "$d/hostkey" "$d/rcS" "$d/power_on" "$root/etc/harness-sim/"
ln -sf /bin/busybox "$root/bin/ash"
mount --bind "$d/boot_id" "$root/proc/sys/kernel/random/boot_id"
hostname "$SIM_HOSTNAME"
cd "$root"
# The board shares the host's kernel, but the host's kernel log is not the board's: without
# CAP_SYSLOG (and with the kernel's dmesg_restrict, Debian's default) nothing on the board
# can read it, so an oops of some host process never reads as a crash of this board.
exec setpriv --bounding-set -syslog chroot "$root" /bin/busybox env -i CONSOLE="$SIM_TTY" PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/busybox init
"""


def _rcs(name: str) -> str:
    return (
        "#!/bin/sh\n"
        "printf '\\n*** Harness SIMULATED board %s: not hardware, not QEMU - a busybox userland in '"
        "'Linux namespaces on the lab host ***\\n' " + shlex.quote(name) + "\n"
        "printf 'power-on #%s  boot id %s\\n' \"$(cat /etc/harness-sim/power_on)\" "
        '"$(cat /proc/sys/kernel/random/boot_id)"\n'
    )


class SimMachine(ProcessMachine):
    """The sim board's "hardware": a namespace tree plus a pty standing in for its UART."""

    kind = "sim"

    def __init__(
        self,
        name: str,
        password: str | None,
        state_dir: Path,
        relay: ConsoleRelay,
        ssh_port: int,
    ):
        self.name = name
        self.password = password
        self.dir = state_dir / "sim"
        self.relay = relay
        self.ssh_port = ssh_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.boot_count = 0
        self.boot_id: str | None = None
        self.paused = False
        self.ssh_host_key = ""
        self._ns: int | None = None
        # The UART exists while the bench does: keeping the slave open means the relay never
        # sees a hang-up between logins or power cycles, just as a real adapter would not.
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.tty_path = os.ttyname(self._slave)
        self._prepare()
        relay.attach(self._master)

    # -- one-time preparation -----------------------------------------------------------------

    def _prepare(self) -> None:
        for sub in ("etc", "ram", "root"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        key = self.dir / "hostkey"
        out = _run(["dropbearkey", "-t", "ed25519", "-f", str(key)])
        self.ssh_host_key = next(
            (line.strip() for line in out.splitlines() if line.startswith("ssh-ed25519 ")), ""
        )
        self.ssh_host_key = " ".join(self.ssh_host_key.split()[:2])
        (self.dir / "init.sh").write_text(_SETUP_SCRIPT)
        (self.dir / "rcS").write_text(_rcs(self.name))
        self._write_etc()

    def _write_etc(self) -> None:
        password = self.password or ""
        crypted = (
            _run(["busybox", "mkpasswd", "-m", "sha512", password]).strip() if password else ""
        )
        etc = self.dir / "etc"
        hostname = f"sim-{self.name}"[:63]
        files = {
            "passwd": f"root:x:0:0:root:/root:{SIM_SHELL}\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "shadow": f"root:{crypted}:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
            "group": "root:x:0:\nnogroup:x:65534:\n",
            "shells": f"{SIM_SHELL}\n/bin/sh\n",
            "hostname": hostname + "\n",
            "issue": "Harness simulated board (namespaces on the lab host)\n\n",
            "motd": "This is a SIMULATED board: writes go to RAM and vanish at power-off.\n",
            "os-release": 'NAME="Harness Simulated Board"\nID=harness-sim\n'
            'PRETTY_NAME="Harness Simulated Board (not hardware)"\nVERSION_ID="1"\n',
            "profile": "export PS1='\\u@\\h:\\w\\$ '\nexport HOME=/root\ncd /root 2>/dev/null\n",
            "inittab": "::sysinit:/bin/busybox sh /etc/harness-sim/rcS\n"
            f"::respawn:/usr/sbin/dropbear -F -p 127.0.0.1:{self.ssh_port} "
            "-r /etc/harness-sim/hostkey -P /run/dropbear.pid\n"
            f"::respawn:/bin/busybox getty -L 115200 {self.tty_path} vt100\n",
        }
        for file_name, text in files.items():
            (etc / file_name).write_text(text)
        (etc / "shadow").chmod(0o600)
        self._hostname = hostname

    # -- power --------------------------------------------------------------------------------

    async def power_on(self) -> None:
        if self.powered:
            return
        self.boot_count += 1
        self.boot_id = str(uuid.uuid4())
        (self.dir / "boot_id").write_text(self.boot_id + "\n")
        (self.dir / "power_on").write_text(f"{self.boot_count}\n")
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "SIM_DIR": str(self.dir),
            "SIM_TTY": self.tty_path,
            "SIM_HOSTNAME": self._hostname,
        }
        self._ns = None
        # Keys typed while the board was off must not become the first login name.
        termios.tcflush(self._slave, termios.TCIFLUSH)
        log = open(self.dir / "init.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--uts",
                    "--pid",
                    "--fork",
                    "--kill-child=SIGKILL",
                    "--propagation",
                    "private",
                    "/bin/sh",
                    str(self.dir / "init.sh"),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()
        self.paused = False

    async def power_off(self) -> None:
        ns = self._ns_inode()
        proc, self.proc = self.proc, None
        self.paused = False
        self._ns = None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        # PID 1 of the board dies with unshare and the kernel kills the rest. Wait until every
        # process has exited (released its sockets, so the next power-on can bind the SSH port);
        # the zombies the kernel takes ~1 s more to reap hold nothing and are not waited for.
        for _ in range(500):
            if ns is None or not _live_pids_in_namespace(ns):
                break
            await asyncio.sleep(0.005)

    async def power_cycle(self) -> None:
        await self.power_off()
        await self.power_on()

    # -- faults -------------------------------------------------------------------------------

    async def hang(self) -> None:
        self._require_power("hang")
        self._signal_all(signal.SIGSTOP)
        self.paused = True

    async def resume(self) -> None:
        self._require_power("resume")
        self._signal_all(signal.SIGCONT)
        self.paused = False

    async def reset(self) -> None:
        self._require_power("reset")
        await self.power_cycle()

    async def panic(self) -> None:
        self._require_power("panic")
        self._signal_all(signal.SIGSTOP)
        self.paused = True
        os.write(
            self._slave,
            b"\r\n[ harness sim ] Kernel panic - not syncing: simulated panic of a "
            b"simulated board\r\n",
        )

    def status(self) -> dict[str, object]:
        if self.proc is not None and self.proc.poll() is not None:
            # Switched on but its init died: usually namespaces not permitted (not root).
            return {
                "run_state": "off",
                "last_exit": self.proc.returncode,
                "error": _tail(self.dir / "init.log"),
            }
        if not self.powered:
            return {"run_state": "off"}
        return {"run_state": "paused" if self.paused else "running"}

    async def close(self) -> None:
        await self.power_off()
        with contextlib.suppress(OSError):
            os.close(self._slave)
        shutil.rmtree(self.dir / "ram", ignore_errors=True)

    # -- helpers ------------------------------------------------------------------------------

    def _require_power(self, what: str) -> None:
        if not self.powered:
            raise InfraError(f"cannot {what} simulated board '{self.name}': it is powered off")

    def _board_pids(self) -> list[int]:
        ns = self._ns_inode()
        return _pids_in_namespace(ns) if ns is not None else []

    def _ns_inode(self) -> int | None:
        """The board's PID namespace, found through unshare's one child (the board's PID 1)."""
        if self._ns is not None:
            return self._ns
        if self.proc is None:
            return None
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            init_pid = int(children.split()[0])
            self._ns = os.stat(f"/proc/{init_pid}/ns/pid").st_ino
        except (OSError, ValueError, IndexError):
            return None
        return self._ns

    def _signal_all(self, sig: signal.Signals) -> None:
        for pid in self._board_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def realize_profile(template: Path, state_dir: Path) -> BoardProfile:
    """The sim profile with the facts this host gives the board (CPUs, memory, arch).

    A simulated board runs on the host's CPUs and memory, so a profile that
    claimed fixed numbers would make inventory checks fail or, worse, pass by
    accident on one machine only.
    """
    data = yaml.safe_load(template.read_text())
    inventory = data["inventory"]
    inventory["cpus"] = len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    inventory["memory_mib"] = total_kib // 1024
    arch = platform.machine()
    if arch in ("x86_64", "aarch64", "riscv64"):
        data["identity"]["arch"] = arch
    realized = state_dir / "profile.yaml"
    header = f"# Written by the bench of a simulated board from {template}; host facts filled in.\n"
    realized.write_text(header + yaml.safe_dump(data, sort_keys=False))
    from harness.model.board import load_board  # here only: the bench process must not need it

    return load_board(realized)


def _pids_in_namespace(ns_inode: int) -> list[int]:
    """Host pids of every process inside a PID namespace."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/pid").st_ino == ns_inode:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def _live_pids_in_namespace(ns_inode: int) -> list[int]:
    live = []
    for pid in _pids_in_namespace(ns_inode):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                    live.append(pid)
        except OSError:
            continue
    return live


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise InfraError(
            f"the simulated board needs '{argv[0]}' (run scripts/setup.sh to install it)"
        ) from None
    except subprocess.CalledProcessError as exc:
        raise InfraError(f"{' '.join(argv[:2])} failed: {exc.stderr.strip()}") from None
    return done.stdout
