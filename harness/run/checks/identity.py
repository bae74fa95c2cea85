"""Identity checks: the unit is the model the profile describes."""

from __future__ import annotations

from harness.run.context import TestContext


def architecture_matches_profile(ctx: TestContext) -> None:
    """`uname -m` names the profile's architecture (a wrong image or board is caught here)."""
    machine = ctx.run("uname -m").stdout.strip()
    expected = ctx.profile.identity.arch
    if machine != expected:
        ctx.fail(f"uname -m says {machine!r}, the profile says {expected!r}")
