"""SPI: a full-duplex transfer through /dev/spidevB.C with MOSI wired to MISO reads back the bytes sent.

Writing to a spidev node and reading it are two half-duplex transfers (MISO is not sampled
during a write), so a shell cannot prove the loopback with `echo` and `cat`: it takes one
SPI_IOC_MESSAGE ioctl. The check uses `spi-pipe` from Debian's spi-tools, which does exactly
that (stdin goes out on MOSI, what MISO carried in the same clocks comes out on stdout). The
harness's static helper (busybox) has no such applet, so the unit's OS must have spi-tools;
where it lacks them the test fails saying so, rather than passing on a half-duplex echo.

The bytes are random per run (so a stale buffer cannot pass) and include both a 0x00 and
a 0xFF, so a MISO stuck low or high shows as a mismatch at a named byte. Received bytes are
shown in hex (`od`), next to the sent ones.
"""

from __future__ import annotations

import re
import secrets

from harness.run.context import TestContext


def _payload(length: int) -> bytes:
    data = bytearray(secrets.token_bytes(length))
    data[0], data[-1] = 0x00, 0xFF  # a stuck-low and a stuck-high MISO both mismatch
    if length == 1:
        data[0] = 0xA5
    return bytes(data)


def loopback(ctx: TestContext) -> None:
    fixture = ctx.item
    device, speed, length = fixture["device"], fixture["speed_hz"], fixture["length"]
    if ctx.run(f"[ -c {device} ]").exit_status != 0:
        ctx.fail(f"{device} is not on the unit (spidev not bound to that chip select?)")
    if ctx.run("command -v spi-pipe").exit_status != 0:
        ctx.fail(
            "spi-pipe (Debian spi-tools) is not on the unit: a full-duplex SPI transfer needs "
            "the SPI_IOC_MESSAGE ioctl, which neither the shell nor the harness's helper can do"
        )
    sent = _payload(length)
    octal = "".join(f"\\{byte:03o}" for byte in sent)
    result = ctx.run(
        f"printf '{octal}' | spi-pipe -d {device} -s {speed} -b {length} -n 1 | od -An -v -tx1",
        timeout=30,
    )
    # od's lines hold only hex pairs; on a console, anything else (an error of spi-pipe) is
    # in the same stream and is shown apart from the bytes.
    lines = result.stdout.splitlines()
    dump = [line for line in lines if re.fullmatch(r"(\s*[0-9a-f]{2})+\s*", line)]
    received = " ".join(dump).split()
    other = "\n".join(line for line in lines if line not in dump) + result.stderr
    expected = [f"{byte:02x}" for byte in sent]
    if received != expected:
        first = next(
            (i for i, (a, b) in enumerate(zip(expected, received, strict=False)) if a != b),
            min(len(expected), len(received)),
        )
        ctx.fail(
            f"{device} at {speed} Hz: sent {length} bytes {' '.join(expected)}, received "
            f"{len(received)} bytes {' '.join(received) or '(none)'}; first difference at byte "
            f"{first}{_other(other)}"
        )


def _other(text: str) -> str:
    return f" ({text.strip()[-200:]})" if text.strip() else ""
