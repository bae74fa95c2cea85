"""pytest plugin: a plan's tests become pytest items, so pytest's selection and reporting apply.

Use it with `pytest -p harness.run.plugin --board B --plan P --lg-env ENV [PLAN]` (the plan
file is collected even when not given as an argument), or through `harness run`, which wraps
exactly this. Item names are the plan's test ids, so `-k`, `-x`, `--lf`, `-m <category>`,
`-m blocker` and `--junitxml` work as usual.

How outcomes reach pytest: the whole test (all attempts, recovery, waiver) runs in the
item's *setup* phase and is written to results.jsonl before pytest sees anything. Then:
`error` is raised from setup (pytest reports an error, JUnit `<error>`); `skip` calls
pytest.skip; `fail` is raised from the call phase (a failure, JUnit `<failure>`); `waived`
is an xfail (pytest shows `x`; it did fail, and is accepted); `not-run` is what pytest
never started (deselected, or stopped by -x / a lost board) and is written at the end.
The process exit status is the harness's: 0 certified, 1 a test failed, 3 incomplete.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import UserError
from harness.model.board import BoardProfile, find_board
from harness.model.plan import Plan, TestSpec, load_plan
from harness.run.session import LabGuard, ResultsUnwritable, RunListener, RunSession

PLUGIN_NAME = "harness-run"
BUILTIN_MARKERS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "timeout"}
)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("harness", "board certification run (harness.run.plugin)")
    if pluginmanager.is_blocked("labgrid"):
        # `harness run` keeps labgrid's own pytest plugin out (it needs pytest's terminal
        # reporter and sets up logging we do not want); the option keeps its name.
        group.addoption("--lg-env", dest="lg_env", help="labgrid environment file")
    group.addoption("--board", help="board profile (path or name in boards/)")
    group.addoption("--plan", help="test plan YAML (kind: plan)")
    group.addoption(
        "--run-dir", default="results", help="folder that holds run folders (default: results)"
    )
    group.addoption(
        "--run-id", default=None, help="id for a new run, or the run to continue with --resume-run"
    )
    group.addoption(
        "--resume-run",
        action="store_true",
        default=False,
        help="continue run --run-id: skip finished tests",
    )
    group.addoption(
        "--retries", type=int, default=1, help="attempts after an infrastructure error (default 1)"
    )
    group.addoption("--operator", default=None, help="who runs this (default: $USER)")
    group.addoption(
        "--lab-kind", default=None, help="virtual|env|place for run.json (set by `harness run`)"
    )
    group.addoption("--lab-name", default=None, help="lab name for run.json (set by `harness run`)")


def pytest_configure(config: pytest.Config) -> None:
    plan_file = config.getoption("plan")
    if not plan_file:
        return
    board_ref = config.getoption("board")
    if not board_ref:
        raise pytest.UsageError("harness: --plan needs --board")
    try:
        plan = load_plan(plan_file)
        profile = find_board(board_ref)
    except UserError as exc:
        raise pytest.UsageError(f"harness: {exc}") from None
    env = getattr(config.option, "lg_env", None) or os.environ.get("LG_ENV")
    plugin = HarnessRunPlugin(config, plan, profile, Path(env) if env else None)
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        config.args = [str(plan.file)]


def _marker_name(category: str, taken: set[str]) -> str:
    name = category.replace("-", "_")
    return f"plan_{name}" if name in taken else name


class PlanFile(pytest.File):
    """The plan file as a pytest collector; its items are the plan's tests, includes resolved."""

    def collect(self) -> Any:
        plugin: HarnessRunPlugin = self.config.pluginmanager.get_plugin(PLUGIN_NAME)
        for test in plugin.plan.tests:
            yield PlanItem.from_parent(self, name=test.id, test=test, plugin=plugin)


class PlanItem(pytest.Item):
    def __init__(self, *, test: TestSpec, plugin: HarnessRunPlugin, **kwargs: Any):
        super().__init__(**kwargs)
        self.test = test
        self.plugin = plugin
        self.record: dict[str, Any] | None = None
        # Plan items use no fixtures; labgrid's own plugin looks for this attribute on every item.
        self.fixturenames: list[str] = []
        self.add_marker(plugin.markers[test.category])
        self.add_marker("blocker" if test.blocker else "non_blocker")

    def setup(self) -> None:
        self.record = self.plugin.run_test(self)
        outcome = self.record["outcome"]
        for name, value in (("outcome", outcome), ("attempt", self.record["attempt"])):
            self.user_properties.append((name, value))
        if outcome == "error":
            raise HarnessTestError(self.record)
        if outcome == "skip":
            pytest.skip(self.record["reason"])

    def runtest(self) -> None:
        assert self.record is not None
        if self.record["outcome"] == "fail":
            raise HarnessTestFailed(self.record)
        if self.record["outcome"] == "waived":
            pytest.xfail(self.record["reason"])

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (HarnessTestFailed, HarnessTestError)):
            return excinfo.value.describe()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.test._line - 1 if self.test._line else None
        return (self.test.source_file or self.path, line, f"{self.test.id}: {self.test.title}")


class _Outcome(Exception):
    def __init__(self, record: dict[str, Any]):
        self.record = record
        super().__init__(record["reason"])

    def describe(self) -> str:
        text = f"{self.record['outcome']}: {self.record['reason']}"
        if self.record.get("excerpt"):
            text += "\n" + self.record["excerpt"]
        return text


class HarnessTestFailed(_Outcome):
    """The board did not meet the test (outcome fail)."""


class HarnessTestError(_Outcome):
    """The lab or harness failed during the test (outcome error)."""


class HarnessRunPlugin:
    """Per-pytest-session state: the plan, the RunSession, and what pytest deselected."""

    def __init__(
        self, config: pytest.Config, plan: Plan, profile: BoardProfile, env_file: Path | None
    ):
        self.config = config
        self.plan = plan
        self.profile = profile
        self.env_file = env_file
        self.session: RunSession | None = None
        self.not_run: dict[str, str] = {}
        self.exit_code: int | None = None
        self.halted: str | None = None  # why the run stopped without finishing (disk full)
        # A category must not reuse a marker with a meaning (a category "skip" would skip!).
        taken = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
        taken |= BUILTIN_MARKERS
        self.markers = {test.category: _marker_name(test.category, taken) for test in plan.tests}
        for category, marker in sorted(set(self.markers.items())):
            config.addinivalue_line("markers", f"{marker}: plan category '{category}'")
        config.addinivalue_line("markers", "blocker: a plan test that must pass for certification")
        config.addinivalue_line(
            "markers", "non_blocker: a plan test that does not block certification"
        )

    # ---- pytest hooks -----------------------------------------------------------------

    def pytest_collect_file(
        self, file_path: Path, parent: pytest.Collector
    ) -> pytest.Collector | None:
        if file_path.resolve() == self.plan.file:
            return PlanFile.from_parent(parent, path=file_path)
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        option = self.config.option
        lab_kind = option.lab_kind or ("virtual" if self.profile.lab.virtual else "env")
        lab_name = option.lab_name or str(self.env_file or self.profile.name)
        try:
            self.session = RunSession(
                self.plan,
                self.profile,
                env_file=self.env_file,
                lab_kind=lab_kind,
                lab_name=lab_name,
                results_root=Path(option.run_dir),
                run_id=option.run_id,
                resume=option.resume_run,
                retries=option.retries,
                operator=option.operator,
                selection=self._selection(),
            )
        except UserError as exc:
            raise pytest.UsageError(f"harness: {exc}") from None
        except OSError as exc:  # e.g. a results folder on a full or read-only disk
            raise pytest.UsageError(
                f"harness: cannot create the run folder {Path(option.run_dir) / option.run_id}: "
                f"{exc.strerror or exc}"
            ) from None
        for plugin in self.config.pluginmanager.get_plugins():
            if isinstance(plugin, RunListener):
                self.session.listeners.append(plugin)
            if isinstance(plugin, LabGuard):
                self.session.guards.append(plugin)
        self.session.run_started()

    def _selection(self) -> str | None:
        option = self.config.option
        parts = []
        if getattr(option, "keyword", ""):
            parts.append(f"-k {option.keyword}")
        if getattr(option, "markexpr", ""):
            parts.append(f"-m {option.markexpr}")
        if getattr(option, "lf", False):
            parts.append("--lf")
        return " ".join(parts) or None

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        assert self.session is not None
        finished = self.session.finished_ids()
        if not finished:
            return
        keep = [
            item for item in items if not (isinstance(item, PlanItem) and item.test.id in finished)
        ]
        if len(keep) != len(items):
            items[:] = keep

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            if isinstance(item, PlanItem):
                self.not_run[item.test.id] = f"deselected ({self._selection() or 'selection'})"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.session is None:
            return
        # pytest reports its own stops (-x, a lost board: `shouldstop`) as INTERRUPTED too;
        # only a real Ctrl-C/SIGTERM leaves the run unfinished.
        signalled = exitstatus == pytest.ExitCode.INTERRUPTED and not (
            session.shouldstop or session.shouldfail
        )
        if self.halted is not None or signalled:
            self.session.halt()
            return
        if session.shouldfail:
            default = f"run stopped early: {session.shouldfail}"
        elif session.shouldstop:
            default = f"run stopped: {session.shouldstop}"
        else:
            default = None
        try:
            self.exit_code = self.session.finish(self.not_run, default)
        except OSError as exc:  # the results disk filled up: the run stays resumable
            self._halt(
                f"cannot finish run {self.session.run_id} in {self.session.folder.path}: "
                f"{exc.strerror or exc}; nothing finished is lost: make room, then continue "
                f"with --resume {self.session.run_id}"
            )
            return
        if exitstatus != pytest.ExitCode.USAGE_ERROR:
            session.exitstatus = self.exit_code

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return [f"harness: plan {self.plan.id} {self.plan.version} on board {self.profile.name}"]

    # ---- running one test -------------------------------------------------------------

    def _halt(self, reason: str) -> None:
        """Stop writing: say why once, close the board, leave run.json as it is (status running)."""
        assert self.session is not None
        self.halted = reason
        print(f"harness: {reason}", file=sys.stderr, flush=True)
        self.session.halt()

    def run_test(self, item: PlanItem) -> dict[str, Any]:
        assert self.session is not None
        try:
            record = self.session.execute(item.test)
        except (ResultsUnwritable, OSError) as exc:  # results disk full (or gone)
            reason = (
                str(exc)
                if isinstance(exc, ResultsUnwritable)
                else (
                    f"cannot write to the run folder {self.session.folder.path}: "
                    f"{exc.strerror or exc}; nothing finished is lost: make room, then continue "
                    f"with --resume {self.session.run_id}"
                )
            )
            self._halt(reason)
            pytest.exit(reason, returncode=pytest.ExitCode.INTERNAL_ERROR)
        if self.session.stop_reason is not None:
            item.session.shouldstop = self.session.stop_reason
        return record
