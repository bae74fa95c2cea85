"""Which literal text a regex cannot match without: a cheap pre-filter for console scanning.

The crash watch and the board-state recogniser test every console line against a table
of regexes. Python's `re` tries every alternative at every position, so on a burst of
output (a 64 MiB `cat`, a chatty boot) the table, not the console, becomes the limit.
Almost every row names fixed text ("Kernel panic", "login: "): if none of a row's
required texts occurs in a whole chunk, no line of the chunk can match that row, and the
chunk needs no per-line work. `required_literals` works that text out from the regex's
parse tree, so the tables stay plain regexes (a profile's own prompt or bootloader banner
included). Hand-written because no library in our stack exposes it; it uses only the
parser `re` itself uses, and answers None (no pre-filter: always scan) when unsure.
"""

from __future__ import annotations

import re
from typing import Any

try:  # Python 3.11+
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - older interpreters
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

_LIT = sre_constants.LITERAL
_ZERO_WIDTH = {sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT}
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
_IGNORECASE = re.IGNORECASE.value
MAX_CLASS = 4  # a character class of at most this many characters counts as alternatives


class Needles:
    """Texts one of which any match contains; `folded` ones are compared case-insensitively."""

    def __init__(self, exact: frozenset[str], folded: frozenset[str]):
        self.exact = exact
        self.folded = folded

    def found_in(self, text: str, lowered: str | None) -> bool:
        if any(needle in text for needle in self.exact):
            return True
        return bool(self.folded) and any(needle in (lowered or "") for needle in self.folded)


def required_literals(pattern: re.Pattern[str]) -> Needles | None:
    """Needles for `pattern`, or None when it can match without any fixed text."""
    try:
        parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:  # anything unexpected: no pre-filter
        return None
    found = _sequence(list(parsed), bool(pattern.flags & _IGNORECASE))
    if not found:
        return None
    exact = frozenset(text for text, folded in found if not folded)
    folded = frozenset(text.lower() for text, folded in found if folded)
    return Needles(exact, folded)


Alternatives = set[tuple[str, bool]]  # (text, case-insensitive)


def _sequence(items: list[tuple[Any, Any]], icase: bool) -> Alternatives | None:
    """The best set of alternatives that a match of this sequence must contain one of."""
    candidates: list[Alternatives] = []
    run = ""
    for op, arg in items:
        if op is _LIT:
            run += chr(arg)
            continue
        if run:
            candidates.append({(run, icase)})
            run = ""
        if op in _ZERO_WIDTH:
            continue
        sub = _item(op, arg, icase)
        if sub:
            candidates.append(sub)
    if run:
        candidates.append({(run, icase)})
    if not candidates:
        return None
    # Prefer the set whose shortest text is longest: it rules out the most chunks.
    return max(candidates, key=lambda alts: min(len(text) for text, _ in alts))


def _item(op: Any, arg: Any, icase: bool) -> Alternatives | None:
    if op is sre_constants.SUBPATTERN:
        _group, add_flags, del_flags, sub = arg
        inner = (icase or bool(add_flags & _IGNORECASE)) and not del_flags & _IGNORECASE
        return _sequence(list(sub), inner)
    if op is sre_constants.BRANCH:
        union: Alternatives = set()
        for branch in arg[1]:
            found = _sequence(list(branch), icase)
            if not found:
                return None  # this branch can match without fixed text
            union |= found
        return union
    if op in _REPEATS:
        low, _high, sub = arg
        return _sequence(list(sub), icase) if low >= 1 else None
    if op is sre_constants.IN:
        chars = [chr(value) for kind, value in arg if kind is _LIT]
        if len(chars) == len(arg) and 0 < len(chars) <= MAX_CLASS:
            return {(char, icase) for char in chars}
    return None
