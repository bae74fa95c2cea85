"""Memory: a random pattern over a share of the free RAM, written and verified by sha256.

busybox has no memtester, so the pattern goes through tmpfs (which is RAM): `dd` from
/dev/urandom is hashed on the way in (`tee`) and hashed again when read back from memory.
The share (`memory_share` of MemAvailable, at most `memory_max_mib`) is a plan parameter,
small by default so the virtual lab stays fast; a lab raises it for a real soak.
"""

from __future__ import annotations

import re

from harness.run.context import TestContext

AREA = "/dev/shm/harness-memory.bin"


def pattern_verify(ctx: TestContext) -> None:
    share = float(ctx.params.get("memory_share", 0.1))
    cap = int(ctx.params.get("memory_max_mib", 32))
    avail = ctx.run("sed -n 's/^MemAvailable: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo").stdout
    if not avail.strip().isdigit():
        ctx.fail(f"MemAvailable not readable: {avail.strip()!r}")
    mib = max(1, min(cap, int(int(avail) / 1024 * share)))
    ctx.measure("memory_tested", mib, "MiB")
    try:
        result = ctx.run(
            f"dd if=/dev/urandom bs=1M count={mib} 2>/dev/null | tee {AREA} | sha256sum; "
            f"sha256sum {AREA}",
            timeout=60 + 10 * mib,
        )
    finally:
        ctx.run(f"rm -f {AREA}")
    sums = re.findall(r"^([0-9a-f]{64}) ", result.stdout, re.MULTILINE)
    if len(sums) != 2 or sums[0] != sums[1]:
        ctx.fail(f"{mib} MiB pattern in RAM did not read back the same: {sums or result.stdout}")
