"""Delivering finished runs to the registry, exactly once, through an on-disk outbox.

`submit_run` is what `harness run` calls at the end of every run. The bundle
is written to the outbox (fsync'd) *before* any delivery attempt, so a
registry that is down, a dropped connection or a killed harness can delay a
result but never lose it; `harness registry sync` retries later. Exactly once
comes from the registry being idempotent by run id: a retry after a lost
reply is answered "duplicate" and then removed from the outbox like a success.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.durable import fsync_dir
from harness.errors import HarnessError
from harness.labkey import LabIdentity, load_or_create_identity
from harness.registry.config import default_db_url, outbox_dir, remote_registry
from harness.registry.interface import Registry
from harness.report.bundle import make_bundle, read_run_json
from harness.report.bundle_read import BundleUnreadable, verify_bundle
from harness.report.runfolder import SUBMISSION, write_submission

Delivery = Literal["delivered", "queued"]
BUNDLE_SUFFIX = ".bundle.tar"
ERROR_SUFFIX = ".error"
SOURCE_SUFFIX = ".source"  # the run folder an outbox entry came from, to record its delivery


@dataclass
class SyncReport:
    delivered: list[str] = field(default_factory=list)
    queued: list[tuple[str, str]] = field(default_factory=list)  # (run id, last error)


def _entry_name(run_id: str) -> str:
    """Outbox file names come from a hash: a run id is user text and may hold '/' or '..'."""
    return hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:40]


@contextmanager
def _locked(outbox: Path) -> Iterator[None]:
    """One deliverer at a time per outbox, so two syncs never send the same bundle concurrently."""
    outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (outbox / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _lab_registry(identity: LabIdentity) -> Registry:
    """The configured registry, acting as this lab: the HTTP registry with the lab's token, or
    the local registry file (where this lab registers itself with its own key on first use)."""
    remote = remote_registry()
    if remote is not None:
        from harness.registry.remote import HttpRegistry

        return HttpRegistry(remote.url, remote.token)
    from harness.registry.local import LocalRegistry
    from harness.registry.store import Store

    store = Store(default_db_url())
    try:
        store.ensure_lab(identity.name, identity.public_key_text)
        return LocalRegistry(store, store.lab_principal(identity.name), owns_store=True)
    except BaseException:
        store.close()
        raise


def _deliver(bundle_path: Path, identity: LabIdentity) -> str:
    """Send one bundle file to the configured registry; returns its status ("stored"/"duplicate")."""
    registry = _lab_registry(identity)
    try:
        with bundle_path.open("rb") as fh:
            return registry.submit_bundle(fh)["status"]
    finally:
        registry.close()


def _sibling(bundle_path: Path, suffix: str) -> Path:
    return bundle_path.with_name(bundle_path.name[: -len(BUNDLE_SUFFIX)] + suffix)


def _record_delivered(bundle_path: Path, run_id: str) -> None:
    """Tell the entry's run folder, if it is still there and still that run, that it was delivered."""
    source = _sibling(bundle_path, SOURCE_SUFFIX)
    try:
        folder = Path(source.read_text(encoding="utf-8").strip())
        if folder.is_dir() and read_run_json(folder)["run_id"] == run_id:
            write_submission(folder, "delivered")
    except (OSError, HarnessError):
        pass  # the folder moved or went away: the registry has the run, nothing to record


def _try_entry(bundle_path: Path, identity: LabIdentity, run_id: str) -> str | None:
    """Deliver one outbox entry; None on success (entry removed), else the reason it stays."""
    error_path = _sibling(bundle_path, ERROR_SUFFIX)
    try:
        _deliver(bundle_path, identity)
    except HarnessError as exc:  # down, refused or misconfigured: keep it, with the reason
        from harness.registry.delivery import describe

        problem = describe(exc)  # the reason and what to do about it (harness/registry/delivery.py)
        error_path.write_text(problem + "\n")
        return problem
    _record_delivered(bundle_path, run_id)
    bundle_path.unlink()
    error_path.unlink(missing_ok=True)
    _sibling(bundle_path, SOURCE_SUFFIX).unlink(missing_ok=True)
    fsync_dir(bundle_path.parent)
    return None


def submit_run(run_dir: str | os.PathLike[str]) -> Delivery:
    """Bundle, sign and deliver a finished run: "delivered", or "queued" in the outbox for `sync`.

    The outcome is also recorded in the folder's submission.json (and updated by a later
    `sync` that delivers the queued entry).
    """
    identity = load_or_create_identity()
    outbox = outbox_dir()
    run_dir = Path(run_dir)
    with _locked(outbox):
        run_id = read_run_json(run_dir)["run_id"]
        bundle_path = outbox / (_entry_name(run_id) + BUNDLE_SUFFIX)
        make_bundle(run_dir, bundle_path, identity)
        _sibling(bundle_path, SOURCE_SUFFIX).write_text(str(run_dir.absolute()) + "\n")
        fsync_dir(outbox)
        problem = _try_entry(bundle_path, identity, run_id)
    if problem is None:
        return "delivered"  # recorded in the folder by _try_entry
    from harness.registry.delivery import Problem

    queued = Problem.parse(problem)
    write_submission(run_dir, "queued", queued.reason, queued.what_to_do)
    return "queued"


def pending() -> list[tuple[str, Path]]:
    """(run id, bundle path) of every outbox entry, oldest first."""
    outbox = outbox_dir()
    if not outbox.is_dir():
        return []
    entries = sorted(outbox.glob("*" + BUNDLE_SUFFIX), key=lambda p: p.stat().st_mtime)
    found = []
    for path in entries:
        try:
            found.append((verify_bundle(path).run_id or path.name, path))
        except BundleUnreadable:
            found.append((path.name, path))
    return found


def never_submitted(results: Path) -> list[Path]:
    """Finished run folders whose delivery is not recorded as done.

    The run engine records delivery in the folder's submission.json (run.json is never
    changed after the run). No submission.json means the harness was killed between
    finishing the run and submitting it, or the run was made with --no-submit; any
    status but "delivered" (queued, or an unavailable registry client) is retried too.
    Submitting again is safe: the bundle of a folder is always the same bytes and the
    registry answers a resubmission "duplicate".
    """
    found = []
    for run_json in sorted(Path(results).glob("*/run.json")):
        try:
            run = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(run, dict) or run.get("status") != "finished":
            continue
        if _submission_status(run_json.parent / SUBMISSION) != "delivered":
            found.append(run_json.parent)
    return found


def _submission_status(path: Path) -> str | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record.get("status") if isinstance(record, dict) else None


def sync(results: list[Path] | None = None) -> SyncReport:
    """Deliver everything in the outbox (first queueing finished, never-submitted runs found in
    `results`); what cannot be delivered stays, with its reason. Each delivered run's folder
    gets submission.json "delivered"."""
    identity = load_or_create_identity()
    report = SyncReport()
    for folder in [f for root in results or [] for f in never_submitted(root)]:
        if submit_run(folder) == "delivered":
            report.delivered.append(read_run_json(folder)["run_id"])
    with _locked(outbox_dir()):
        for run_id, path in pending():
            error = _try_entry(path, identity, run_id)
            if error is None:
                if run_id not in report.delivered:
                    report.delivered.append(run_id)
            else:
                report.queued.append((run_id, error))
    return report
