"""USB mass storage, per disk: the disk is behind USB, bound to a USB storage driver, reads stable.

`storage-rw[sda]` writes and verifies the disk like any other; this check is about what only a
USB disk has. Its sysfs path must run through a USB interface bound to `usb-storage` or `uas`
(a disk the profile calls USB that shows up on another bus is the wrong hardware), the
vendor:product the profile gives for it must match, and the speed the port negotiated is a
measurement (a USB 3 disk linked at 480 Mbit/s is a port or cable fault a lab wants to see).
Then the first `storage_mib` MiB are read twice past the page cache (O_DIRECT) and compared by
sha256: a marginal bridge, hub or cable returns different bytes for the same sectors. The
read is non-destructive, so it also suits a lab's fixed USB stick.
"""

from __future__ import annotations

import re

from harness.run.context import TestContext

# .../usb2/2-1/2-1:1.0/host2/... : the device (2-1, or 2-1.3 behind a hub) and its interface.
USB_INTERFACE = re.compile(r"/(\d+-[\d.]+):(\d+\.\d+)/")
STORAGE_DRIVERS = ("usb-storage", "uas")
SCRATCH = "/tmp/harness-usb"


def _field(output: str, name: str) -> str:
    match = re.search(rf"^{name}=(.*)$", output, re.MULTILINE)
    return match.group(1).strip() if match else ""


def mass_storage_read_verify(ctx: TestContext) -> None:
    dev = str(ctx.item)
    path = ctx.run(f"readlink -f /sys/block/{dev}").stdout.strip()
    if not path.startswith("/sys/devices/"):
        ctx.fail(f"no block device {dev} on the unit, but the profile lists it as a USB disk")
    where = USB_INTERFACE.search(path)
    if where is None:
        ctx.fail(f"/dev/{dev} is not behind USB: {path}")
    device, interface = where.group(1), f"{where.group(1)}:{where.group(2)}"
    usb = f"/sys/bus/usb/devices/{device}"
    info = ctx.run(
        f'echo "driver=$(basename "$(readlink -f /sys/bus/usb/devices/{interface}/driver)")"; '
        f'echo "speed=$(cat {usb}/speed)"; echo "id=$(cat {usb}/idVendor):$(cat {usb}/idProduct)"'
    ).stdout
    driver, speed, usb_id = _field(info, "driver"), _field(info, "speed"), _field(info, "id")
    ctx.log.info("%s: USB device %s (%s) on %s, driver %s", dev, device, usb_id, path, driver)
    if driver not in STORAGE_DRIVERS:
        ctx.fail(f"/dev/{dev}'s USB interface {interface} is bound to {driver or 'no driver'}")
    if speed.replace(".", "", 1).isdigit():
        ctx.measure("usb_speed", float(speed), "Mbit/s")
    for wanted in ctx.profile.inventory.usb_devices:
        named = f"{wanted.vendor_id}:{wanted.product_id}"
        identified = wanted.block_device == dev and wanted.vendor_id and wanted.product_id
        if identified and usb_id.lower() != named.lower():
            ctx.fail(f"/dev/{dev} is USB device {usb_id}, the profile says {named}")
    _read_twice(ctx, dev)


def _read_twice(ctx: TestContext, dev: str) -> None:
    sectors = ctx.integer(f"cat /sys/block/{dev}/size") or 0
    mib = min(max(1, int(ctx.params.get("storage_mib", 4))), sectors * 512 // 2**20)
    if mib < 1:
        ctx.fail(f"/dev/{dev} has no medium (size {sectors} sectors)")
    sums = []
    try:
        for attempt in (1, 2):
            ctx.run("sync; echo 3 > /proc/sys/vm/drop_caches")
            read = ctx.run(
                f"s=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/{dev} of={SCRATCH}-{dev}.{attempt} "
                f"bs=1M count={mib} iflag=direct 2>/dev/null && "
                f"echo \"elapsed $s $(cut -d' ' -f1 /proc/uptime)\" && sha256sum {SCRATCH}-{dev}.{attempt}",
                timeout=300,
            )
            digest = re.search(r"^([0-9a-f]{64}) ", read.stdout, re.MULTILINE)
            if read.exit_status != 0 or digest is None:
                ctx.fail(f"reading {mib} MiB of /dev/{dev} failed: {read.stdout.strip()[-300:]}")
            sums.append(digest.group(1))
            timed = re.search(r"^elapsed ([\d.]+) ([\d.]+)$", read.stdout, re.MULTILINE)
            if attempt == 1 and timed:
                seconds = max(float(timed.group(2)) - float(timed.group(1)), 0.01)
                ctx.measure("read_throughput", round(mib / seconds, 2), "MiB/s")
        if sums[0] != sums[1]:
            where = ctx.run(f"cmp {SCRATCH}-{dev}.1 {SCRATCH}-{dev}.2").stdout.strip()
            ctx.fail(
                f"the first {mib} MiB of /dev/{dev} read twice differ: sha256 {sums[0][:16]}… "
                f"then {sums[1][:16]}…; cmp: {where or 'no output'}"
            )
    finally:
        ctx.run(f"rm -f {SCRATCH}-{dev}.*")
