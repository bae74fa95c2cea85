"""Serial: bytes through a UART loopback fixture (TX wired to RX), verified on arrival.

The port is put in raw mode at the fixture's baud rate with busybox `stty`, the receiving side
is opened, a random token is written on the sending side, and exactly that many bytes must
arrive (busybox `head -c`, bounded by `timeout`). The line is random per run so an echo left over in a buffer
from an earlier run cannot pass.
"""

from __future__ import annotations

import secrets

from harness.run.context import TestContext


def loopback(ctx: TestContext) -> None:
    fixture = ctx.item
    tx, rx, baud = fixture["tx"], fixture.get("rx") or fixture["tx"], fixture["baud"]
    token = f"harness-{secrets.token_hex(8)}"
    for port in {tx, rx}:
        if ctx.run(f"stty -F {port} {baud} raw -echo").exit_status != 0:
            ctx.fail(f"{port}: cannot set {baud} baud raw mode (is the UART there?)")
    # The receiving side is opened before anything is sent, so no byte can arrive unread; the
    # token is sent in two halves so the echoed command line cannot pass for the bytes.
    result = ctx.run(
        f"( exec 3<{rx} 4>{tx}; printf '%s%s' {token[:8]} {token[8:]} >&4; timeout 10 head -c {len(token)} <&3 )",
        timeout=30,
    )
    if token not in result.stdout:
        ctx.fail(f"sent {token!r} on {tx}, {rx} received {result.stdout.strip()[-120:]!r}")
