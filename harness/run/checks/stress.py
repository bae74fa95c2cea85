"""Stress phase: CPU, memory and storage load at once for `stress_seconds`, crash watch on.

Every core hashes a known stream in a loop, one worker keeps writing and re-reading a random
pattern in RAM, and one reads every block device with O_DIRECT (reads only: a stress phase
must not need a scratch disk). Every round's checksum is checked on the board; a wrong one is
printed and fails the test, and a kernel crash or reset during the phase fails it through
the console's crash watch like in any test. stress-ng would do more, but is not on every
image; these are busybox applets.
"""

from __future__ import annotations

import hashlib
import re

from harness.run.context import TestContext

ROUND_MIB = 4


def cpu_memory_storage(ctx: TestContext) -> None:
    seconds = max(1, int(ctx.params.get("stress_seconds", 5)))
    cores = ctx.integer("nproc") or 1
    expected = hashlib.sha256(bytes(ROUND_MIB * 2**20)).hexdigest()
    disks = [d.name for d in ctx.profile.inventory.block_devices]
    clock = "$(cut -d. -f1 /proc/uptime)"
    loop = f"n=0; while [ {clock} -lt $end ]; do "
    workers = [
        f"( {loop}r=$(taskset -c {core} sh -c 'dd if=/dev/zero bs=1M count={ROUND_MIB} "
        f'2>/dev/null | sha256sum\'); [ "${{r%% *}}" = {expected} ] || echo BAD cpu{core}; '
        f'n=$((n+1)); done; echo "done cpu{core} $n" ) &'
        for core in range(cores)
    ]
    workers.append(
        f"( {loop}a=$(dd if=/dev/urandom bs=1M count={ROUND_MIB} 2>/dev/null | "
        "tee /dev/shm/harness-stress | sha256sum); b=$(sha256sum < /dev/shm/harness-stress); "
        '[ "${a%% *}" = "${b%% *}" ] || echo BAD memory; n=$((n+1)); done; '
        'rm -f /dev/shm/harness-stress; echo "done memory $n" ) &'
    )
    for disk in disks:
        workers.append(
            f"( {loop}dd if=/dev/{disk} of=/dev/null bs=1M count={ROUND_MIB} iflag=direct "
            f'2>/dev/null || echo BAD storage-{disk}; n=$((n+1)); done; echo "done {disk} $n" ) &'
        )
    script = f"end=$(( {clock} + {seconds} )); " + " ".join(workers) + " wait"
    result = ctx.run(script, timeout=seconds + 120)
    rounds = dict(re.findall(r"^done (\S+) (\d+)$", result.stdout, re.MULTILINE))
    for worker, count in rounds.items():
        ctx.measure(f"rounds_{worker.replace('-', '_')}", int(count), "count")
    bad = re.findall(r"^BAD (\S+)$", result.stdout, re.MULTILINE)
    expected_workers = {*(f"cpu{c}" for c in range(cores)), "memory", *disks}
    missing = sorted(expected_workers - set(rounds))
    problems = []
    if bad:
        problems.append(f"wrong results from {', '.join(sorted(set(bad)))}")
    if missing:
        problems.append(f"no report from {', '.join(missing)}")
    if problems:
        ctx.fail(f"stress phase of {seconds} s: " + "; ".join(problems))
