"""CPU: a checksum-verified load pinned to every online core at once.

Each core hashes the same known stream (zeros, `cpu_load_mib` MiB) with busybox `taskset` and
`sha256sum`; the harness knows the right answer, so a core that computes wrongly (marginal
voltage, a bad core) fails by name, not just a core that hangs. The seconds each core took
are measurements, so a throttled core shows up as an outlier.
"""

from __future__ import annotations

import hashlib
import re

from harness.run.context import TestContext


def checksum_load_per_core(ctx: TestContext) -> None:
    mib = max(1, int(ctx.params.get("cpu_load_mib", 8)))
    cores = ctx.integer("nproc") or 1
    expected = hashlib.sha256(bytes(mib * 2**20)).hexdigest()
    script = (
        f"for c in $(seq 0 {cores - 1}); do ( s=$(cut -d' ' -f1 /proc/uptime); "
        f'r=$(taskset -c $c sh -c "dd if=/dev/zero bs=1M count={mib} 2>/dev/null | sha256sum"); '
        f"echo \"core $c ${{r%% *}} $s $(cut -d' ' -f1 /proc/uptime)\" ) & done; wait"
    )
    result = ctx.run(script, timeout=60 + 30 * mib)
    seen = {
        int(m.group(1)): (m.group(2), float(m.group(4)) - float(m.group(3)))
        for m in re.finditer(r"^core (\d+) (\S+) ([\d.]+) ([\d.]+)$", result.stdout, re.MULTILINE)
    }
    wrong = []
    for core in range(cores):
        digest, seconds = seen.get(core, ("no answer", 0.0))
        if digest != expected:
            wrong.append(f"core {core}: {digest[:16]}")
        else:
            ctx.measure(f"core{core}_seconds", round(seconds, 2), "s")
    if wrong:
        ctx.fail(
            f"checksum load of {mib} MiB per core: expected sha256 {expected[:16]}…, "
            + "; ".join(wrong)
        )
