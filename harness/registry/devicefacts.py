"""The device an eligibility question is about, read from a run folder or an evidence bundle.

A run records the board identity, the OS and the running kernel (with its GNU
build id, see harness/lab/kernel_identity.py), so "is the unit this run was
made on eligible?" needs no retyping, and the build id cannot be mistyped. A
bundle is verified (manifest and signature over every byte) before its
run.json is believed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import Location, UserError
from harness.registry.submission import MAX_BUNDLE_BYTES, MAX_RUN_JSON_BYTES
from harness.report.bundle import read_run_json
from harness.report.bundle_read import load_json_bounded, read_member, verify_bundle


def _run_json_of_bundle(path: Path) -> dict[str, Any]:
    """run.json of a verified bundle, read from the file in pieces (a bundle may be 256 MiB)."""
    size = path.stat().st_size
    if size > MAX_BUNDLE_BYTES:
        raise UserError(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes", Location(path))
    report = verify_bundle(path)
    if not report.ok:
        raise UserError("bundle rejected: " + "; ".join(report.problems), Location(path))
    try:
        with path.open("rb") as fh:
            raw = read_member(fh, "run/run.json", MAX_RUN_JSON_BYTES)
        run = load_json_bounded(raw, "run.json")
    except (KeyError, ValueError) as exc:
        raise UserError(f"bundle has no readable run.json ({exc})", Location(path)) from None
    if not isinstance(run, dict):
        raise UserError("run.json in the bundle must hold a JSON object", Location(path))
    return run


def device_from_run(source: Path) -> dict[str, str]:
    """vendor, model, revision, os_release, kernel_release, kernel_version, kernel_build_id
    as recorded by a run; keys whose value the run lacks are left out."""
    run = read_run_json(source) if source.is_dir() else _run_json_of_bundle(source)
    where = source / "run.json" if source.is_dir() else source
    board = run.get("board") if isinstance(run.get("board"), dict) else {}
    software = run.get("software") if isinstance(run.get("software"), dict) else {}
    found = {
        "vendor": board.get("vendor"),
        "model": board.get("model"),
        "revision": board.get("revision"),
        "os_release": software.get("os_release"),
        "kernel_release": software.get("kernel_release"),
        "kernel_version": software.get("kernel_version"),
        "kernel_build_id": software.get("kernel_build_id"),
    }
    for name, value in found.items():
        if value is not None and (not isinstance(value, str) or len(value) > 400):
            raise UserError(
                "must be a string of at most 400 characters",
                Location(
                    where,
                    field=f"{'board' if name in ('vendor', 'model', 'revision') else 'software'}.{name}",
                ),
            )
    return {name: value for name, value in found.items() if value}
