"""Run folders for registry and bundle tests, written by the run engine's own models and writers.

Every file comes from the code the engine uses: run.json is a `RunRecord` and every
results.jsonl line a `ResultRecord` (harness/model/records.py), both written by
`RunFolder`; counts, verdict and exit code come from harness.run.outcomes; junit.xml from
harness.report.junit; report.html from harness.report.html; inventory.json is an
`InventoryRecord` (harness/model/facts.py) holding the kernel identity and settle report
types of harness/lab; diagnostics/ and run.json `diagnostics` are collected by
harness/run/sysinfo.py itself from `_DebianUnit`, a stand-in for a unit's SSH link that
answers each diagnostic command; submission.json is written by `write_submission`. So a
change to the run folder contract (a renamed field, a moved file) changes these folders
too, and the tests that read them break where the registry or the bundle would.
tests/registry/test_runfolder_contract.py checks the certification folders against a real
`harness run` on the simulated board (the repro folders of `make_case_run_folder` are not
checked against a real `harness repro` yet); the end-to-end tests
(test_registry_end_to_end.py) use real runs.

Only `unchecked` can write what the engine never would (a forged or hand-edited run.json):
it is applied after the record was validated, for tests of what the registry refuses. The
harness refuses to bundle such a folder, so `foreign_bundle` packs it the way another tool
holding a registered lab key could (docs/bundle-format.md).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from harness.lab.kernel_identity import KernelIdentity
from harness.lab.result import CommandResult
from harness.lab.settle import SettleReport
from harness.labkey import LabIdentity
from harness.model.board import BlockDevice, Inventory
from harness.model.board_evidence import ToolsInfo
from harness.model.case_records import (
    Baseline,
    CaseBoard,
    CasePlan,
    CaseRef,
    CaseRunRecord,
    CaseSession,
    CaseSettings,
    IterationRecord,
    Verification,
)
from harness.model.facts import BlockDeviceFact, Facts, InventoryRecord
from harness.model.records import (
    ErrorClass,
    LabInfo,
    Outcome,
    ResultRecord,
    RunRecord,
    SoftwareInfo,
)
from harness.report.bundle import FORMAT, MANIFEST, RUN_PREFIX, SIGNATURE, canonical_json
from harness.report.bundle import write_canonical as write_canonical_tar
from harness.report.html import write_report
from harness.report.junit import write_junit
from harness.report.runfolder import INVENTORY, RUN_JSON, RunFolder, write_submission
from harness.repro.folder import ReproFolder
from harness.repro.session import summarize
from harness.run import sysinfo
from harness.run.outcomes import count_outcomes, decide_verdict, exit_code_for

STARTED = "2026-11-28T07:00:00.000Z"
FINISHED = "2026-11-28T07:05:00.000Z"
PASSING = 12  # blocker tests that pass in every folder
BOOTLOADER = "U-Boot 2023.01"
BUILD_ID = "3f1c0a9e7b5d2c4e6f8a0b1c2d3e4f5a6b7c8d9e"


def _line(index: int, outcome: Outcome, **fields: Any) -> ResultRecord:
    values: dict[str, Any] = {
        "id": f"t{index:02d}",
        "title": f"check {index}",
        "category": "smoke",
        "blocker": True,
        "outcome": outcome,
        "reason": "" if outcome is Outcome.PASS else "see excerpt",
        "duration": 0.1 * index,
        "started_at": STARTED,
        "finished_at": FINISHED,
        "attempt": 1,
        "excerpt": "",
        "log": f"$ check-{index}\nok",
        "session": 1,
    }
    return ResultRecord.model_validate({**values, **fields})


def results_for(verdict: str, plan_id: str) -> list[ResultRecord]:
    """Results that lead the engine's own rules to `verdict`."""
    lines = [_line(i, Outcome.PASS) for i in range(PASSING)]
    if verdict == "not-certified":
        lines.append(
            _line(PASSING, Outcome.FAIL, reason="expected '^0$' in stdout, got '1'", excerpt="1")
        )
    elif verdict == "incomplete":
        lines.append(
            _line(
                PASSING,
                Outcome.ERROR,
                reason="SSHConnectFailed: connection refused",
                error_class=ErrorClass.INFRASTRUCTURE,
            )
        )
    lines.append(
        _line(PASSING + 1, Outcome.SKIP, reason="not applicable: requires 'facts.rtc' is false")
    )
    for line in lines:
        line.plan_id = plan_id
    return lines


# What a Debian arm64 unit answers to each diagnostic command (exit status, stdout, stderr):
# no device tree blob exported and no DMI, like many vendor kernels.
_ANSWERS: dict[str, tuple[int, str, str]] = {
    "dmesg": (0, "[    0.000000] Booting Linux on physical CPU 0x0000000000\n", ""),
    "kernel-config": (0, "CONFIG_ARM64=y\nCONFIG_MODULE_SIG=y\n", ""),
    "cmdline": (0, "console=ttyS2,1500000 root=/dev/mmcblk0p2 rw rootwait\n", ""),
    "modules": (0, "Module                  Size  Used by\nipv6                  557056  20\n", ""),
    "devicetree": (sysinfo.ABSENT, "", "no device tree (/sys/firmware/fdt)\n"),
    "dmi": (sysinfo.ABSENT, "", "no DMI (/sys/class/dmi/id)\n"),
    "firmware": (0, "/sys/firmware: devicetree \n", ""),
}
_ITEM_OF_COMMAND = {item.command: item.name for item in sysinfo.ITEMS}


class _DebianUnit:
    """The SSH link `sysinfo.collect` reads the unit's diagnostics over, answering from `_ANSWERS`."""

    has_ssh = True

    def __init__(self) -> None:
        self.ssh = self

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        status, out, err = _ANSWERS[_ITEM_OF_COMMAND[command]]
        return CommandResult(command, status, out, err, 0.05)


def _inventory(kernel: KernelIdentity) -> InventoryRecord:
    """inventory.json of a unit that has what its profile promises, settled after one look."""
    return InventoryRecord(
        facts=Facts(
            kernel_release=kernel.kernel_release,
            kernel_version=kernel.kernel_version,
            arch="aarch64",
            os_name="Debian GNU/Linux",
            os_version="12",
            hostname="ab100-unit",
            cpus=2,
            memory_mib=256,
            block_devices=[BlockDeviceFact(name="mmcblk0", size_mib=7456, removable=False)],
            network_interfaces=["eth0"],
            serial_ports=1,
            watchdog=True,
            rtc=False,
        ),
        profile=Inventory(
            cpus=2,
            memory_mib=256,
            block_devices=[BlockDevice(name="mmcblk0", size_mib=7456)],
            network_interfaces=["eth0"],
            watchdog=True,
        ),
        kernel=kernel.to_dict(),
        collected_at=STARTED,
        settle=SettleReport(settled=True, seconds=1.5, looks=2, missing=()).as_dict(),
    )


def make_run_folder(
    parent: Path,
    run_id: str,
    *,
    verdict: str = "certified",
    vendor: str = "Acme Boards",
    model: str = "AB-100",
    revision: str = "A1",
    os_release: str = "Debian 12",
    kernel_release: str = "6.1.0-27-arm64",
    kernel_version: str = "#1 SMP Debian 6.1.115-1",
    plan_id: str = "precert",
    plan_version: str = "1.0",
    status: str = "finished",
    submitted: str | None = None,
    extra: dict[str, Any] | None = None,
    unchecked: dict[str, Any] | None = None,
    case_run: dict[str, Any] | None = None,
) -> Path:
    """A finished (or, with status="running", interrupted) run folder as `harness run` leaves it.

    `extra` replaces run.json fields and must still fit `RunRecord`; `submitted` writes the
    submission.json that `harness run` adds after delivering ("delivered" or "queued").
    `case_run` (see repro_fields) makes a `harness repro` folder instead. An interrupted
    folder has what a killed harness leaves: no junit.xml, report.html or diagnostics.
    """
    if case_run is not None:
        board = {"vendor": vendor, "model": model, "revision": revision}
        software = {"os_release": os_release, "kernel_release": kernel_release,
                    "kernel_version": kernel_version}  # fmt: skip
        return make_case_run_folder(
            parent, run_id, **case_run, **board, **software, unchecked=unchecked
        )
    folder = parent / run_id.replace("/", "_")
    folder.mkdir(parents=True)
    run_folder = RunFolder(folder)
    results = results_for(verdict, plan_id)
    if status == "running":
        results = results[: PASSING // 2]  # killed half-way: no verdict yet
    for line in results:
        run_folder.append_result(line)
    counts = count_outcomes(results)
    decided = decide_verdict(results) if status == "finished" else "incomplete"
    assert decided == verdict or status == "running", (decided, verdict)
    finished = status == "finished"
    kernel = KernelIdentity(
        kernel_release=kernel_release,
        kernel_version=kernel_version,
        build_id=BUILD_ID,
        build_id_source="/sys/kernel/notes",
        module_signer=None,
        module_sig_key=None,
        module=None,
    )
    diagnostics = (
        sysinfo.collect(_DebianUnit(), folder, BOOTLOADER).model_copy(  # type: ignore[arg-type]
            update={"collected_at": FINISHED}
        )  # the same bytes on every call
        if finished
        else None
    )
    run = RunRecord.model_validate(
        {
            "schema": 1,
            "run_id": run_id,
            "harness_version": "0.1.0",
            "status": status,
            "plan": {
                "id": plan_id,
                "version": plan_version,
                "sha256": "0" * 64,
                "title": "Pre-certification",
                "file": "testplans/precert.yaml",
                "tests": [line.id for line in results_for(verdict, plan_id)],
            },
            "board": {
                "name": "test-board",
                "vendor": vendor,
                "model": model,
                "revision": revision,
                "soc": "Example SoC",
                "arch": "aarch64",
                "compatible": "acme,ab100",
                "profile_sha256": "1" * 64,
            },
            "lab": {
                "kind": "virtual",
                "name": "bench-1",
                "host": "127.0.0.1",
                "operator": "tester",
            },
            "software": {
                "kernel_release": kernel_release,
                "kernel_version": kernel_version,
                "os_release": os_release,
                "bootloader": BOOTLOADER,
                "kernel_build_id": kernel.build_id,
                "kernel_identity": kernel.to_dict(),
            },
            "started_at": STARTED,
            "finished_at": FINISHED if finished else None,
            "verdict": verdict if finished else "incomplete",
            "error_class": "infrastructure" if finished and verdict == "incomplete" else None,
            "counts": counts.as_dict(),
            "waivers": [],
            "sessions": [
                {
                    "started_at": STARTED,
                    "finished_at": FINISHED if finished else None,
                    "pid": 4242,
                    "selection": None,
                }
            ],
            "retries": 1,
            "exit_code": exit_code_for(decide_verdict(results), counts) if finished else None,
            "diagnostics": diagnostics,
            "tools": ToolsInfo(probed=list(sysinfo.TOOLS)),
            **(extra or {}),
        }
    )
    run_folder.write_run(run)
    run_folder.console_log.write_bytes(
        f"{BOOTLOADER}\r\nStarting kernel ...\r\nlogin: root\r\n# uname -r\r\n".encode()
        + kernel_release.encode()
        + b"\r\n"
    )
    run_folder.write_json(INVENTORY, _inventory(kernel).model_dump(mode="json"))
    (run_folder.artifacts / "roundtrip.bin").write_bytes(bytes(range(64)))
    if finished:
        write_junit(run_folder.junit_file, run, results)
        write_report(folder)
    if unchecked:
        run_folder.write_json(RUN_JSON, {**run.to_json(), **unchecked})
    if submitted is not None:
        write_submission(folder, submitted)
    return folder


def foreign_bundle(folder: Path, identity: LabIdentity) -> bytes:
    """`folder` packed and signed per docs/bundle-format.md, without the harness's checks."""
    files = sorted(
        (path.relative_to(folder).as_posix(), path.read_bytes())
        for path in folder.rglob("*")
        if path.is_file()
    )
    manifest = canonical_json(
        {
            "format": FORMAT,
            "run_id": json.loads((folder / RUN_JSON).read_text())["run_id"],
            "lab": identity.name,
            "public_key": identity.public_key_text,
            "files": [
                {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                for name, data in files
            ],
        }
    )
    signature = identity.sign(manifest)
    out = io.BytesIO()
    write_canonical_tar(
        out,
        [
            (MANIFEST, len(manifest), manifest),
            (SIGNATURE, len(signature), signature),
            *((RUN_PREFIX + name, len(data), data) for name, data in files),
        ],
    )
    return out.getvalue()


def repro_fields(
    case_id: str, mode: str = "repro", verdict: str | None = None, reproduced: int = 3
) -> dict[str, Any]:
    """make_run_folder(...) keyword arguments for a `harness repro` run of `case_id`."""
    return {"case_run": {"case_id": case_id, "mode": mode, "verdict": verdict,
                         "reproduced": reproduced}}  # fmt: skip


def make_case_run_folder(
    parent: Path,
    run_id: str,
    *,
    case_id: str,
    mode: str = "repro",
    verdict: str | None = None,
    reproduced: int = 3,
    vendor: str = "Acme Boards",
    model: str = "AB-100",
    revision: str = "A1",
    os_release: str = "Debian 12",
    kernel_release: str = "6.1.0-27-arm64",
    kernel_version: str = "#1 SMP Debian 6.1.115-1",
    unchecked: dict[str, Any] | None = None,
) -> Path:
    """A finished `harness repro` run folder: `IterationRecord` lines and a `CaseRunRecord`
    run.json (harness/model/case_records.py), written by the repro session's `ReproFolder`
    and summarised by its own `summarize`. `unchecked` as in make_run_folder."""
    iterations = 10
    if verdict is None:
        verdict = (
            ("not-resolved" if reproduced else "resolved")
            if mode == "verify"
            else ("reproduced" if reproduced else "not-reproduced")
        )
    folder = parent / run_id.replace("/", "_")
    folder.mkdir(parents=True)
    repro_folder = ReproFolder(folder)
    records = [
        IterationRecord(
            iteration=number,
            session=1,
            outcome="reproduced" if number <= reproduced else "not-reproduced",
            reason="the trigger printed the signature" if number <= reproduced else "clean",
            started_at=STARTED,
            finished_at=FINISHED,
            duration=1.0,
        )
        for number in range(1, iterations + 1)
    ]
    for record in records:
        repro_folder.append_result(record)
    summary = summarize(records)
    baseline = Baseline(run_id="baseline-run", reproduced=5, iterations=10, rate=0.5)
    run = CaseRunRecord(
        run_id=run_id,
        harness_version="0.1.0",
        status="finished",
        mode=mode,  # type: ignore[arg-type]
        case=CaseRef(
            id=case_id,
            version="1",
            sha256="2" * 64,
            file="cases/case.yaml",
            customer_ref="CUST-1",
            severity=2,
            subsystem="storage",
            seen_on={"vendor": vendor, "model": model, "revision": revision},
        ),
        plan=CasePlan(id=f"case:{case_id}", version="1"),
        board=CaseBoard(
            name="test-board",
            vendor=vendor,
            model=model,
            revision=revision,
            soc="Example SoC",
            arch="aarch64",
            compatible="acme,ab100",
            profile_sha256="1" * 64,
        ),
        lab=LabInfo(kind="virtual", name="bench-1", host="127.0.0.1", operator="tester"),
        software=SoftwareInfo(
            kernel_release=kernel_release, kernel_version=kernel_version, os_release=os_release
        ),
        settings=CaseSettings(
            repeat=iterations, until_first=False, max_time=None, between="none", timeout=60.0
        ),
        started_at=STARTED,
        finished_at=FINISHED,
        sessions=[CaseSession(started_at=STARTED, finished_at=FINISHED, pid=4242)],
        summary=summary,
        verification=Verification(
            test="one-sided binomial",
            alpha=0.05,
            baseline=baseline,
            needed=iterations,
            iterations=summary.iterations,
            reproduced=summary.reproduced,
            p_value=0.001,
            verdict=verdict,  # type: ignore[arg-type]
            why="test helper",
        )
        if mode == "verify"
        else None,
        verdict=verdict,  # type: ignore[arg-type]
        exit_code=0,
    )
    repro_folder.write_run(run)
    if unchecked:
        repro_folder.write_json(RUN_JSON, {**run.to_json(), **unchecked})
    repro_folder.console_log.write_bytes(b"login: root\r\n# ./trigger\r\n")
    return folder
