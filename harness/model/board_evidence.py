"""run.json's records of what the harness took from the board and brought to it.

`DiagnosticsInfo`: the diagnostics collected from the unit at the end of a run (kernel log,
kernel configuration, command line, modules, device tree or DMI, firmware versions), each
a file under the run folder's `diagnostics/` with its sha256, or the reason it is not there.
They are evidence for whoever reads a failure later, never part of the verdict.

`ToolsInfo`: which commands the plan uses were missing on the unit and which static helper
binaries the harness supplied for them (harness/run/tools.py), so a certificate says what
ran its checks: the board's own tools, or a named Debian package the harness brought.

Kept apart from records.py so that module stays one screenful per record family.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DiagnosticFile(_Record):
    """One diagnostic: its file in the run folder, or why there is none."""

    name: str = Field(description="what it is: dmesg, kernel-config, cmdline, modules, ...")
    status: Literal["collected", "absent", "failed"] = Field(
        description="collected: the file holds it; absent: the unit does not have it (no "
        "device tree on a PC, a kernel built without /proc/config.gz); failed: it could "
        "not be read (see reason)"
    )
    file: str | None = Field(default=None, description="relative to the run folder")
    sha256: Sha256 | None = None
    bytes: int | None = Field(default=None, ge=0)
    command: str = Field(description="what was run on the unit to read it")
    reason: str = ""


class DiagnosticsInfo(_Record):
    """Diagnostics of the unit, collected at the end of the run (docs/run-report.md)."""

    collected_at: str | None = Field(
        default=None, description="when, ISO 8601; null when nothing could be collected"
    )
    via: Literal["ssh", "console"] | None = None
    files: list[DiagnosticFile] = []
    problem: str = Field(
        default="", description="why nothing was collected (the board was never reached, ...)"
    )


class HelperBinary(_Record):
    """A static binary the harness copied to the unit for the run, and what it came from."""

    name: str = Field(description="the binary's file name, e.g. busybox")
    sha256: Sha256
    package: str = Field(description="the Debian package it was taken from")
    version: str = Field(description="that package's version")
    deb_arch: str = Field(description="the package's Debian architecture")
    provides: list[str] = Field(description="the missing commands it stood in for")


class MissingTool(_Record):
    name: str
    reason: str


class ToolsInfo(_Record):
    """Commands the plan declares (`tools:`), probed on the unit, and the helpers supplied."""

    probed: list[str] = Field(description="the plan's tools, looked up on the console's PATH")
    missing: list[str] = Field(default=[], description="not found on the unit")
    helpers: list[HelperBinary] = Field(default=[], description="what the harness supplied")
    unavailable: list[MissingTool] = Field(
        default=[], description="missing and not supplied, with why (tests using them fail)"
    )
    directory: str | None = Field(
        default=None, description="where on the unit the helpers were put for the run"
    )
    removed: bool | None = Field(
        default=None, description="whether that folder was removed when the run ended"
    )
