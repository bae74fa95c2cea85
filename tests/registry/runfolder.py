"""Builds run folders shaped like the run engine's (harness/README.md "Run folder").

Until the run engine writes real ones, registry and bundle tests need folders
with a verdict, board identity, software identity and plan reference; this is
the one place that knows that shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
    extra: dict[str, Any] | None = None,
) -> Path:
    folder = parent / run_id.replace("/", "_")
    folder.mkdir(parents=True)
    counts = {
        "pass": 12,
        "fail": 0 if verdict == "certified" else 1,
        "error": 0,
        "skip": 1,
        "waived": 0,
        "not-run": 0,
    }
    run = {
        "schema": 1,
        "run_id": run_id,
        "harness_version": "0.1.0",
        "plan": {
            "id": plan_id,
            "version": plan_version,
            "sha256": "0" * 64,
            "title": "Pre-certification",
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
        "lab": {"kind": "virtual", "name": "bench-1", "host": "127.0.0.1", "operator": "tester"},
        "software": {
            "kernel_release": kernel_release,
            "kernel_version": kernel_version,
            "os_release": os_release,
            "bootloader": "U-Boot 2023.01",
        },
        "started_at": "2026-11-28T07:00:00Z",
        "finished_at": "2026-11-28T07:05:00Z",
        "verdict": verdict,
        "counts": counts,
        "waivers": [],
        **(extra or {}),
    }
    (folder / "run.json").write_text(json.dumps(run, indent=2))
    lines = [
        json.dumps({"test": f"t{i}", "outcome": "pass", "duration": 0.1 * i}) for i in range(12)
    ]
    (folder / "results.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "console.log").write_bytes(
        b"U-Boot 2023.01\r\nStarting kernel ...\r\nlogin: root\r\n# uname -r\r\n"
        + kernel_release.encode()
        + b"\r\n"
    )
    (folder / "junit.xml").write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="precert" tests="12"/></testsuites>\n'
    )
    (folder / "artifacts").mkdir()
    (folder / "artifacts" / "inventory.json").write_text(json.dumps({"cpus": 2, "memory_mib": 256}))
    return folder


def repro_fields(
    case_id: str, mode: str = "repro", verdict: str | None = None, reproduced: int = 3
) -> dict[str, Any]:
    """make_run_folder(...) keyword arguments for a `harness repro` run of `case_id`.

    Shaped like harness/repro/records.py RunRecord: kind, mode, case, summary, verification.
    """
    iterations = 10
    if verdict is None:
        verdict = (
            ("not-resolved" if reproduced else "resolved")
            if mode == "verify"
            else ("reproduced" if reproduced else "not-reproduced")
        )
    extra: dict[str, Any] = {
        "kind": "repro",
        "mode": mode,
        "case": {"id": case_id, "version": "1", "sha256": "2" * 64},
        "summary": {
            "iterations": iterations,
            "reproduced": reproduced,
            "not_reproduced": iterations - reproduced,
            "errors": 0,
            "rate": reproduced / iterations,
            "interval": {"low": 0.0, "high": 0.5, "confidence": 0.95, "method": "wilson"},
            "first_reproducing": 1 if reproduced else None,
            "mean_duration": 1.0,
            "signature_match": None,
        },
        "verification": {"verdict": verdict} if mode == "verify" else None,
    }
    return {"verdict": verdict, "plan_id": f"case:{case_id}", "extra": extra}
