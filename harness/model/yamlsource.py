"""YAML loading that remembers where every value came from.

Validation errors are only useful to a lab engineer when they point at a
line, so we compose the YAML node tree once, record the line of every mapping
key and sequence item by its path, and reject what PyYAML would silently
accept (duplicate keys). Only safe YAML tags are ever constructed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import Location, UserError

PathKey = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


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


class _Loader(yaml.SafeLoader):
    """SafeLoader whose value errors (e.g. the date 2026-02-30) carry the node's line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid value {node.value!r} ({exc})", node.start_mark
            ) from None


def _walk(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: Path) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                raise UserError(
                    f"duplicate key '{key}' (first given on line {seen[key]})",
                    Location(file, line, dotted((*path, key))),
                )
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, file)


def load_yaml(file: str | Path, text: str | None = None) -> SourceDoc:
    """Load one YAML document with line tracking; any problem is a UserError naming the file."""
    file = Path(file)
    if text is None:
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError("file not found", Location(file)) from None
        except IsADirectoryError:
            raise UserError("is a directory, expected a YAML file", Location(file)) from None
        except UnicodeDecodeError as exc:
            raise UserError(f"not UTF-8 text ({exc.reason})", Location(file)) from None
        except OSError as exc:
            raise UserError(f"cannot read: {exc.strerror}", Location(file)) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        raise UserError(f"invalid YAML: {problem}{context}", Location(file, line)) from None
    except yaml.YAMLError as exc:
        raise UserError(f"invalid YAML: {exc}", Location(file)) from None
    lines: dict[PathKey, int] = {}
    if node is not None:
        _walk(node, (), lines, file)
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
