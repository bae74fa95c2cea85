"""Board health, as LAVA keeps it: a board that keeps failing the lab is taken out of service.

A place is `bad` after a failed health check, or after infrastructure errors
in two runs in a row (INFRA_STREAK). A bad place keeps its name and its
resources but loses the tags reservations select on: `board=qemu-x86_64`
becomes `bad_board=qemu-x86_64` next to `health=bad`, and the place comment
says why and since when. So `labgrid-client reserve board=qemu-x86_64` (and
`harness run --reserve`) never picks it, and any labgrid user sees why. A
passing health check (`harness farm health`) puts the tags back.

The state lives on the coordinator, shared by every lab host and CI runner;
the history of changes is appended to `history.jsonl` in the farm folder
($HARNESS_FARM_DIR; a shared folder makes it lab-wide), which `harness farm
status` shows.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from harness.farm.address import farm_dir
from harness.farm.client import FarmClient, PlaceInfo
from harness.farm.tags import HEALTH, HELD_PREFIX, STREAK, scheduling_tags

__all__ = ["History", "farm_dir", "is_bad", "mark_bad", "mark_good", "record_run"]

INFRA_STREAK = 2
COMMENT_PREFIX = "out of service"


class History:
    """Health events, one JSON object a line; each line is one write, so writers do not interleave."""

    def __init__(self, folder: Path):
        self.path = folder / "history.jsonl"

    def add(self, place: str, event: str, reason: str, **extra: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "place": place,
            "event": event,
            "reason": reason,
            **extra,
        }
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(line) + "\n").encode())
        finally:
            os.close(fd)

    def read(self, place: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(event, dict) and (place is None or event.get("place") == place):
                events.append(event)
        return events


def is_bad(place: PlaceInfo) -> bool:
    return place.tags.get(HEALTH) == "bad"


def streak(place: PlaceInfo) -> int:
    try:
        return int(place.tags.get(STREAK, "0"))
    except ValueError:
        return 0


async def mark_bad(client: FarmClient, place: PlaceInfo, reason: str, history: History) -> None:
    """Take the place out of reservation: hold back its scheduling tags, say why in the comment."""
    held = scheduling_tags(place.tags)
    change = {HEALTH: "bad", **{HELD_PREFIX + k: v for k, v in held.items()}}
    change.update(dict.fromkeys(held, ""))
    await client.set_tags(place.name, change)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    await client.set_comment(
        place.name,
        f"{COMMENT_PREFIX} since {stamp}: {reason} (`harness farm health {place.name}` "
        "returns it once a health check passes)",
    )
    history.add(place.name, "bad", reason)


async def mark_good(client: FarmClient, place: PlaceInfo, reason: str, history: History) -> None:
    """Back in service: the held-back tags return, the streak and our comment go."""
    change: dict[str, str] = {HEALTH: "", STREAK: ""}
    for key, value in place.tags.items():
        if key.startswith(HELD_PREFIX):
            change[key] = ""
            change[key[len(HELD_PREFIX) :]] = value
    await client.set_tags(place.name, change)
    if place.comment.startswith(COMMENT_PREFIX):
        await client.set_comment(place.name, "")
    if is_bad(place):
        history.add(place.name, "good", reason)


async def record_run(
    client: FarmClient, name: str, result: dict[str, Any], history: History
) -> None:
    """After a run on `name`: count infrastructure errors in a row; the second one makes it bad.

    A health-check run decides directly: certified is good, anything else is bad.
    A run stopped by the user, or whose outcome is unknown, changes nothing.
    """
    place = client.place(name)
    if place is None or not result.get("verdict"):
        return
    run_id = result.get("run_id") or "?"
    if result.get("health_check"):
        if result["verdict"] == "certified":
            await mark_good(client, place, f"health check passed (run {run_id})", history)
        else:
            why = result.get("reason") or f"verdict {result['verdict']}"
            await mark_bad(client, place, f"health check failed: {why} (run {run_id})", history)
        return
    if result.get("error_class") != "infrastructure":
        if STREAK in place.tags:
            await client.set_tags(name, {STREAK: ""})
        return
    count = streak(place) + 1
    history.add(name, "infra-error", result.get("reason") or "infrastructure error", run_id=run_id)
    if count >= INFRA_STREAK and not is_bad(place):
        await client.set_tags(name, {STREAK: str(count)})
        place = client.place(name) or place
        await mark_bad(
            client,
            place,
            f"infrastructure errors in {count} runs in a row (last: run {run_id})",
            history,
        )
    else:
        await client.set_tags(name, {STREAK: str(count)})
