"""Crash watch classification, table-tested with console excerpts written for these tests.

Each sample is what a lab engineer would see on a serial console (printk
timestamps, ANSI junk, CRLF line ends); the watch must name the right kind and
keep the context lines, and must stay silent on a healthy boot.
"""

from __future__ import annotations

import pytest

from harness.lab.crashwatch import CrashWatch

SAMPLES: list[tuple[str, str, str, str]] = [
    # (kind, severity, excerpt, text the excerpt must contain)
    (
        "panic",
        "fatal",
        "[  212.004411] sysrq: Trigger a crash\r\n"
        "[  212.004923] Kernel panic - not syncing: sysrq triggered crash\r\n"
        "[  212.005310] CPU: 1 PID: 733 Comm: sh Not tainted 6.1.0-21-arm64 #1  Debian 6.1.90-1\r\n"
        "[  212.005802] Hardware name: Acme SBC-7 rev B (DT)\r\n",
        "Hardware name: Acme SBC-7",
    ),
    (
        "oops",
        "error",
        "[   88.120001] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000010\r\n"
        "[   88.120555] Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP\r\n"
        "[   88.121002] Modules linked in: spidev gpio_acme(O)\r\n",
        "Modules linked in",
    ),
    (
        "oops",
        "error",
        "[ 1024.777000] Oops: 0002 [#1] PREEMPT SMP NOPTI\r\n[ 1024.777100] RIP: 0010:acme_irq+0x2c/0x90 [acme]\r\n",
        "RIP: 0010:acme_irq",
    ),
    (
        "bug",
        "error",
        "[   45.000100] BUG: kernel NULL pointer dereference, address: 0000000000000008\r\n"
        "[   45.000200] #PF: supervisor read access in kernel mode\r\n",
        "#PF: supervisor read access",
    ),
    ("bug", "error", "[   77.1] kernel BUG at mm/slub.c:4321!\r\n", "mm/slub.c"),
    (
        "warning",
        "warning",
        "[   13.371337] WARNING: CPU: 0 PID: 1 at drivers/net/phy/phy.c:1135 phy_error+0x20/0x60\r\n"
        "[   13.371400] Call trace:\r\n",
        "Call trace:",
    ),
    (
        "warning",
        "warning",
        "WARNING: at kernel/sched/core.c:6032 schedule+0x10/0x80()\r\n",
        "core.c:6032",
    ),
    (
        "hung-task",
        "error",
        "[  483.550000] INFO: task kworker/u8:2:155 blocked for more than 120 seconds.\r\n"
        '[  483.550100] "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.\r\n',
        "hung_task_timeout_secs",
    ),
    (
        "soft-lockup",
        "error",
        "[  301.100000] watchdog: BUG: soft lockup - CPU#2 stuck for 23s! [acme-fw:412]\r\n",
        "CPU#2 stuck",
    ),
    (
        "hard-lockup",
        "error",
        "[  999.000001] NMI watchdog: Watchdog detected hard LOCKUP on cpu 3\r\n",
        "hard LOCKUP on cpu 3",
    ),
    (
        "rcu-stall",
        "error",
        "[  640.200000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\r\n"
        "[  640.200050] rcu:     1-...!: (0 ticks this GP) idle=4b4/1/0x4000000000000000\r\n",
        "ticks this GP",
    ),
    (
        "rcu-stall",
        "error",
        "[  640.2] rcu: INFO: rcu_sched self-detected stall on CPU\r\n",
        "self-detected stall",
    ),
    (
        "init-segfault",
        "fatal",
        "[    3.410000] init[1]: segfault at 0 ip 00007f1c2a3b4c5d sp 00007ffd1e2f3a40 error 4 in libc.so.6\r\n"
        "[    3.420000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\r\n",
        "Attempted to kill init",
    ),
    (
        "segfault",
        "warning",
        "[  150.000000] acme-daemon[812]: segfault at 18 ip 000055d0c0ffee00 sp 00007ffc00000000 error 6\r\n",
        "acme-daemon[812]",
    ),
    (
        "oom-kill",
        "error",
        "[ 5000.000000] Out of memory: Killed process 2211 (stress-ng) total-vm:812344kB, anon-rss:790000kB\r\n",
        "stress-ng",
    ),
    (
        "no-root-fs",
        "fatal",
        "[    2.900000] VFS: Unable to mount root fs on unknown-block(179,2)\r\n",
        "unknown-block(179,2)",
    ),
    (
        "watchdog-reset",
        "fatal",
        "U-Boot SPL 2023.04 (Mar 02 2024 - 10:00:00 +0000)\r\nReset cause: WDOG\r\n",
        "Reset cause: WDOG",
    ),
    ("watchdog-reset", "fatal", "[ 700.0] softdog: Initiating system reboot\r\n", "softdog"),
    (
        "fs-error",
        "error",
        "[  120.1] EXT4-fs error (device mmcblk0p2): ext4_lookup:1785: inode #2: comm ls: deleted inode referenced\r\n",
        "mmcblk0p2",
    ),
    (
        "bad-access",
        "error",
        "[   60.0] general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP\r\n",
        "non-canonical",
    ),
]


@pytest.mark.parametrize(
    ("kind", "severity", "excerpt", "context"), SAMPLES, ids=[s[0] for s in SAMPLES]
)
def test_each_crash_signature_is_classified_with_its_context(
    kind: str, severity: str, excerpt: str, context: str
) -> None:
    watch = CrashWatch()
    watch.arm()
    watch.feed(excerpt.encode())
    watch.flush()
    matching = [e for e in watch.events if e.kind == kind]
    assert matching, f"no {kind} in {[e.kind for e in watch.events]} for {excerpt!r}"
    assert matching[0].severity == severity
    assert context in matching[0].excerpt


HEALTHY_BOOT = (
    "U-Boot 2023.01+dfsg-2 (Jan 10 2024 - 12:00:00 +0000)\r\n"
    "DRAM:  1 GiB\r\n"
    "Hit any key to stop autoboot:  0 \r\n"
    "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd070]\r\n"
    "[    0.000000] Linux version 6.1.0-21-arm64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP\r\n"
    "[    0.512000] watchdog: Delayed init of the lockup detector failed: -19\r\n"
    "[    1.100000] EXT4-fs (vda2): mounted filesystem with ordered data mode. Quota mode: none.\r\n"
    "[    1.200000] random: crng init done\r\n"
    "\x1b[0;32mOK\x1b[0m Started getty on ttyAMA0\r\n"
    "acme login: "
)


def test_a_healthy_boot_with_bootloader_and_kernel_banner_is_clean() -> None:
    watch = CrashWatch()
    watch.feed(HEALTHY_BOOT.encode())
    watch.flush()
    assert watch.events == []


def test_a_kernel_banner_after_the_board_was_up_is_an_unexpected_reset() -> None:
    watch = CrashWatch()
    watch.feed(HEALTHY_BOOT.encode() + b"root\r\n# \x1b[6n")
    watch.arm()
    watch.feed(
        b"\r\n[    0.000000] Linux version 6.1.0-21-arm64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP\r\n"
    )
    assert [e.kind for e in watch.events] == ["unexpected-reset"]
    assert "Linux version" in watch.events[0].line


def test_a_second_bootloader_banner_is_a_reset_but_spl_then_main_is_one_boot() -> None:
    watch = CrashWatch()
    watch.feed(b"U-Boot SPL 2023.04 (Mar 02 2024)\r\nU-Boot 2023.04 (Mar 02 2024)\r\n")
    assert watch.events == []
    watch.feed(b"U-Boot 2023.04 (Mar 02 2024)\r\n")
    assert [e.kind for e in watch.events] == ["unexpected-reset"]


def test_a_deliberate_reboot_announced_with_expect_boot_is_not_a_reset() -> None:
    watch = CrashWatch()
    watch.feed(HEALTHY_BOOT.encode())
    watch.arm()
    watch.expect_boot()
    watch.feed(HEALTHY_BOOT.encode())
    assert watch.events == []


def test_a_crash_line_split_across_reads_is_still_found() -> None:
    watch = CrashWatch()
    line = b"[  212.0] Kernel panic - not syncing: Fatal exception in interrupt\r\n"
    for index in range(len(line)):
        watch.feed(line[index : index + 1])
    assert [e.kind for e in watch.events] == ["panic"]


# One boot's firmware banners as each firmware prints them (first banner of the chain).
FIRMWARE_BANNERS = {
    "coreboot": "coreboot-4.19 Mon Jan 16 12:00:00 UTC 2023 bootblock starting (log level: 7)...",
    "tf-a": "NOTICE:  BL31: v2.8(release):v2.8-dirty",
    "barebox": "barebox 2023.01.0-00012-g1234abcd #1 Mon Jan 2 12:00:00 UTC 2023",
    "edk2": "UEFI firmware (version edk2-stable202302 built at 10:00:00 on Mar  1 2023)",
    "u-boot-spl": "U-Boot SPL 2023.04 (Apr 03 2023 - 12:00:00 +0000)",
    "grub": "GNU GRUB  version 2.06-13+deb12u1",
}


@pytest.mark.parametrize("firmware", sorted(FIRMWARE_BANNERS))
def test_a_firmware_or_bootloader_banner_after_the_kernel_ran_is_an_unexpected_reset(
    firmware: str,
) -> None:
    watch = CrashWatch()
    watch.feed(
        b"[    0.000000] Linux version 6.1.0-21-arm64 (debian-kernel@lists.debian.org) #1\r\n"
    )
    watch.feed(b"acme login: root\r\n# ")
    watch.arm()
    assert watch.events == []
    watch.feed(f"\r\n{FIRMWARE_BANNERS[firmware]}\r\n".encode())
    assert [e.kind for e in watch.events] == ["unexpected-reset"]
    assert FIRMWARE_BANNERS[firmware] in watch.events[0].line


def test_a_multi_stage_firmware_chain_is_one_boot_until_a_stage_repeats() -> None:
    chain = (
        "NOTICE:  Booting Trusted Firmware\r\n"
        "NOTICE:  BL1: v2.8(release)\r\n"
        "NOTICE:  BL2: v2.8(release)\r\n"
        "NOTICE:  BL31: v2.8(release)\r\n"
        "U-Boot SPL 2023.04 (Apr 03 2023)\r\n"
        "U-Boot 2023.04 (Apr 03 2023)\r\n"
    )
    watch = CrashWatch()
    watch.feed(chain.encode())
    assert watch.events == []
    watch.feed(b"NOTICE:  BL1: v2.8(release)\r\n")
    assert [e.kind for e in watch.events] == ["unexpected-reset"]


# Ordinary output around a crash: the watch skips whole chunks that hold no crash row's fixed
# text (harness/lab/literals.py), which must change nothing about what it reports.
BURST = "".join(f"{i:06d} ordinary output of a long command\r\n" for i in range(200)).encode()


@pytest.mark.parametrize(
    ("kind", "severity", "excerpt", "context"), SAMPLES, ids=[s[0] for s in SAMPLES]
)
def test_a_crash_inside_a_large_burst_is_reported_as_if_read_line_by_line(
    kind: str, severity: str, excerpt: str, context: str
) -> None:
    data = BURST + excerpt.encode() + BURST
    reference = CrashWatch()
    reference.arm()
    for line in data.splitlines(keepends=True):
        reference.feed(line)
    reference.flush()
    expected = [e.to_dict() for e in reference.events]
    assert [e["kind"] for e in expected if e["kind"] == kind], expected
    cut = len(BURST) + excerpt.index("\n") // 2  # inside the crash's first line
    # The bursts alone are skipped as a whole; the crash arrives whole or cut in two.
    for chunks in (
        [BURST, data[len(BURST) :]],
        [data[:cut], data[cut:]],
        [BURST, data[len(BURST) : cut], data[cut:]],
    ):
        watch = CrashWatch()
        watch.arm()
        for chunk in chunks:
            watch.feed(chunk)
        watch.flush()
        assert [e.to_dict() for e in watch.events] == expected
