"""CAN: frames sent on one interface of a pair arrive, intact and in order, on the other.

Both interfaces are brought up at the fixture's bitrate (`ip link set IF type can bitrate
N`), with iproute2's `ip` found by its path: busybox's `ip` cannot set CAN bit timing, and
a busybox shell built to prefer its applets runs its own `ip` for the bare name even where
iproute2 is installed (as on the virtual lab's OS, and on many Buildroot images). Then each
direction is tried in turn: `candump -L -n COUNT` listens on the receiver, the check waits
until the kernel lists that listener in /proc/net/can/rcvlist_all (so no frame can be sent
before anyone receives; a kernel without CAN procfs gets 5 s instead), `cansend` sends
COUNT frames with random identifiers and payloads, and the frames candump logged must
equal the sent ones. can-utils' cansend and candump come from the unit's OS: the
harness's static helper (busybox) has no CAN tools.

A pair that is not wired, or not terminated, leaves the sender without acknowledgements:
nothing arrives, and the failure shows the sender's CAN state (ERROR-PASSIVE, BUS-OFF) from
`ip -details link show`. Both interfaces are taken down again afterwards.
"""

from __future__ import annotations

import re
import secrets

from harness.run.context import TestContext

FRAMES = 4
RECEIVE_SECONDS = 10


def _frames() -> list[str]:
    """COUNT frames as cansend writes them (`1A3#00FF12`): 11-bit ids, 1 to 8 data bytes."""
    frames = []
    for _ in range(FRAMES):
        ident = secrets.randbelow(0x800)
        data = secrets.token_bytes(1 + secrets.randbelow(8))
        frames.append(f"{ident:03X}#{data.hex().upper()}")
    return frames


IP_PATHS = ("/sbin/ip", "/bin/ip", "/usr/sbin/ip", "/usr/bin/ip")


def _iproute2(ctx: TestContext) -> str:
    """The path of iproute2's `ip` on the unit (it says `iproute2` in its version line)."""
    found = ctx.run(
        f"for p in {' '.join(IP_PATHS)}; do [ -x $p ] && $p -V 2>&1 | grep -q iproute2 "
        '&& echo "iproute2 $p" && break; done; true'
    )
    match = re.search(r"^iproute2 (\S+)\s*$", found.stdout, re.MULTILINE)
    if match is None:
        ctx.fail(
            f"no iproute2 `ip` on the unit ({', '.join(IP_PATHS)}): busybox's ip cannot set "
            "a CAN interface's bitrate"
        )
    return match.group(1)


def _bring_up(ctx: TestContext, ip: str, iface: str, bitrate: int) -> None:
    result = ctx.run(
        f"{ip} link set {iface} down && {ip} link set {iface} type can bitrate {bitrate} "
        f"&& {ip} link set {iface} up"
    )
    if result.exit_status != 0:
        ctx.fail(
            f"cannot bring {iface} up at {bitrate} bit/s: "
            f"{(result.stdout + result.stderr).strip()[-200:] or 'no message'}"
        )


def _state(ctx: TestContext, ip: str, iface: str) -> str:
    shown = ctx.run(f"{ip} -details link show {iface}")
    match = re.search(r"can (?:<[^>]*> )?state (\S+)", shown.stdout)
    return match.group(1) if match else "unknown"


def _one_way(ctx: TestContext, ip: str, sender: str, receiver: str) -> None:
    frames = _frames()
    log = f"/tmp/harness-can-{secrets.token_hex(4)}"
    sends = "; ".join(f"cansend {sender} {frame}" for frame in frames)
    result = ctx.run(
        f"timeout {RECEIVE_SECONDS} candump -L -n {FRAMES} {receiver} >{log} 2>&1 & p=$!; "
        f"i=0; until grep -q '^ *{receiver} ' /proc/net/can/rcvlist_all 2>/dev/null "
        "|| [ $i -ge 100 ]; do sleep 0.05; i=$((i + 1)); done; "
        f'{sends}; wait $p; echo "candump-exit $?"; cat {log}; rm -f {log}',
        timeout=RECEIVE_SECONDS + 30,
    )
    received = re.findall(
        rf"^\(\d+\.\d+\)\s+{re.escape(receiver)} ([0-9A-F]+#[0-9A-F]*)\s*$",
        result.stdout,
        re.MULTILINE,
    )
    if received != frames:
        other = [
            line
            for line in result.stdout.splitlines()
            if line.strip() and not re.match(r"^\(\d+\.\d+\) ", line)
        ]
        ctx.fail(
            f"sent {' '.join(frames)} on {sender}, {receiver} received "
            f"{' '.join(received) or 'nothing'} within {RECEIVE_SECONDS} s "
            f"({sender} state {_state(ctx, ip, sender)}; {'; '.join(other)[-200:]})"
        )


def pair(ctx: TestContext) -> None:
    fixture = ctx.item
    a, b, bitrate = fixture["a"], fixture["b"], fixture["bitrate"]
    tools = ctx.run(
        "for t in cansend candump; do command -v $t >/dev/null || echo missing:$t; done"
    )
    missing = re.findall(r"^missing:(\S+)", tools.stdout, re.MULTILINE)
    if missing:
        ctx.fail(
            f"{' and '.join(missing)} (Debian can-utils) not on the unit; the harness's helper "
            "(busybox) has no CAN tools"
        )
    ip = _iproute2(ctx)
    try:
        _bring_up(ctx, ip, a, bitrate)
        _bring_up(ctx, ip, b, bitrate)
        _one_way(ctx, ip, a, b)
        _one_way(ctx, ip, b, a)
    finally:
        ctx.run(f"{ip} link set {a} down; {ip} link set {b} down")
