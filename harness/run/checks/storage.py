"""Storage, per block device: write a random pattern, read it back past every cache, compare.

Two steps (`write_pattern`, then `verify_pattern`) so the evidence says which half failed and a
lab can put a step between them (a cable pull, a power cut). The data is checked by sha256
and, on a mismatch, by `cmp`, which names the first byte that differs. Sequential write and
read throughput are measurements (MiB/s) of busybox `dd` with O_DIRECT, timed on the board.

Nothing is destroyed: on a mounted device the test writes a file in its filesystem; on an
unmounted one it saves the test area (near the end of the device) to RAM first and writes
it back afterwards, checking the restore too. Only busybox applets are used (dd, sha256sum,
cmp), which every image the harness supports has.
"""

from __future__ import annotations

import re
from typing import Any

from harness.run.context import TestContext

# busybox dd may be built without its rate line, so the board's uptime times the copy.
TIMED = re.compile(r"^elapsed ([\d.]+) ([\d.]+)$", re.MULTILINE)
UPTIME = "$(cut -d' ' -f1 /proc/uptime)"
SHA256_LINE = re.compile(r"^([0-9a-f]{64}) ", re.MULTILINE)


def _timed(command: str) -> str:
    return f's={UPTIME}; {command} && echo "elapsed $s {UPTIME}"'


SCRATCH = "/tmp/harness-storage"


def _name(ctx: TestContext) -> str:
    item = ctx.item
    return str(item["name"] if isinstance(item, dict) else item)


def _throughput(ctx: TestContext, name: str, mib: int, output: str) -> None:
    match = TIMED.search(output)
    if match:
        seconds = max(float(match.group(2)) - float(match.group(1)), 0.01)  # uptime has 10 ms
        ctx.measure(name, round(mib / seconds, 2), "MiB/s")


def write_pattern(ctx: TestContext) -> None:
    """Write `storage_mib` MiB of random data to the device's test area (see module docstring)."""
    dev = _name(ctx)
    mib = max(1, int(ctx.params.get("storage_mib", 4)))
    if ctx.run(f"[ -b /dev/{dev} ]").exit_status != 0:
        ctx.fail(f"no block device /dev/{dev} on the unit, but the board profile lists {dev}")
    mounts = ctx.run(f"grep '^/dev/{dev}' /proc/mounts | head -1").stdout.split()
    pattern = f"{SCRATCH}-{dev}.pattern"
    ctx.run(f"mkdir -p {SCRATCH}-dir; rm -f {SCRATCH}-{dev}.*")
    made = ctx.run(
        f"dd if=/dev/urandom of={pattern} bs=1M count={mib} 2>/dev/null && sha256sum {pattern}",
        timeout=120,
    )
    if made.exit_status != 0:
        ctx.fail(f"cannot make a {mib} MiB pattern in {SCRATCH}: {made.stdout.strip()[-200:]}")
    state: dict[str, Any] = {"dev": dev, "mib": mib, "pattern": pattern}
    # Searched, not taken whole: a kernel message may land in console output (`[ 86.4]
    # hrtimer: interrupt took ...` before the sum, seen on a loaded aarch64 board).
    digest = SHA256_LINE.search(made.stdout)
    if digest is None:
        ctx.fail(f"no sha256 of the pattern in: {made.stdout.strip()[-200:]}")
    state["sha256"] = digest.group(1)
    if len(mounts) >= 2:
        state.update(target=f"{mounts[1].rstrip('/')}/.harness-storage-rw.bin", offset=0)
        ctx.log.info("%s is mounted on %s: testing through a file there", dev, mounts[1])
    else:
        sectors = ctx.integer(f"cat /sys/block/{dev}/size") or 0
        size_mib = sectors * 512 // (1024 * 1024)
        if size_mib < mib + 2:
            ctx.fail(f"/dev/{dev} has {size_mib} MiB, too small for a {mib} MiB test area")
        offset = size_mib - mib - 1
        state.update(target=f"/dev/{dev}", offset=offset, saved=f"{SCRATCH}-{dev}.saved")
        saved = ctx.run(
            f"dd if=/dev/{dev} of={state['saved']} bs=1M skip={offset} count={mib} iflag=direct",
            timeout=120,
        )
        if saved.exit_status != 0:
            ctx.fail(f"cannot read /dev/{dev} at {offset} MiB: {saved.stdout.strip()[-300:]}")
    ctx.state["storage"] = state
    direct = "oflag=direct " if state["target"].startswith("/dev/") else ""
    wrote = ctx.run(
        _timed(
            f"dd if={pattern} of={state['target']} bs=1M count={mib} seek={state['offset']} "
            f"{direct}conv=fsync,notrunc"
        ),
        timeout=300,
    )
    if wrote.exit_status != 0:
        _restore(ctx)
        ctx.fail(f"writing {mib} MiB to {state['target']} failed: {wrote.stdout.strip()[-300:]}")
    _throughput(ctx, "write_throughput", mib, wrote.stdout)


def verify_pattern(ctx: TestContext) -> None:
    """Read the test area back with O_DIRECT (caches dropped), compare, then restore it."""
    state = ctx.state.get("storage")
    if state is None:
        ctx.fail("verify_pattern needs write_pattern earlier in the same test")
    try:
        back = f"{SCRATCH}-{state['dev']}.back"
        ctx.run("sync; echo 3 > /proc/sys/vm/drop_caches")
        direct = "iflag=direct " if state["target"].startswith("/dev/") else ""
        read = ctx.run(
            _timed(
                f"dd if={state['target']} of={back} bs=1M count={state['mib']} "
                f"skip={state['offset']} {direct}"
            )
            + f" && sha256sum {back}",
            timeout=300,
        )
        if read.exit_status != 0:
            ctx.fail(f"reading back {state['target']} failed: {read.stdout.strip()[-300:]}")
        _throughput(ctx, "read_throughput", state["mib"], read.stdout)
        got = SHA256_LINE.search(read.stdout)
        if got is None or got.group(1) != state["sha256"]:
            where = ctx.run(f"cmp {state['pattern']} {back}").stdout.strip()
            ctx.fail(
                f"data read back from {state['target']} differs from what was written "
                f"({state['mib']} MiB at {state['offset']} MiB): sha256 written "
                f"{state['sha256'][:16]}…, read {got.group(1)[:16] if got else '?'}…; "
                f"cmp: {where or 'no output'}"
            )
    finally:
        _restore(ctx)


def _restore(ctx: TestContext) -> None:
    """Put back what the test area held (raw devices), remove the helper files."""
    state = ctx.state.get("storage") or {}
    saved = state.get("saved")
    try:
        if saved:
            restored = ctx.run(
                f"dd if={saved} of={state['target']} bs=1M seek={state['offset']} "
                f"oflag=direct conv=fsync,notrunc && dd if={state['target']} bs=1M "
                f"skip={state['offset']} count={state['mib']} iflag=direct 2>/dev/null | "
                f"cmp - {saved}",
                timeout=300,
            )
            if restored.exit_status != 0:
                ctx.fail(
                    f"could not restore the test area of {state['target']}: "
                    f"{restored.stdout.strip()[-300:]}"
                )
        elif state.get("target"):
            ctx.run(f"rm -f {state['target']}")
    finally:
        ctx.run(f"rm -rf {SCRATCH}-{state.get('dev', 'x')}.* {SCRATCH}-dir")
