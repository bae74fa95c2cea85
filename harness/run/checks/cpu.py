"""CPU: a checksum-verified load pinned to every online core at once, and frequency scaling.

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


POLICIES = "/sys/devices/system/cpu/cpufreq"
POLICY_LINE = re.compile(r"^policy (\S+) (\d+) (\d+) (\S+) ([\d ]+)$", re.MULTILINE)
# Governors that never raise the frequency for load: staying at the minimum is their job.
FIXED_GOVERNORS = ("powersave", "userspace")


def frequency_scaling(ctx: TestContext) -> None:
    """Every online CPU is in a cpufreq policy, and each policy leaves its minimum under load.

    A policy's range (cpuinfo min/max) and governor are recorded; then one of its CPUs is kept
    busy and its frequency is read until it rises above the minimum (bounded, 3 s), which is
    what scaling is for. A policy with a single frequency, or a governor that holds it low on
    purpose, is noted, not failed.
    """
    listing = ctx.run(
        f"for p in {POLICIES}/policy*; do [ -d $p ] || continue; "
        'echo "policy ${p##*/} $(cat $p/cpuinfo_min_freq) $(cat $p/cpuinfo_max_freq) '
        '$(cat $p/scaling_governor) $(cat $p/affected_cpus)"; done'
    ).stdout
    policies = POLICY_LINE.findall(listing)
    if not policies:
        ctx.fail(f"{POLICIES} has no readable policy: {listing.strip()[-200:]!r}")
    cores = ctx.integer("nproc") or 1
    covered = {int(cpu) for *_, cpus in policies for cpu in cpus.split()}
    problems = [f"CPU {cpu} is in no cpufreq policy" for cpu in range(cores) if cpu not in covered]
    for name, low, high, governor, cpus in policies:
        ctx.measure(f"{name}_min", int(low) / 1000, "MHz")
        ctx.measure(f"{name}_max", int(high) / 1000, "MHz")
        if int(low) >= int(high) or governor in FIXED_GOVERNORS:
            ctx.log.info(
                "%s: %s-%s kHz, governor %s: not expected to move", name, low, high, governor
            )
            continue
        cpu = cpus.split()[0]
        loaded = ctx.run(
            f"taskset -c {cpu} sh -c 'while :; do :; done' & b=$!; "
            f"for i in $(seq 15); do f=$(cat {POLICIES}/{name}/scaling_cur_freq); "
            f'[ "$f" -gt {low} ] && break; sleep 0.2; done; kill $b; echo "loaded $f"',
            timeout=30,
        ).stdout
        match = re.search(r"^loaded (\d+)$", loaded, re.MULTILINE)
        if match is None:
            problems.append(f"{name}: no frequency under load ({loaded.strip()[-120:]!r})")
            continue
        ctx.measure(f"{name}_loaded", int(match.group(1)) / 1000, "MHz")
        if int(match.group(1)) <= int(low):
            problems.append(
                f"{name} (CPUs {cpus}) stayed at its minimum {int(low) / 1000:g} MHz under load "
                f"(governor {governor}, maximum {int(high) / 1000:g} MHz)"
            )
    if problems:
        ctx.fail("frequency scaling: " + "; ".join(problems))
