"""Live progress of `harness run`: current test, elapsed time, counts of the six outcomes.

On a terminal it is a rich Live panel; elsewhere (CI logs, pipes) one plain
line per finished test, because a redrawn panel in a log file is noise. On a
non-pass the reason and the last console lines are printed, so the person at
the bench sees why without opening the run folder.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.report.html import REPORT_HTML
from harness.run.outcomes import ALL_OUTCOMES

if TYPE_CHECKING:
    from harness.model.plan import TestSpec
    from harness.run.session import RunSession

STYLES = {
    "pass": "green",
    "fail": "bold red",
    "error": "bold magenta",
    "skip": "yellow",
    "waived": "cyan",
    "not-run": "dim",
}
CONSOLE_TAIL_LINES = 12


class RunProgress:
    """A pytest plugin object that renders progress (a `RunListener`: the run session finds
    it among pytest's plugins by those four methods)."""

    def __init__(self, console: Console | None = None, live: bool | None = None):
        self.console = console or Console(stderr=True)
        if not self.console.is_terminal and console is None:
            self.console = Console(stderr=True, width=160)  # CI logs: do not wrap at 80 columns
        self.live_enabled = self.console.is_terminal if live is None else live
        self.counts = dict.fromkeys(ALL_OUTCOMES, 0)
        self.current: TestSpec | None = None
        self.current_since = 0.0
        self.started = time.monotonic()
        self.total = 0
        self.session: RunSession | None = None
        self._live: Live | None = None

    # ---- listener API -----------------------------------------------------------------

    def run_started(self, session: RunSession) -> None:
        self.session = session
        self.total = len(session.plan.tests)
        already = session.finished_ids()
        for test_id in already:
            self.counts[session.previous[test_id].outcome] += 1
        resumed = f" (resumed: {len(already)} already finished)" if already else ""
        self.console.print(
            f"[bold]run {session.run_id}[/]: plan {session.plan.id} {session.plan.version} "
            f"on {session.profile.name}{resumed}"
        )
        if self.live_enabled:
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=4, transient=True
            )
            self._live.start()

    def test_started(self, test: TestSpec) -> None:
        self.current = test
        self.current_since = time.monotonic()
        self._refresh()

    def test_finished(self, record: dict[str, Any]) -> None:
        outcome = record["outcome"]
        self.counts[outcome] += 1
        self.current = None
        line = Text.assemble(
            (f"{outcome:8}", STYLES[outcome]),
            f" {record['id']}  ({record['duration']:.1f} s",
            f", attempt {record['attempt']})" if record.get("attempt", 1) > 1 else ")",
        )
        self._print(line)
        if outcome not in ("pass", "skip") and record.get("reason"):
            self._print(Text(f"         {record['reason']}", style=STYLES[outcome]))
        if outcome in ("fail", "error") and self.session is not None:
            excerpt = record.get("excerpt") or self.session.console_tail(CONSOLE_TAIL_LINES)
            tail = "\n".join(excerpt.splitlines()[-CONSOLE_TAIL_LINES:])
            if tail:
                self._print(Text("         console / output:", style="dim"))
                self._print(
                    Text("\n".join(f"         | {row}" for row in tail.splitlines()), style="dim")
                )
        self._refresh()

    def run_finished(self, session: RunSession) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        run = session.run
        counts = ", ".join(f"{n} {name}" for name, n in run.counts.as_dict().items() if n)
        self.console.print(
            f"[bold]verdict: {run.verdict}[/] ({counts or 'nothing ran'}); run folder {session.folder.path}"
        )
        page = session.folder.path / REPORT_HTML
        if page.is_file():
            self.console.print(f"report: {page}", highlight=False)

    # ---- rendering --------------------------------------------------------------------

    def _print(self, renderable: Any) -> None:
        if self._live is not None:
            self._live.console.print(renderable)
        else:
            self.console.print(renderable, highlight=False)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Group:
        done = sum(self.counts.values())
        table = Table.grid(padding=(0, 2))
        table.add_row(
            *(Text(f"{self.counts[name]} {name}", style=STYLES[name]) for name in ALL_OUTCOMES)
        )
        elapsed = time.monotonic() - self.started
        if self.current is not None:
            now = time.monotonic() - self.current_since
            head = Text(
                f"[{done + 1}/{self.total}] {self.current.id}: {self.current.title}  {now:.0f} s"
            )
        else:
            head = Text(f"[{done}/{self.total}]")
        return Group(head, table, Text(f"elapsed {elapsed:.0f} s", style="dim"))
