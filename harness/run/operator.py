"""Operator steps: asking the person at the bench what the harness cannot see for itself.

A `manual:` step (an LED's colour, a picture on HDMI, a sound, a button) shows its
instructions, asks its `verify` question and reads a yes or no, then an optional file to
attach (a photo). The answers are read line by line from one text stream: the terminal
the run was started from, or, with `--answers -` or `--answers FILE`, a pipe or a file,
so the same prompt is what a person and a test see. The answer, who gave it (the run's
operator) and the attached file (copied into the run folder, with its sha256) become the
test's evidence; "no" fails the test.

Nobody is asked when the run is `--unattended`, or when stdin is not a terminal and no
answer source was given (CI, a fan-out): the step raises `OperatorUnavailable` and the
test is `not-run` with that reason, so the verdict is `incomplete`, never a pass that no
person checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from harness.errors import UserError
from harness.model.records import AttachmentRecord, OperatorAnswerRecord
from harness.model.stepspecs import OPERATOR_NOT_ANSWERED, OPERATOR_NOT_ASKED, ManualSpec
from harness.report.runfolder import iso, utc_now
from harness.userfile import open_input

YES = frozenset({"y", "yes"})
NO = frozenset({"n", "no"})
MAX_ATTACHMENT_BYTES = 256 * 1024 * 1024  # a phone video of a blinking LED, not a disk image
OPERATOR_DIR = "operator"


class OperatorUnavailable(Exception):
    """Nobody can answer this step; the message says why (the test becomes not-run)."""


class OperatorDesk:
    """Asks a run's manual steps on one answer stream and keeps the answers of the current test.

    `stream` None means nobody is asked; `unavailable` then says why. `paused` wraps each
    question, so a live progress panel stops redrawing over the prompt.
    """

    def __init__(
        self,
        operator: str,
        artifacts: Path,
        stream: TextIO | None,
        unavailable: str = "",
        out: TextIO | None = None,
        paused: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
    ):
        self.operator = operator
        self.artifacts = artifacts
        self.stream = stream
        self.unavailable = unavailable
        self._out = out
        self.paused = paused or contextlib.nullcontext
        self._answers: list[OperatorAnswerRecord] = []

    def take(self) -> list[OperatorAnswerRecord]:
        """The answers given since the last call (one test attempt's), and forget them."""
        answers, self._answers = self._answers, []
        return answers

    def ask(self, test_id: str, spec: ManualSpec) -> OperatorAnswerRecord:
        """Ask the question; the recorded answer. OperatorUnavailable if nobody can answer."""
        if self.stream is None:
            raise OperatorUnavailable(f"{OPERATOR_NOT_ASKED}: {self.unavailable}")
        asked_at = iso(utc_now())
        with self.paused():
            self._say(f"\n=== operator step: {test_id} ===\n{spec.instructions.strip()}")
            answer = self._yes_or_no(spec.verify.strip())
            attachment = self._attachment(test_id)
        record = OperatorAnswerRecord(
            instructions=spec.instructions,
            question=spec.verify,
            answer=answer,
            operator=self.operator,
            asked_at=asked_at,
            answered_at=iso(utc_now()),
            attachment=attachment,
        )
        self._answers.append(record)
        return record

    # ---- the conversation -------------------------------------------------------------

    @property
    def out(self) -> TextIO:
        # sys.stderr as it is now: a live progress panel replaces it with a proxy that reads
        # `[yes/no]` as markup and holds a prompt back until a newline; paused() restores it.
        return self._out or sys.stderr

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _line(self, prompt: str) -> str | None:
        """The next answer line (stripped); None when the input has ended."""
        self.out.write(prompt)
        self.out.flush()
        assert self.stream is not None
        line = self.stream.readline()
        if not line:
            self._say("")
            return None
        if not self.stream.isatty():  # a terminal echoes what was typed; a pipe or file does not
            self._say(line.strip())
        return line.strip()

    def _yes_or_no(self, question: str) -> str:
        while True:
            line = self._line(f"{question} [yes/no]: ")
            if line is None:
                raise OperatorUnavailable(
                    f"{OPERATOR_NOT_ANSWERED}: the answers ended before {question!r}"
                )
            if line.lower() in YES:
                return "yes"
            if line.lower() in NO:
                return "no"
            self._say(f"please answer yes or no (got {line!r})")

    def _attachment(self, test_id: str) -> AttachmentRecord | None:
        while True:
            line = self._line("file to attach as evidence (a photo; empty for none): ")
            if not line:  # no file, or the answers ended after the yes/no
                return None
            try:
                return self._copy(test_id, Path(line).expanduser())
            except (OSError, UserError) as exc:
                self._say(f"cannot attach {line}: {_why(exc)}; give another file or press Enter")

    def _copy(self, test_id: str, source: Path) -> AttachmentRecord:
        """Copy the file into the run folder (a FIFO or a huge file is refused), hashing it."""
        folder = self.artifacts / OPERATOR_DIR
        folder.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{test_id}-{len(self._answers) + 1}-{source.name}")
        target = folder / safe
        digest = hashlib.sha256()
        size = 0
        with open_input(source) as reader, open(target, "wb") as writer:
            while chunk := reader.read(1024 * 1024):
                size += len(chunk)
                if size > MAX_ATTACHMENT_BYTES:
                    target.unlink()
                    raise OSError(f"larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB")
                digest.update(chunk)
                writer.write(chunk)
        return AttachmentRecord(
            file=str(target.relative_to(self.artifacts.parent)),
            original=str(source),
            sha256=digest.hexdigest(),
            bytes=size,
        )


def _why(exc: OSError | UserError) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


@contextlib.contextmanager
def answer_stream(answers: str | None, unattended: bool) -> Iterator[tuple[TextIO | None, str]]:
    """The stream manual steps read from, or None and why nobody is asked.

    `answers` is `-` (this process's stdin, even when it is a pipe), a file of answer lines,
    or None (stdin if it is a terminal).
    """
    if unattended:
        yield None, "the run is --unattended"
        return
    if answers == "-":
        yield sys.stdin, ""
        return
    if answers is not None:
        with (
            open_input(answers) as raw,
            open(raw.fileno(), encoding="utf-8", closefd=False) as text,
        ):
            yield text, ""
        return
    if sys.stdin is not None and sys.stdin.isatty():
        yield sys.stdin, ""
        return
    yield None, "stdin is not a terminal and no --answers source was given"
