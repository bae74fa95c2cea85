"""Case files (`kind: case`): the examples load, bad ones name file, line and field, hostile ones
are refused fast and in bounded memory before any YAML tree is built."""

from __future__ import annotations

import resource
import threading
import time
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.model.case import load_case

CASES = Path(__file__).resolve().parents[2] / "testplans" / "cases"
ALWAYS = (CASES / "always.yaml").read_text()


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.glob("*.yaml")))
def test_every_example_case_loads(name: str) -> None:
    case = load_case(CASES / name)
    assert case.spec.trigger
    assert len(case.sha256) == 64


def _write(tmp_path: Path, text: str, name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("edit", "line", "field", "words"),
    [
        (("severity: 3", "severity: 7"), 6, "case.severity", "less than or equal to 4"),
        (("output: ['ERROR state']", "crash: [meltdown]"), 19, "signature.crash", "meltdown"),
        (("output: ['ERROR state']", "output: ['(unclosed']"), 19, "signature.output", "regular"),
        (("iterations: 10", "iterations: 10\n  between: sometimes"), 22, "settings.between", ""),
        (("  - run: 'echo", "  - python: os:system\n  - run: 'echo"), 17, "trigger[0]", "python"),
        (("signature:\n  output: ['ERROR state']", "signature: {}"), 18, "signature", "at least"),
        (("  subsystem: userspace", "  subsystem: userspace\n  colour: red"), 8, "case.colour", ""),
    ],
)
def test_bad_case_names_file_line_and_field(
    tmp_path: Path, edit: tuple[str, str], line: int, field: str, words: str
) -> None:
    assert edit[0] in ALWAYS
    path = _write(tmp_path, ALWAYS.replace(edit[0], edit[1], 1))
    with pytest.raises(UserError) as raised:
        load_case(path)
    where = raised.value.location
    assert (Path(where.file).name, where.line, where.field) == ("case.yaml", line, field)
    assert words in str(raised.value)


def test_put_of_a_host_file_outside_the_case_folder_is_refused(tmp_path: Path) -> None:
    text = ALWAYS.replace(
        "trigger:\n", "setup:\n  - put: {local: ../../etc/passwd, remote: /tmp/x}\ntrigger:\n"
    )
    with pytest.raises(UserError, match="case's folder") as raised:
        load_case(_write(tmp_path, text))
    assert raised.value.location.field == "setup[0].put.local"


HOSTILE = {
    "alias-bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)
    ),
    "self-alias": "a: &a [*a]\n",
    "deep-flow": "[" * 100_000 + "]" * 100_000,
    "deep-block": "".join("  " * i + "- \n" for i in range(2000)),
    "huge-scalar": 'kind: case\nx: "' + "a" * (20 << 20) + '"\n',
    "binary": "\x00\xff" * 1000,
    "tag": "kind: !!python/object:os.system case\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_case_file_is_refused_within_a_cpu_second_in_bounded_memory(
    tmp_path: Path, name: str
) -> None:
    """CPU time, not wall time: the loader's work is what an unbounded loader would multiply,
    while a loaded CI machine stretches wall time by however many processes share the cores."""
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(HOSTILE[name].encode("utf-8", "surrogateescape"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()
    with pytest.raises(UserError) as raised:
        load_case(path)
    cpu_seconds = time.process_time() - started
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(f"{name}: refused after {cpu_seconds:.3f} s of CPU")
    assert cpu_seconds < 1.0, f"{name} took {cpu_seconds:.2f} s of CPU"
    assert grown_kib < 64 * 1024, f"{name} grew the process by {grown_kib} KiB"
    assert str(raised.value.location.file).endswith(f"{name}.yaml")


def test_case_that_is_a_named_pipe_is_refused_instead_of_waiting_for_a_writer(
    tmp_path: Path,
) -> None:
    import os

    path = tmp_path / "case.yaml"
    os.mkfifo(path)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_case(path)
        except BaseException as error:  # handed to the test thread below
            outcome.append(error)
        else:
            outcome.append(None)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    loader.join(timeout=120)  # a bound for a hang only: a loader that waits never returns
    if loader.is_alive():
        # Release the blocked open() so the thread can end, then report the hang.
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("load_case is still waiting for a writer on the pipe after 120 s")
    (error,) = outcome
    assert isinstance(error, UserError), error
    assert "is a pipe" in str(error)
    assert error.location.file == path


def test_compressed_attachment_that_explodes_is_refused_before_any_board(tmp_path: Path) -> None:
    """A small .gz customer log holding 128 MiB of text: bad input, read no further than the
    attachment limit (16 MiB), before a virtual board is started or a run folder made."""
    import gzip
    import subprocess
    import sys

    line = b"[    1.000000] nothing to see here, just a very long log\n"
    with gzip.open(tmp_path / "customer.log.gz", "wb", compresslevel=1) as out:
        block = line * ((1 << 20) // len(line))
        for _ in range(128):
            out.write(block)
    assert (tmp_path / "customer.log.gz").stat().st_size < 2 << 20
    case = tmp_path / "bomb.yaml"
    case.write_text(ALWAYS + "attachments:\n  - file: customer.log.gz\n    kind: console\n")
    peak_file = tmp_path / "peak-kib"
    report_peak = (
        "import atexit, runpy, sys; peak = sys.argv.pop(1)\n"
        "atexit.register(lambda: open(peak, 'w').write(next(l.split()[1] for l in "
        "open('/proc/self/status') if l.startswith('VmHWM:'))))\n"
        "sys.argv[0] = 'harness'; runpy.run_module('harness', run_name='__main__', alter_sys=True)"
    )
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-c", report_peak, str(peak_file), "repro", str(case), "--board", "sim",
         "--results", str(results)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "customer.log.gz" in done.stderr and "once decompressed" in done.stderr
    assert "Traceback" not in done.stderr and "starting virtual board" not in done.stderr
    assert not results.exists()
    peak_mib = int(peak_file.read_text()) / 1024
    print(f"peak RSS {peak_mib:.0f} MiB")
    assert peak_mib < 200, "the 128 MiB log was read whole (the harness alone peaks ~125 MiB)"


def test_harness_check_validates_the_example_cases() -> None:
    import subprocess
    import sys

    files = sorted(str(p) for p in CASES.glob("*.yaml"))
    done = subprocess.run(
        [sys.executable, "-m", "harness", "check", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok: ") == len(files) == 6
