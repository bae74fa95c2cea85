"""The run folder `results/<run-id>/`: the one place a run's evidence lives.

Results are appended to results.jsonl and fsync'd after every test, so a
harness killed mid-run (or a host that loses power) keeps everything that had
finished; a torn last line from such a kill is recognised and cut off before
anything is appended again. run.json is replaced atomically (write, fsync,
rename), so a reader never sees half of it.

Both files are written and read only through the record models
(harness/model/records.py); a line or a run.json that does not fit them is
reported with its file, line and field, never guessed at.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ValidationError

from harness.durable import fsync_dir, write_atomic
from harness.errors import Location, UserError
from harness.model.case_records import CaseRunRecord
from harness.model.records import ResultRecord, RunRecord

RESULTS = "results.jsonl"
RUN_JSON = "run.json"
CONSOLE_LOG = "console.log"
JUNIT = "junit.xml"
INVENTORY = "inventory.json"
ARTIFACTS = "artifacts"
SUBMISSION = "submission.json"

RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[a-z0-9._-]+-[0-9a-f]{4}$")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_results_root(results_root: Path) -> None:
    """`--results` names a folder (made when missing): anything else there is bad input,
    found before a board is started or a place is held."""
    if results_root.exists() and not results_root.is_dir():
        raise UserError(
            "is not a folder: --results names the folder that holds the run folders",
            Location(str(results_root), None, "--results"),
        )


def new_run_id(board_name: str, now: dt.datetime | None = None) -> str:
    """Sortable by start time, readable (board name), unique (random suffix)."""
    moment = (now or utc_now()).astimezone(dt.UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{board_name}-{secrets.token_hex(2)}"


LineT = TypeVar("LineT", bound=BaseModel)
RunT = TypeVar("RunT", bound=BaseModel)
RecordT = TypeVar("RecordT", bound=BaseModel)


class Folder(Generic[LineT, RunT]):
    """Reads and writes one run's folder; all writes are durable before they return.

    Generic over the two record models, so a certification run (`RunFolder`) and a repro
    run (harness/repro/folder.py `ReproFolder`) share one writer and one reader.
    """

    line_model: type[LineT]
    run_model: type[RunT]

    def __init__(self, path: Path):
        self.path = path
        self.run_id = path.name

    @classmethod
    def create(cls, results_root: Path, run_id: str) -> Self:
        results_root.mkdir(parents=True, exist_ok=True)
        path = results_root / run_id
        path.mkdir()  # never reuse a folder: a clash means a duplicate run id
        fsync_dir(results_root)
        return cls(path)

    @classmethod
    def open_existing(cls, results_root: Path, run_id: str) -> Self:
        path = results_root / run_id
        if not (path / RUN_JSON).is_file():
            known = sorted(p.name for p in results_root.glob("*/") if (p / RUN_JSON).is_file())[-5:]
            raise UserError(
                f"no run {run_id!r} to resume in {results_root}",
                Location(str(path), None, "--resume"),
                f"recent runs: {', '.join(known)}" if known else None,
            )
        folder = cls(path)
        folder.repair_results()
        return folder

    # ---- results.jsonl ----------------------------------------------------------------

    @property
    def results_file(self) -> Path:
        return self.path / RESULTS

    def append_result(self, record: LineT) -> None:
        data = record.model_dump(mode="json", by_alias=True)
        line = json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"
        with open(self.results_file, "a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())

    def read_results(self) -> list[LineT]:
        """Every complete line; a torn (unterminated or unparsable) last line is ignored."""
        return read_record_lines(self.results_file, self.line_model)

    def repair_results(self) -> int:
        """Cut a torn last line off, so the next append starts on a line of its own."""
        if not self.results_file.exists():
            return 0
        raw = self.results_file.read_bytes()
        keep = raw.rfind(b"\n") + 1
        if keep == len(raw):
            return 0
        with open(self.results_file, "r+b") as out:
            out.truncate(keep)
            out.flush()
            os.fsync(out.fileno())
        return len(raw) - keep

    # ---- run.json ---------------------------------------------------------------------

    def write_run(self, run: RunT) -> None:
        self.write_json(RUN_JSON, run.model_dump(mode="json", by_alias=True))

    def read_run(self) -> RunT:
        """run.json as the folder's run model; a file that does not fit is a `UserError`."""
        return read_record(self.path / RUN_JSON, self.run_model)

    def write_json(self, name: str, data: Any) -> None:
        write_atomic(self.path / name, json.dumps(data, indent=2, sort_keys=True) + "\n")

    @property
    def console_log(self) -> Path:
        return self.path / CONSOLE_LOG

    @property
    def junit_file(self) -> Path:
        return self.path / JUNIT

    @property
    def artifacts(self) -> Path:
        path = self.path / ARTIFACTS
        path.mkdir(exist_ok=True)
        return path


class RunFolder(Folder[ResultRecord, RunRecord]):
    """A certification run's folder: `ResultRecord` lines and a `RunRecord` run.json."""

    line_model = ResultRecord
    run_model = RunRecord


def _unfit(path: Path, exc: ValidationError, line: int | None = None) -> UserError:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or None
    return UserError(
        f"does not fit the run folder format: {first['msg']}",
        Location(str(path), line, where),
        'see harness/README.md "Run folder"',
    )


def parse_record(
    model: type[RecordT], text: str | bytes, path: Path, line: int | None = None
) -> RecordT:
    """`text` as `model`; what does not fit is a `UserError` naming file, line and field."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise UserError("is not valid JSON", Location(str(path), line)) from None
        raise _unfit(path, exc, line) from None


def read_record(path: Path, model: type[RunT]) -> RunT:
    """A run.json as `model`; a file that does not fit is a `UserError` naming the field."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError("not a run folder: run.json is missing", Location(str(path))) from None
    return parse_record(model, raw, path)


def read_run_record(path: Path) -> RunRecord:
    """run.json of a certification run as a `RunRecord`."""
    return read_record(path, RunRecord)


def read_any_run_json(path: Path) -> dict[str, Any]:
    """run.json of a certification run (`RunRecord`) or of a repro run (`kind: repro`,
    `CaseRunRecord`), checked against its model; what a bundle carries."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError("not a run folder: run.json is missing", Location(str(path))) from None
    try:
        kind = json.loads(raw).get("kind")
    except (ValueError, AttributeError, RecursionError):
        kind = None  # the model's own parser names what is wrong
    model: type[BaseModel] = CaseRunRecord if kind == "repro" else RunRecord
    return parse_record(model, raw, path).model_dump(mode="json", by_alias=True)


def write_submission(
    run_dir: Path, status: str, reason: str | None = None, what_to_do: str | None = None
) -> None:
    """submission.json: how the delivery of a finished run went, in one shape for every writer.

    `harness run`, `harness repro`, `registry submit` and the `registry sync` that later
    delivers a queued run all record through here: `status` (delivered, queued, or
    "unavailable: why"), `at`, and for a queued run the `reason` and `what_to_do`.
    run.json is never touched, and the file is never part of the bundle.
    """
    record = {"status": status, "at": iso(utc_now())}
    if reason is not None:
        record.update(reason=reason, what_to_do=what_to_do or "")
    RunFolder(Path(run_dir)).write_json(SUBMISSION, record)


def read_result_lines(path: Path) -> list[ResultRecord]:
    """Every complete line of a certification run's results.jsonl (see `read_record_lines`)."""
    return read_record_lines(path, ResultRecord)


def read_record_lines(path: Path, model: type[LineT]) -> list[LineT]:
    """Every complete line of a results.jsonl; a torn (unterminated or unparsable) last line is ignored.

    A line that is complete but does not fit `model` is a `UserError` naming its line
    number and field: it was not torn by a kill, something else wrote it.
    """
    if not path.exists():
        return []
    records: list[LineT] = []
    lines = path.read_bytes().split(b"\n")
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if index == len(lines) - 1:
            break  # no newline after it: a write that was cut short, not known to be complete
        records.append(parse_record(model, line, path, index + 1))
    return records
