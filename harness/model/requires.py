"""The `requires` language: when a test applies to a board.

A plan is shared between labs and boards, so applicability rules are data in
a YAML file, written by people we do not control. They must never reach
Python's `eval`: this module tokenizes and parses a small expression language
itself, checks every name against the known schema when the plan is loaded
(so a typo is a load-time error with file, line and field, not a silent skip
on the bench), and evaluates the tree over plain dictionaries.

Grammar (lowest precedence first)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") operand]
    operand := STRING | NUMBER | "true" | "false" | "null" | path | "(" expr ")" | "[" [operand ("," operand)*] "]"
    path    := NAME ("." NAME | "[" "*" "]" | "[" INTEGER "]")*

Semantics worth knowing:

- `xs[*].name` projects a list of mappings onto one field, giving a list.
- Comparing two strings that both start with a digit compares them as
  versions, part by part: `"6.10.2" > "6.9"` and `"6.1.0-27-cloud-amd64" >= "6.1"`.
- Anything compared with a missing value (`null`) is false, except `==`/`!=`
  against `null` itself; a missing value is falsy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Expr",
    "RequiresError",
    "compare_values",
    "parse",
    "resolve_path",
]


class RequiresError(ValueError):
    """A syntax or name error in an expression; `column` is 1-based within the expression."""

    def __init__(self, message: str, column: int | None = None):
        self.column = column
        super().__init__(message + (f" (at column {column})" if column else ""))


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|\.|,|\*)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)

_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">=", "in", "not in"}


@dataclass(frozen=True)
class Token:
    kind: str  # number | string | op | name | keyword | end
    text: str
    column: int


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise RequiresError(f"unexpected character {text[pos]!r}", pos + 1)
        kind = match.lastgroup or ""
        if kind != "space":
            word = match.group()
            if kind == "name" and word in _KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, word, pos + 1))
        pos = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# ---- syntax tree ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Path:
    """`root.a.b[*].c`; parts are names, the int index, or '*' for projection."""

    parts: tuple[str | int, ...]
    column: int

    def __str__(self) -> str:
        out = ""
        for part in self.parts:
            if part == "*":
                out += "[*]"
            elif isinstance(part, int):
                out += f"[{part}]"
            else:
                out += ("." if out else "") + part
        return out


@dataclass(frozen=True)
class ListOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


Node = Literal | Path | ListOf | Not | BoolOp | Compare


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.pos]

    def _advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _accept(self, text: str) -> bool:
        if self.current.text == text and self.current.kind in ("op", "keyword"):
            self.pos += 1
            return True
        return False

    def _expect(self, text: str) -> None:
        if not self._accept(text):
            found = self.current.text or "end of expression"
            raise RequiresError(f"expected {text!r} but found {found!r}", self.current.column)

    def parse(self) -> Node:
        if self.current.kind == "end":
            raise RequiresError("empty expression")
        node = self._or()
        if self.current.kind != "end":
            raise RequiresError(f"unexpected {self.current.text!r}", self.current.column)
        return node

    def _or(self) -> Node:
        operands = [self._and()]
        while self._accept("or"):
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def _and(self) -> Node:
        operands = [self._not()]
        while self._accept("and"):
            operands.append(self._not())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def _not(self) -> Node:
        if self.current.text == "not" and self.current.kind == "keyword":
            self._advance()
            return Not(self._not())
        return self._compare()

    def _compare(self) -> Node:
        left = self._operand()
        token = self.current
        op: str | None = None
        if token.kind == "op" and token.text in _COMPARISONS:
            op = token.text
            self._advance()
        elif token.kind == "keyword" and token.text == "in":
            op = "in"
            self._advance()
        elif token.kind == "keyword" and token.text == "not":
            following = self.tokens[self.pos + 1]
            if following.kind == "keyword" and following.text == "in":
                op = "not in"
                self.pos += 2
        if op is None:
            return left
        right = self._operand()
        if self.current.kind == "op" and self.current.text in _COMPARISONS:
            raise RequiresError(
                "comparisons cannot be chained; join them with 'and'", self.current.column
            )
        return Compare(op, left, right)

    def _operand(self) -> Node:
        token = self.current
        if token.kind == "number":
            self._advance()
            return Literal(float(token.text) if "." in token.text else int(token.text))
        if token.kind == "string":
            self._advance()
            return Literal(_unquote(token.text))
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            self._advance()
            return Literal({"true": True, "false": False, "null": None}[token.text])
        if token.kind == "name":
            path = self._path()
            if self.current.text == "(" and self.current.kind == "op":
                raise RequiresError(
                    f"{path} is not a function: the requires language has no calls",
                    self.current.column,
                )
            return path
        if self._accept("("):
            node = self._or()
            self._expect(")")
            return node
        if self._accept("["):
            items: list[Node] = []
            if not self._accept("]"):
                items.append(self._operand())
                while self._accept(","):
                    items.append(self._operand())
                self._expect("]")
            return ListOf(tuple(items))
        found = token.text or "end of expression"
        raise RequiresError(f"expected a value, a name or '(' but found {found!r}", token.column)

    def _path(self) -> Path:
        first = self._advance()
        parts: list[str | int] = [first.text]
        while True:
            if self._accept("."):
                name = self.current
                if name.kind not in ("name", "keyword"):
                    raise RequiresError("expected a field name after '.'", name.column)
                self._advance()
                parts.append(name.text)
            elif self.current.text == "[" and self.current.kind == "op":
                self._advance()
                if self._accept("*"):
                    parts.append("*")
                elif self.current.kind == "number" and self.current.text.isdigit():
                    parts.append(int(self._advance().text))
                else:
                    raise RequiresError(
                        "expected '*' or an index inside '[ ]'", self.current.column
                    )
                self._expect("]")
            else:
                return Path(tuple(parts), first.column)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: m.group(1), body)


# ---- evaluation ----------------------------------------------------------------------------

_VERSION_PART = re.compile(r"\d+|[A-Za-z]+")


def _version_key(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (1, int(part)) if part.isdigit() else (0, part) for part in _VERSION_PART.findall(text)
    )


def _looks_like_version(value: Any) -> bool:
    return isinstance(value, str) and value[:1].isdigit()


def compare_values(op: str, left: Any, right: Any) -> bool:
    """Apply one comparison with the language's rules (versions, null, membership)."""
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op in ("in", "not in"):
        if right is None:
            return op == "not in"
        if isinstance(right, str):
            found = isinstance(left, str) and left in right
        elif isinstance(right, (list, tuple)):
            found = left in right
        else:
            found = False
        return found if op == "in" else not found
    if left is None or right is None:
        return False
    if _looks_like_version(left) and _looks_like_version(right):
        left, right = _version_key(left), _version_key(right)
    elif (
        isinstance(left, bool)
        or isinstance(right, bool)
        or isinstance(left, (int, float)) != isinstance(right, (int, float))
    ):
        return False
    try:
        if op == "<":
            return left < right
        if op == "<=":
            return left <= right
        if op == ">":
            return left > right
        if op == ">=":
            return left >= right
    except TypeError:
        return False
    raise RequiresError(f"unknown operator {op!r}")


def resolve_path(parts: tuple[str | int, ...], scope: Any) -> Any:
    """Follow a path through nested dicts/lists; a missing step gives None, never an exception."""
    value: Any = scope
    for index, part in enumerate(parts):
        if part == "*":
            return _project(value, parts[index + 1 :])
        value = _step(value, part)
        if value is None:
            return None
    return value


def _project(value: Any, rest: tuple[str | int, ...]) -> Any:
    if not isinstance(value, list):
        return None
    return [resolve_path(rest, item) for item in value]


def _step(value: Any, part: str | int) -> Any:
    if isinstance(part, int):
        return value[part] if isinstance(value, list) and -len(value) <= part < len(value) else None
    if isinstance(value, Mapping):
        return value.get(part)
    return getattr(value, part, None) if hasattr(value, "__dict__") else None


def _evaluate(node: Node, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Path):
        return resolve_path(node.parts, scope)
    if isinstance(node, ListOf):
        return [_evaluate(item, scope) for item in node.items]
    if isinstance(node, Not):
        return not _evaluate(node.operand, scope)
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(_evaluate(operand, scope) for operand in node.operands)
        return any(_evaluate(operand, scope) for operand in node.operands)
    if isinstance(node, Compare):
        return compare_values(node.op, _evaluate(node.left, scope), _evaluate(node.right, scope))
    raise TypeError(f"not an expression node: {node!r}")


def _paths(node: Node) -> list[Path]:
    if isinstance(node, Path):
        return [node]
    if isinstance(node, ListOf):
        return [path for item in node.items for path in _paths(item)]
    if isinstance(node, Not):
        return _paths(node.operand)
    if isinstance(node, BoolOp):
        return [path for operand in node.operands for path in _paths(operand)]
    if isinstance(node, Compare):
        return _paths(node.left) + _paths(node.right)
    return []


@dataclass(frozen=True)
class Expr:
    """A parsed, name-checked expression; `evaluate(scope)` is pure and cannot raise on data."""

    text: str
    tree: Node

    def evaluate(self, scope: Mapping[str, Any]) -> bool:
        return bool(_evaluate(self.tree, scope))

    def paths(self) -> list[Path]:
        return _paths(self.tree)


NameCheck = Callable[[tuple[str | int, ...]], str | None]


def parse(text: str, check_name: NameCheck | None = None) -> Expr:
    """Parse `text`; `check_name(parts)` returns an error message for an unknown name, or None."""
    tree = _Parser(text).parse()
    if check_name is not None:
        for path in _paths(tree):
            problem = check_name(path.parts)
            if problem:
                raise RequiresError(problem, path.column)
    return Expr(text, tree)
