"""Network, per interface: a transfer to and from the lab host, verified by sha256 both ways.

The lab host is the peer (harness/run/peer.py); the board uses busybox `nc`. The route to the
peer must leave through the interface under test, so a transfer that silently took another
link cannot pass for this one. Throughput in each direction is a measurement (MiB/s), timed
on the lab host from the connection's accept to its last byte. A board with interfaces on
several networks reaches the lab host at a different address through each
(`network_peer.interfaces`). `ping_peer` is the ICMP check beside the transfer: echoes
through the interface, none lost, round-trip time recorded.
"""

from __future__ import annotations

import hashlib
import os
import re

from harness.model.board import NetworkPeer
from harness.run.context import TestContext
from harness.run.peer import Peer

REMOTE = "/tmp/harness-net"


def transfer_to_and_from_peer(ctx: TestContext) -> None:
    iface = str(ctx.item)
    peer_fixture, address = _peer_through(ctx, iface)
    size = int(float(ctx.params.get("transfer_mib", 1)) * 2**20)
    # Download: the lab host sends random bytes, the board checks their sha256.
    payload = os.urandom(size)
    peer = Peer(peer_fixture.bind)
    transfer = peer.send(payload)
    got = ctx.run(f"timeout 120 nc {address} {peer.port} | sha256sum", timeout=150)
    transfer.done.wait(30)
    expected = hashlib.sha256(payload).hexdigest()
    # Searched, not taken whole: a kernel message may land in console output before the sum.
    if transfer.error or expected not in got.stdout:
        ctx.fail(
            f"download from the lab host via {iface}: sha256 on the board "
            f"{got.stdout.split()[0][:16] if got.stdout.split() else '?'}…, sent {expected[:16]}…"
            + (f" ({transfer.error})" if transfer.error else "")
        )
    ctx.measure("download_throughput", _rate(size, transfer.seconds), "MiB/s")
    # Upload: the board sends random bytes, the lab host checks their sha256.
    made = ctx.run(
        f"dd if=/dev/urandom of={REMOTE} bs={size} count=1 iflag=fullblock 2>/dev/null "
        f"&& sha256sum {REMOTE}",
        timeout=120,
    )
    digest = re.search(r"^([0-9a-f]{64}) ", made.stdout, re.MULTILINE)
    sent = digest.group(1) if digest else "?"
    peer = Peer(peer_fixture.bind)
    transfer = peer.receive(size)
    ctx.run(f"timeout 120 nc {address} {peer.port} < {REMOTE}; rm -f {REMOTE}", timeout=150)
    transfer.done.wait(30)
    if transfer.error or transfer.size != size or transfer.sha256 != sent:
        ctx.fail(
            f"upload to the lab host via {iface}: received {transfer.size} of {size} bytes, "
            f"sha256 {transfer.sha256[:16]}…, board sent {sent[:16]}…"
            + (f" ({transfer.error})" if transfer.error else "")
        )
    ctx.measure("upload_throughput", _rate(size, transfer.seconds), "MiB/s")


def _peer_through(ctx: TestContext, iface: str) -> tuple[NetworkPeer, str]:
    """The peer fixture and its address through `iface`; fails unless the route leaves by it."""
    peer_fixture = ctx.profile.fixtures.network_peer
    if peer_fixture is None:
        ctx.fail("no network_peer fixture in the board profile")
    address = peer_fixture.address_for(iface)
    route = ctx.run(f"ip route get {address}").stdout
    if f" dev {iface} " not in route + " ":
        ctx.fail(f"the route to the lab host {address} does not use {iface}: {route.strip()}")
    return peer_fixture, address


PING = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
RTT = re.compile(r"min/avg/max[^=]*= ([\d.]+)/([\d.]+)/([\d.]+)")


def ping_peer(ctx: TestContext) -> None:
    """`ping_count` ICMP echoes to the lab host, bound to the interface: none lost; RTT recorded.

    busybox `ping -I IFACE` binds the socket to the interface, and `-A` sends the next echo as
    soon as the reply is in, so a healthy link answers them all in well under a second.
    """
    iface = str(ctx.item)
    _, address = _peer_through(ctx, iface)
    count = max(1, int(ctx.params.get("ping_count", 10)))
    result = ctx.run(f"ping -c {count} -A -W 5 -I {iface} {address}", timeout=30 + count)
    sent = PING.search(result.stdout)
    if sent is None:
        ctx.fail(f"ping {address} via {iface} printed no summary: {result.stdout.strip()[-300:]}")
    transmitted, received = int(sent.group(1)), int(sent.group(2))
    ctx.measure("packets_lost", transmitted - received, "count")
    rtt = RTT.search(result.stdout)
    if rtt is not None:
        ctx.measure("rtt_avg", float(rtt.group(2)), "ms")
        ctx.measure("rtt_max", float(rtt.group(3)), "ms")
    if received < transmitted:
        ctx.fail(
            f"ping {address} via {iface}: {transmitted - received} of {transmitted} echoes lost"
        )


def _rate(size: int, seconds: float) -> float:
    return round(size / 2**20 / max(seconds, 1e-6), 2)
