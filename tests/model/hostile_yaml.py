"""A catalogue of hostile YAML files, shared by the loader tests and the fuzz tests.

Each entry writes one file and names the line the harness must report (None
where no line exists, e.g. a file refused for its size before parsing). The
files are what issue 10 found: alias bombs, self-referencing aliases, deep
nesting, huge scalars and huge files, plus variants that slip past one limit
but not the next (a merge-key bomb, a wide flat list, a character device), and a
named pipe, which blocks whoever opens it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.model.yamlsource import LIMITS

HEAD = "kind: plan\nid: hostile\nversion: '1'\ntitle: hostile\n"


def _laughs(levels: int) -> str:
    """The classic bomb: each level is a list of ten aliases to the previous one."""
    lines = [HEAD, 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels + 1):
        refs = ",".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def _merge_bomb(levels: int) -> str:
    """The same growth through merge keys, which SafeLoader expands itself."""
    lines = [HEAD, "m0: &m0 {a0: x, b0: x, c0: x, d0: x, e0: x, f0: x, g0: x, h0: x}"]
    for level in range(1, levels + 1):
        keys = ", ".join(f"k{i}: *m{level - 1}" for i in range(10))
        lines.append(f"m{level}: &m{level} {{<<: *m{level - 1}, {keys}}}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Hostile:
    name: str
    write: Callable[[Path], None]
    line: int | None  # the line the error must name (None: the file as a whole)
    words: str  # words the message must contain


def _text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text)


def _big_scalar(path: Path) -> None:
    with path.open("w") as out:
        out.write(HEAD + "title2: ")
        chunk = "x" * (1 << 20)
        for _ in range(20):
            out.write(chunk)
        out.write("\n")


def _huge_file(path: Path) -> None:
    """200 MB, sparse so the test does not fill the disk: only the size is checked first."""
    with path.open("w") as out:
        out.write(HEAD + "tests: []\n")
        out.truncate(200 * 1024 * 1024)


def _just_under_cap_flat_list(path: Path) -> None:
    """Under the byte cap, but far more values than the node budget allows."""
    items = (LIMITS.max_bytes - 100) // 2
    path.write_text(HEAD + "x: [" + "1," * items + "]\n")


def _just_under_cap_scalar(path: Path) -> None:
    path.write_text(HEAD + "title2: " + "y" * (LIMITS.max_bytes - 200) + "\n")


def _fifo(path: Path) -> None:
    """A named pipe: opening it for reading waits for a writer, forever if none comes."""
    os.mkfifo(path)


def _device(path: Path) -> None:
    """A path that never ends: reading must stop at the cap, not at end of file."""
    path.symlink_to("/dev/zero")


CATALOGUE = [
    # l3 (line 9) stands for 11,111 values: the first level past LIMITS.max_nodes
    Hostile("billion-laughs-6", _text(_laughs(6)), 9, "counting what every alias"),
    Hostile("billion-laughs-9", _text(_laughs(9)), 9, "counting what every alias"),
    Hostile("merge-key-bomb-8", _text(_merge_bomb(8)), None, "counting what every alias"),
    Hostile(
        "nesting-100000-flow",
        _text(HEAD + "x: " + "[" * 100_000 + "]" * 100_000 + "\n"),
        5,
        "nested",
    ),
    Hostile(
        "nesting-100000-mappings",
        _text(HEAD + "x: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n"),
        5,
        "nested",
    ),
    Hostile("nesting-block-sequences", _text(HEAD + "x:\n" + "- " * 20_000 + "1\n"), 6, "nested"),
    Hostile("self-alias-sequence", _text(HEAD + "x: &a [1, *a]\n"), 5, "recursive"),
    Hostile("self-alias-mapping", _text(HEAD + "x: &a {y: *a}\n"), 5, "recursive"),
    Hostile("self-alias-merge", _text(HEAD + "x: &a {<<: *a}\n"), 5, "recursive"),
    Hostile("self-alias-nested", _text(HEAD + "x: &a\n  - [[*a]]\n"), 6, "recursive"),
    Hostile("scalar-20MB", _big_scalar, None, "larger than"),
    Hostile("file-200MB", _huge_file, None, "larger than"),
    Hostile("flat-list-under-cap", _just_under_cap_flat_list, 5, "counting what every alias"),
    Hostile("scalar-under-cap", _just_under_cap_scalar, None, "title2"),
    Hostile("endless-device", _device, None, "larger than"),
    Hostile("named-pipe", _fifo, None, "is a pipe"),
    Hostile("not-utf8", lambda p: p.write_bytes(HEAD.encode() + b"x: \xff\xfe\n"), 5, "UTF-8"),
]
