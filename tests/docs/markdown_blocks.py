"""The command blocks of a Markdown document, and the doc-test convention that selects them.

The convention (also in docs/README.md, where writers look for it):

- A fenced block tagged `sh` is commands: the doc-test runs it verbatim with bash
  (`set -euo pipefail`), after the blocks above it in the same document.
- A fenced block tagged `console` is a session: each line starting with `$ ` is a command
  (a line ending in `\\` continues on the next), run verbatim; the other lines are its
  expected output, and each must appear in what the command printed (`...` stands for any
  text within a line).
- Every other fenced block needs a tag saying what it is (`text`, `yaml`, `json`, `python`,
  `ini`, ...) and is not run. An untagged fence or an indented code block fails the doc-test,
  so no command block escapes it by accident.
- `<!-- example: why -->` just before an `sh`/`console` block shows a command that cannot run
  in a test (a physical board, the machine's own setup); the doc-test skips that block only.
- `<!-- machine: NAME -->` before a block runs it and the following blocks on machine NAME:
  its own HARNESS_DATA_HOME and shell variables; all machines share the working folder, so a
  file one machine writes is the file the doc tells the reader to copy to another.
- `<!-- doctest: MARK ... -->` anywhere in a document gives its test those pytest marks
  (e.g. `qemu slow` for a document that boots a QEMU board).

Parsing is markdown-it-py's CommonMark parser (already installed with rich), not regular
expressions, so nested lists, tildes and indented fences are read as a renderer reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

RUN_TAGS = ("sh", "console")
_MARKER = re.compile(r"^<!--\s*(example|machine|doctest)\b:?\s*(.*?)\s*-->\s*$", re.S)


@dataclass
class Command:
    text: str
    expected: list[str] = field(default_factory=list)


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    tag: str
    source: str
    machine: str
    example: bool
    commands: list[Command]

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Document:
    path: Path
    blocks: list[Block]  # runnable blocks (sh/console), examples included
    marks: list[str]
    problems: list[str]  # convention violations, each naming file and line

    @property
    def runnable(self) -> list[Block]:
        return [b for b in self.blocks if not b.example]


def _console_commands(source: str) -> list[Command]:
    commands: list[Command] = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            text = line[2:]
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text += "\n" + lines[i]
            commands.append(Command(text))
        elif line.strip() and commands:
            commands[-1].expected.append(line.rstrip())
        i += 1
    return commands


def parse(path: Path) -> Document:
    text = path.read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").parse(text)
    blocks: list[Block] = []
    marks: list[str] = []
    problems: list[str] = []
    machine = "main"
    example_next = False
    for token in tokens:
        line = (token.map[0] + 1) if token.map else 0
        if token.type == "html_block":
            found = _MARKER.match(token.content.strip())
            if not found:
                continue
            kind, value = found.groups()
            if kind == "example":
                example_next = True
            elif kind == "machine":
                if not re.fullmatch(r"[a-z][a-z0-9-]*", value):
                    problems.append(f"{path}:{line}: machine name {value!r} must be like 'lab-1'")
                machine = value
            else:
                marks.extend(value.split())
            continue
        if token.type == "code_block":
            problems.append(
                f"{path}:{line}: indented code block; use a fenced block with a tag "
                f"({', '.join(RUN_TAGS)} to run it, text or a language name not to)"
            )
            continue
        if token.type != "fence":
            if token.type in ("paragraph_open", "heading_open", "table_open"):
                example_next = False  # the marker belongs to the block right after it only
            continue
        tag = token.info.strip().split()[0] if token.info.strip() else ""
        if not tag:
            problems.append(
                f"{path}:{line}: fenced block without a tag; tag it {' or '.join(RUN_TAGS)} "
                "to run it, text or a language name not to (see docs/README.md)"
            )
        elif tag in RUN_TAGS:
            commands = (
                _console_commands(token.content) if tag == "console" else [Command(token.content)]
            )
            if tag == "console" and not commands:
                problems.append(f"{path}:{line}: console block without a '$ ' command line")
            blocks.append(Block(path, line, tag, token.content, machine, example_next, commands))
        example_next = False
    return Document(path, blocks, marks, problems)


def output_matches(expected: str, output: str) -> bool:
    """An expected line appears in some output line; `...` matches any text within that line."""
    pieces = [re.escape(p.strip()) for p in expected.split("...")]
    pattern = re.compile(".*?".join(p for p in pieces))
    return any(pattern.search(line) for line in output.splitlines())
