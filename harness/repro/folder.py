"""A repro run's folder: the same layout, durability rules and reader/writer as a
certification run's (harness/report/runfolder.py `Folder`: results.jsonl appended and
fsync'd per line, run.json written atomically, a torn last line ignored on resume),
holding the repro records of harness/model/case_records.py instead of certification ones."""

from __future__ import annotations

from harness.model.case_records import CaseRunRecord, IterationRecord
from harness.report.runfolder import Folder


class ReproFolder(Folder[IterationRecord, CaseRunRecord]):
    """results.jsonl holds one `IterationRecord` per line; run.json is a `CaseRunRecord`."""

    line_model = IterationRecord
    run_model = CaseRunRecord
