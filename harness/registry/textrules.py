"""Which characters a registry text field may hold, so what is stored is what a reader sees.

A name (vendor, model, case id, label, ...) is one printable line: control
characters, CR/LF, Unicode line separators and bidirectional overrides would
let a stored name forge extra lines in a terminal table, a log or the audit
trail, or show different text than it holds. Free text (a case summary, a
revocation reason) may also hold tabs and line breaks. Lone surrogates cannot
be encoded for the database at all. Checked with `unicodedata` categories, so
the rule covers every control character rather than a hand-kept list.
"""

from __future__ import annotations

import unicodedata

_MULTILINE_ALLOWED = frozenset("\t\n\r")
# Bidirectional embeddings, overrides and isolates: they reorder how text is shown.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def check_text(value: str, *, multiline: bool = False) -> str | None:
    """None when `value` is acceptable, else the reason (to follow "field 'x' ")."""
    for index, char in enumerate(value):
        if multiline and char in _MULTILINE_ALLOWED:
            continue
        category = unicodedata.category(char)
        if category == "Cc":
            kind = "a line break" if char in "\r\n" else "a control character"
            rule = (
                "only tabs and line breaks are allowed"
                if multiline
                else "it must be one printable line"
            )
            return f"contains {kind} ({_visible(char)} at position {index}); {rule}"
        if category == "Cs":
            return f"contains an unpaired surrogate ({_visible(char)} at position {index})"
        if category in ("Zl", "Zp") or char in _BIDI:
            return f"contains an invisible layout character ({_visible(char)} at position {index})"
    return None


def _visible(char: str) -> str:
    return f"U+{ord(char):04X}"
