"""YAML loading that remembers where every value came from.

Validation errors are only useful to a lab engineer when they point at a
line, so we compose the YAML node tree once, record the line of every mapping
key and sequence item by its path, and reject what PyYAML would silently
accept (duplicate keys). Only safe YAML tags are ever constructed.

Every YAML file the harness reads goes through `load_yaml`, and some of them
are untrusted (a customer's case file, a board profile from a vendor), so
loading is bounded by `LIMITS` before anything can grow: the byte size is
checked before parsing, and while the node tree is composed we count every
node *including what each alias expands to* and the nesting depth. That stops
alias bombs ("billion laughs"), self-referencing aliases, pathological nesting
and huge files with a `UserError` naming file and line, in bounded time and
memory. PyYAML offers no such limits itself, hence the small composer below.
It composes from libyaml's event parser when available (pure-Python scanning
takes about a second per megabyte), and nothing here recurses deeper than
`LIMITS.max_depth` levels. The limits are documented in docs/plan-format.md.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.resolver import Resolver

from harness.errors import Location, UserError, reading_user_file
from harness.userfile import open_input

PathKey = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class YamlLimits:
    """The one place that bounds every YAML file the harness loads (docs/plan-format.md)."""

    max_bytes: int = 1024 * 1024
    """File size. The largest shipped plan is about 5 KB."""
    max_nodes: int = 10_000
    """Scalars, sequences and mappings, counting each alias as everything it stands for.
    The largest shipped plan has about 400; composing 10,000 takes about 0.2 s (0.4 s on a loaded machine)."""
    max_depth: int = 50
    """Nesting of sequences and mappings; shipped files nest at most 9 deep."""


LIMITS = YamlLimits()


class YamlLimitExceeded(yaml.MarkedYAMLError):
    """A file went past one of `LIMITS` (reported as such, not as a syntax error)."""


@dataclass
class SourceDoc:
    """A loaded YAML document plus the line of every path in it."""

    file: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Iterable[str | int]) -> int | None:
        """The line of `path`, or of its nearest ancestor that exists in the file."""
        key = tuple(path)
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            key = key[:-1]

    def error(
        self, message: str, path: Iterable[str | int] = (), hint: str | None = None
    ) -> UserError:
        path = tuple(path)
        return UserError(
            message,
            Location(self.file, self.line_of(path), dotted(path) or None),
            hint,
        )


def dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _BoundedComposer(Composer):
    """PyYAML's composer, counting nodes (aliases expanded) and depth as it goes.

    An alias adds the expanded size of the node it names, so the running count
    is exactly the size the document would have as a plain tree; it is checked
    on every increment, so a bomb is refused long before it could grow. An alias
    to a node that is still being composed would make a cycle and is refused.
    """

    def __init__(self, limits: YamlLimits) -> None:
        super().__init__()
        self.limits = limits
        self._depth = 0
        self._count = 0
        self._sizes: dict[str, int] = {}  # anchor -> expanded size of its finished node
        self._open: set[str] = set()  # anchors whose node is still being composed

    def _grow(self, by: int, mark: Any) -> None:
        self._count += by
        if self._count > self.limits.max_nodes:
            raise YamlLimitExceeded(
                None,
                None,
                f"more than {self.limits.max_nodes} values (counting what every alias "
                "stands for): too large for a harness file",
                mark,
            )

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            if event.anchor in self._open:
                raise YamlLimitExceeded(
                    None,
                    None,
                    f"alias *{event.anchor} refers to a value that contains it "
                    "(a recursive structure is not allowed)",
                    event.start_mark,
                )
            self._grow(self._sizes.get(event.anchor, 1), event.start_mark)
            return super().compose_node(parent, index)
        event = self.peek_event()
        if self._depth >= self.limits.max_depth:
            raise YamlLimitExceeded(
                None,
                None,
                f"nested more than {self.limits.max_depth} levels deep",
                event.start_mark,
            )
        anchor = event.anchor
        start = self._count
        self._grow(1, event.start_mark)
        self._depth += 1
        if anchor is not None:
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if anchor is not None:
            self._open.discard(anchor)
            self._sizes[anchor] = self._count - start
        return node


try:  # libyaml's event parser: scanning in C is ~50x faster than PyYAML's pure-Python one
    from yaml._yaml import CParser as _EventSource
except ImportError:  # PyYAML built without libyaml: slower, still bounded

    class _EventSource(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)


class _Loader(_BoundedComposer, SafeConstructor, Resolver, _EventSource):
    """Events from the parser, our bounded composer, and a SafeConstructor whose
    value errors (e.g. the date 2026-02-30) carry the node's line."""

    def __init__(self, text: str, limits: YamlLimits) -> None:
        _EventSource.__init__(self, text)
        _BoundedComposer.__init__(self, limits)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid value {node.value!r} ({exc})", node.start_mark
            ) from None


class LabgridTemplate(str):
    """A labgrid `!template` scalar, kept as its text: labgrid fills in `$LG_*` itself."""


class _LabgridEnvLoader(_Loader):
    """For labgrid environment files: the same bounds, plus labgrid's own `!template` tag."""


_LabgridEnvLoader.add_constructor(
    "!template", lambda loader, node: LabgridTemplate(loader.construct_scalar(node))
)


def _walk(root: yaml.Node, lines: dict[PathKey, int], file: Path) -> None:
    """Record the line of every path, depth-first in document order, without recursion.

    Aliases are walked once per place they are used; the composer has already
    bounded that total to `LIMITS.max_nodes`.
    """
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        children: list[tuple[yaml.Node, PathKey]] = []
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = (
                    key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                )
                line = key_node.start_mark.line + 1
                if key in seen and key != "<<":
                    raise UserError(
                        f"duplicate key '{key}' (first given on line {seen[key]})",
                        Location(file, line, dotted((*path, key))),
                    )
                seen[key] = line
                lines[(*path, key)] = line
                children.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, index)] = item.start_mark.line + 1
                children.append((item, (*path, index)))
        stack.extend(reversed(children))


def _read_bounded(file: Path, limits: YamlLimits) -> str:
    """The file's text, refusing anything over `limits.max_bytes` before reading it all."""
    too_big = UserError(
        f"file is larger than {limits.max_bytes} bytes, the limit for harness YAML files",
        Location(file),
        "see 'Limits' in docs/plan-format.md",
    )
    with reading_user_file(file, "a YAML file"), open_input(file) as stream:
        info = os.fstat(stream.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size > limits.max_bytes:
            raise too_big
        raw = stream.read(limits.max_bytes + 1)
    if len(raw) > limits.max_bytes:
        raise too_big
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(f"not UTF-8 text ({exc.reason})", Location(file, line)) from None


def load_yaml(
    file: str | Path,
    text: str | None = None,
    limits: YamlLimits = LIMITS,
    *,
    labgrid_env: bool = False,
) -> SourceDoc:
    """Load one YAML document with line tracking; any problem is a UserError naming the file.

    Bounded by `limits` in size, node count (aliases expanded) and depth, so an
    untrusted file costs well under a second and a few tens of MB at most.
    """
    file = Path(file)
    if text is None:
        text = _read_bounded(file, limits)
    elif len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise UserError(
            f"text is larger than {limits.max_bytes} bytes, the limit for harness YAML files",
            Location(file),
        )
    loader = (_LabgridEnvLoader if labgrid_env else _Loader)(text, limits)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except YamlLimitExceeded as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise UserError(
            f"refused: {exc.problem}", Location(file, line), "see 'Limits' in docs/plan-format.md"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        raise UserError(f"invalid YAML: {problem}{context}", Location(file, line)) from None
    except yaml.YAMLError as exc:
        raise UserError(f"invalid YAML: {exc}", Location(file)) from None
    finally:
        loader.dispose()
    lines: dict[PathKey, int] = {}
    if node is not None:
        _walk(node, lines, file)
    return SourceDoc(file=file, data=data, lines=lines)


def _describe_error(err: Mapping[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    kind = err.get("type", "")
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known field"
    got = err.get("input")
    if kind not in ("missing",) and not isinstance(got, (dict, list)) and got is not None:
        return f"{msg} (got {got!r})"
    return msg


def validate(doc: SourceDoc, model: type[M], root: PathKey = ()) -> M:
    """Validate `doc.data` (or the part at `root`) against a pydantic model, errors as UserError.

    Only the first error is reported: one clear paragraph beats a wall of
    cascading complaints, and fixing it usually fixes the rest.
    """
    data: Any = doc.data
    for part in root:
        data = data[part]
    if data is None:
        raise doc.error("file is empty", root)
    if not isinstance(data, dict):
        raise doc.error(f"expected a mapping at the top level, got {type(data).__name__}", root)
    try:
        return model.model_validate(data, context={"source": doc})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = tuple(part for part in first["loc"] if not _is_union_tag(part))
        raise doc.error(_describe_error(first), (*root, *loc)) from None


def _is_union_tag(part: Any) -> bool:
    """pydantic puts the union member's name into `loc`; those are not user fields."""
    return isinstance(part, str) and (part.startswith("function-") or "[" in part)
