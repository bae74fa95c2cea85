"""Customer case schema (`kind: case`) and loader.

A case is what a customer hands support: who they are, what broke, where they
saw it, the steps that make it happen and what the failure looks like. It is
**untrusted input**, so loading is bounded before any YAML parser sees it (file
size, then a linear token pre-scan that refuses anchors, aliases, tags and deep
nesting, which a case never needs and which are how YAML is made to explode),
and its steps can only be the board-side step kinds of a plan: `run`, `reboot`,
`power-cycle`, `put` (of a file next to the case), `get`. A `python:` step
would run on the lab host and is refused.

Every problem is a UserError naming file, line and field (exit 2), exactly as
for plans. The guide is docs/case-format.md.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator, model_validator

from harness.errors import Location, UserError, reading_user_file
from harness.lab.crash_patterns import PATTERNS, UNEXPECTED_RESET
from harness.model.plan import ID_PATTERN, Step, Strict, TestSpec, _compile_regex
from harness.model.yamlsource import SourceDoc, load_yaml, validate
from harness.userfile import open_input

# A case file is a page of YAML; anything near this size is not a case.
MAX_CASE_BYTES = 256 * 1024
# Attachments are console logs / dmesg; bounded so matching stays fast.
MAX_ATTACHMENT_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
MAX_TOKENS = 50_000

CRASH_KINDS: tuple[str, ...] = tuple(
    dict.fromkeys([p.kind for p in PATTERNS if p.boot_marker is None] + [UNEXPECTED_RESET])
)
BETWEEN = ("none", "reboot", "power-cycle")


class Identity(Strict):
    id: str = Field(pattern=ID_PATTERN, max_length=200)
    customer_ref: str = Field(min_length=1, max_length=400)
    severity: int = Field(ge=1, le=4, description="1 = critical … 4 = low")
    subsystem: str = Field(min_length=1, max_length=200)


class Description(Strict):
    summary: str = Field(min_length=1, max_length=2000)
    how: str | None = Field(default=None, max_length=10000, description="how it arises")


class SeenOn(Strict):
    """Where the customer saw it; `model` is what a board must match to verify a fix."""

    vendor: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    revision: str = Field(min_length=1, max_length=100)
    os_release: str | None = Field(default=None, max_length=200)
    kernel: str | None = Field(default=None, max_length=200, description="uname -r")
    kernel_version: str | None = Field(default=None, max_length=400, description="uname -v")


class CaseStep(Step):
    """A plan step minus `python:` (it would run on the lab host, and a case is untrusted)."""

    @model_validator(mode="before")
    @classmethod
    def _no_host_code(cls, data: Any) -> Any:
        if isinstance(data, dict) and "python" in data:
            raise ValueError(
                "'python' steps are not allowed in a case: a case is untrusted and its "
                "steps run on the board only (use run, reboot, power-cycle, put or get)"
            )
        return data


class Signature(Strict):
    """What the failure looks like; the iteration reproduces when any (or all) of these hold."""

    exit_status: list[int] | None = Field(
        default=None, description="a trigger `run` step exits with one of these"
    )
    output: list[str] = Field(
        default=[], description="regexes searched in the trigger steps' output"
    )
    crash: list[str] = Field(default=[], description="kernel crash kinds from the crash table")
    timeout: bool = Field(default=False, description="the trigger overruns or hangs the board")
    customer_log: bool = Field(
        default=False,
        description="a board crash with the same fingerprint as a crash in an attached log",
    )
    match: Literal["any", "all"] = "any"

    @field_validator("exit_status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("output")
    @classmethod
    def _regexes(cls, values: list[str]) -> list[str]:
        return [_compile_regex(value) for value in values]

    @field_validator("crash")
    @classmethod
    def _known_kinds(cls, values: list[str]) -> list[str]:
        for value in values:
            if value not in CRASH_KINDS:
                raise ValueError(f"unknown crash kind {value!r} (one of: {', '.join(CRASH_KINDS)})")
        return values

    @model_validator(mode="after")
    def _something(self) -> Signature:
        if not (self.exit_status or self.output or self.crash or self.timeout or self.customer_log):
            raise ValueError(
                "a signature needs at least one of: exit_status, output, crash, timeout, "
                "customer_log"
            )
        return self


class Settings(Strict):
    iterations: int = Field(default=10, ge=1, le=100_000)
    between: Literal["none", "reboot", "power-cycle"] = "none"
    timeout: float = Field(default=60.0, gt=0, le=24 * 3600, description="seconds per trigger")
    transport: Literal["console", "ssh"] = "console"


class Attachment(Strict):
    file: str = Field(min_length=1, description="relative to the case file")
    kind: Literal["console", "dmesg"] = "console"


class CaseFile(Strict):
    schema_version: Literal[1] = Field(default=1, alias="schema")
    kind: Literal["case"]
    version: str = Field(default="1", min_length=1, max_length=100)
    case: Identity
    description: Description
    seen_on: SeenOn
    setup: list[CaseStep] = []
    trigger: list[CaseStep] = Field(min_length=1)
    cleanup: list[CaseStep] = []
    signature: Signature
    settings: Settings = Settings()
    attachments: list[Attachment] = []

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value


class Case(BaseModel):
    """A loaded case: the file's content plus where it came from and its digest."""

    file: Path
    sha256: str
    spec: CaseFile

    @property
    def id(self) -> str:
        return self.spec.case.id

    @property
    def folder(self) -> Path:
        return self.file.parent

    def attachment_paths(self) -> list[Path]:
        return [self.folder / a.file for a in self.spec.attachments]

    def phase(self, name: str) -> TestSpec:
        """The steps of one phase as a TestSpec, so the plan step runner can run them."""
        steps: list[Step] = list(getattr(self.spec, name))
        spec = TestSpec.model_construct(
            id=self.id,
            title=f"{self.id} {name}",
            category="case",
            description=None,
            blocker=True,
            timeout=self.spec.settings.timeout,
            requires=None,
            transport=self.spec.settings.transport,
            steps=steps,
        )
        spec._source = self.file
        spec._line = None
        return spec


def _prescan(file: Path, text: str) -> None:
    """Refuse what no case needs and what makes YAML explode, in one linear token pass.

    Token scanning is linear in the file size and keeps no tree, so this bounds
    time and memory before the composer (which is where alias bombs and deep
    nesting cost) runs at all.
    """
    _bracket_depth(file, text)
    depth = 0
    count = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            count += 1
            line = token.start_mark.line + 1
            if count > MAX_TOKENS:
                raise UserError(
                    f"too many YAML tokens (more than {MAX_TOKENS}): not a case file",
                    Location(file, line),
                )
            if isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
                raise UserError(
                    "YAML anchors and aliases are not allowed in a case file",
                    Location(file, line),
                )
            if isinstance(token, yaml.TagToken):
                raise UserError("YAML tags are not allowed in a case file", Location(file, line))
            if isinstance(
                token,
                (
                    yaml.BlockMappingStartToken,
                    yaml.BlockSequenceStartToken,
                    yaml.FlowMappingStartToken,
                    yaml.FlowSequenceStartToken,
                ),
            ):
                depth += 1
                if depth > MAX_DEPTH:
                    raise UserError(
                        f"nested deeper than {MAX_DEPTH} levels: not a case file",
                        Location(file, line),
                    )
            elif isinstance(
                token, (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
            ):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise UserError(
            f"invalid YAML: {exc.problem or 'cannot be read'}",
            Location(file, mark.line + 1 if mark else None),
        ) from None
    except yaml.YAMLError as exc:  # e.g. ReaderError: control characters
        raise UserError(f"invalid YAML: {exc}", Location(file)) from None


def _bracket_depth(file: Path, text: str) -> None:
    """Flow nesting found by counting brackets, before the scanner's look-ahead sees it.

    PyYAML's scanner looks ahead across a whole flow collection, so 100,000 `[`
    cost it a second before the first token arrives. Brackets inside quoted
    strings are counted too; a real case never leaves 32 of them open.
    """
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for char in _BRACKETS.findall(line):
            depth += 1 if char in "[{" else -1
            if depth > MAX_DEPTH:
                raise UserError(
                    f"nested deeper than {MAX_DEPTH} levels: not a case file",
                    Location(file, number),
                )
        depth = max(depth, 0)


_BRACKETS = re.compile(r"[\[\]{}]")


def _read_bounded(file: Path) -> str:
    with reading_user_file(file, "a case file"), open_input(file) as handle:
        data = handle.read(MAX_CASE_BYTES + 1)
    if len(data) > MAX_CASE_BYTES:
        raise UserError(
            f"larger than {MAX_CASE_BYTES // 1024} KiB: not a case file "
            "(attach logs as separate files under 'attachments')",
            Location(file),
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text ({exc.reason})", Location(file)) from None


def _check_files(doc: SourceDoc, spec: CaseFile, base: Path) -> None:
    for phase in ("setup", "trigger", "cleanup"):
        for index, step in enumerate(getattr(spec, phase)):
            at = (phase, index)
            if step.put is not None and step.put.local is not None:
                _plain_name(doc, step.put.local, (*at, "put", "local"))
                if not (base / step.put.local).is_file():
                    raise doc.error(
                        f"file to put not found: {base / step.put.local}", (*at, "put", "local")
                    )
            if step.get is not None and step.get.local is not None:
                _plain_name(doc, step.get.local, (*at, "get", "local"))
    for index, attachment in enumerate(spec.attachments):
        at = ("attachments", index, "file")
        _plain_name(doc, attachment.file, at)
        path = base / attachment.file
        if not path.is_file():
            raise doc.error(f"attachment not found: {path}", at)
        if path.stat().st_size > MAX_ATTACHMENT_BYTES:
            raise doc.error(
                f"attachment larger than {MAX_ATTACHMENT_BYTES >> 20} MiB: trim it to the failure",
                at,
            )
    if spec.signature.customer_log and not spec.attachments:
        raise doc.error(
            "'customer_log: true' needs an attachment with the customer's log",
            ("signature", "customer_log"),
        )


def _plain_name(doc: SourceDoc, name: str, at: tuple[str | int, ...]) -> None:
    """Files a case names stay in the case's own folder: no absolute paths, no '..'."""
    path = Path(name)
    if path.is_absolute() or ".." in path.parts:
        raise doc.error(
            "must be a file in the case's folder (no absolute path, no '..'): a case "
            "cannot reach other files of the lab host",
            at,
        )


def load_case(file: str | Path) -> Case:
    """Load and validate a case file; any problem is a UserError with file, line, field."""
    file = Path(file)
    text = _read_bounded(file)
    _prescan(file, text)
    doc = load_yaml(file, text=text)
    if isinstance(doc.data, dict) and "kind" in doc.data and doc.data["kind"] != "case":
        raise doc.error(f"expected kind 'case', got {doc.data['kind']!r}", ("kind",))
    spec = validate(doc, CaseFile)
    base = file.resolve().parent
    _check_files(doc, spec, base)
    return Case(
        file=file.resolve(),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        spec=spec,
    )
