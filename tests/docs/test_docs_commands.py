"""Every command the docs tell a user to copy is run verbatim, so a doc that drifts fails CI.

Collects README.md and every docs/*.md, and follows the convention in
tests/docs/markdown_blocks.py (and docs/README.md): `sh` blocks and the `$ ` lines of
`console` blocks run in order, with bash, in a fresh world per document:

- a working folder that looks like this checkout (its top-level entries linked in, no
  results), with `harness` on PATH meaning this checkout's package;
- per machine (`<!-- machine: NAME -->`), a fresh HARNESS_DATA_HOME and its own shell
  variables; no registry URL, token or lab name inherited from the caller;
- a private network and mount namespace: its own loopback (so documented default ports such
  as 5432 and 8765 are free), and /etc/hosts naming `registry.example.org` as that loopback,
  so a walkthrough can use a realistic host name;
- for a document that mentions PostgreSQL: a real PostgreSQL 15 server on localhost:5432 in
  that namespace, whose superuser the `postgres` account reaches (PGHOST/PGUSER);
- virtual boards under a private HARNESS_LAB_DIR.

Everything a document starts (`... &`) runs in one process group, ended after the document.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.registry.pgtemp import TempPostgres
from tests.docs.markdown_blocks import Block, Document, output_matches, parse

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
HOSTS = "127.0.0.1 localhost registry.example.org\n::1 localhost ip6-localhost\n"
BLOCK_TIMEOUT = 1500  # a QEMU certification on a loaded host; only a bound for a hang
_INHERITED_OUT = ("HARNESS_REGISTRY_URL", "HARNESS_REGISTRY_TOKEN", "HARNESS_REGISTRY_DB",
                  "HARNESS_LAB_NAME", "HARNESS_DATA_HOME", "HARNESS_LAB_DIR", "SSL_CERT_FILE",
                  "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD")  # fmt: skip


def test_every_code_block_in_the_docs_follows_the_doc_test_convention() -> None:
    problems = [p for doc in DOCS for p in parse(doc).problems]
    assert problems == [], "\n".join(problems)


class NamespacedPostgres(TempPostgres):
    """The suite's throwaway PostgreSQL, started inside the document's network namespace."""

    def __init__(self, anchor: int):
        super().__init__()
        self.anchor = anchor
        self.port = 5432  # the namespace has its own loopback: Debian's default port is free

    def _as_postgres(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", f"--target={self.anchor}", "--net", "--mount", "--",
             "runuser", "-u", "postgres", "--", *args],
            capture_output=True, text=True, check=False, cwd=self.root,
        )  # fmt: skip


class DocWorld:
    """The fresh world one document's commands run in (see the module docstring)."""

    def __init__(self, tmp: Path, needs_postgres: bool):
        self.tmp = tmp
        self.work = tmp / "work"
        self.work.mkdir()
        for entry in REPO.iterdir():
            if not entry.name.startswith(".") and entry.name != "results":
                (self.work / entry.name).symlink_to(entry)
        self.bin = tmp / "bin"
        self.bin.mkdir()
        wrapper = self.bin / "harness"
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m harness "$@"\n')
        wrapper.chmod(0o755)
        hosts = tmp / "hosts"
        hosts.write_text(HOSTS)
        self.anchor = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c",
             f"ip link set lo up && mount --bind {hosts} /etc/hosts && echo ready && exec sleep infinity"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, process_group=0,
        )  # fmt: skip
        assert self.anchor.stdout is not None
        if self.anchor.stdout.readline().strip() != "ready":
            raise RuntimeError(f"cannot make the doc-test namespace: {self.anchor.stderr.read()}")  # type: ignore[union-attr]
        self.postgres: TempPostgres | None = None
        if needs_postgres:
            self.postgres = NamespacedPostgres(self.anchor.pid).start()
        self.machines: set[str] = set()

    def env(self, machine: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _INHERITED_OUT}
        env.update(
            PATH=f"{self.bin}:{env.get('PATH', '/usr/bin:/bin')}",
            PYTHONPATH=str(REPO),
            HARNESS_DATA_HOME=str(self.tmp / "machines" / machine / "data"),
            HARNESS_LAB_DIR=str(self.tmp / "lab"),
        )
        if self.postgres is not None:
            env.update(PGHOST="127.0.0.1", PGUSER="harness", PGDATABASE="postgres")
        return env

    def run(self, block: Block, command: str, index: int) -> tuple[int, str]:
        """Run one command text as `block.machine`, carrying its variables and folder over."""
        state = self.tmp / "machines" / block.machine
        state.mkdir(parents=True, exist_ok=True)
        variables, folder = state / "variables.sh", state / "cwd"
        if not folder.exists():
            folder.write_text(str(self.work))
        script = self.tmp / f"block-{index}.sh"
        script.write_text(
            "set -euo pipefail\nset -a\n"
            f"[ -f {variables} ] && source {variables}\n"
            f'cd "$(cat {folder})"\n'
            f"{command}\n"
            f"export -p > {variables}; pwd > {folder}\n"
        )
        out = self.tmp / f"block-{index}.out"
        with out.open("wb") as sink:
            done = subprocess.run(
                ["nsenter", f"--target={self.anchor.pid}", "--net", "--mount", "--",
                 "bash", str(script)],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                env=self.env(block.machine), cwd=self.work, timeout=BLOCK_TIMEOUT,
                process_group=self.anchor.pid,
            )  # fmt: skip
        return done.returncode, out.read_text(errors="replace")

    def close(self) -> None:
        if self.postgres is not None:
            self.postgres.stop()
        try:
            os.killpg(self.anchor.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _group_alive(self.anchor.pid):
            self.anchor.poll()
            time.sleep(0.1)
        if _group_alive(self.anchor.pid):
            os.killpg(self.anchor.pid, signal.SIGKILL)
        self.anchor.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _param(path: Path) -> object:
    doc = parse(path)
    marks = [getattr(pytest.mark, m) for m in doc.marks]
    if "slow" in doc.marks:
        marks.append(pytest.mark.timeout(3 * BLOCK_TIMEOUT))
    return pytest.param(path, marks=marks, id=str(path.relative_to(REPO)))


RUNNABLE = [p for p in DOCS if parse(p).runnable]


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocWorld]:
    path: Path = request.node.callspec.params["doc"]
    text = path.read_text(encoding="utf-8")
    created = DocWorld(tmp_path, needs_postgres=bool(re.search("postgres", text, re.I)))
    try:
        yield created
    finally:
        created.close()


@pytest.mark.parametrize("doc", [_param(p) for p in RUNNABLE])
def test_documented_commands_run_verbatim(doc: Path, world: DocWorld) -> None:
    document: Document = parse(doc)
    index = 0
    for block in document.runnable:
        for command in block.commands:
            index += 1
            code, output = world.run(block, command.text, index)
            where = f"{block.where} (machine {block.machine})"
            assert code == 0, f"{where}: `{command.text}` exited {code}:\n{output[-4000:]}"
            for line in command.expected:
                assert output_matches(line, output), (
                    f"{where}: `{command.text}` did not print {line!r}; it printed:\n{output[-4000:]}"
                )
