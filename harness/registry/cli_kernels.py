"""`harness registry kernels`: list and register vendor-built kernels (admin)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import Location, UserError
from harness.registry.cli_common import backend, emit, json_option
from harness.registry.rules import board_spec


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def kernels(ctx: click.Context, as_json: bool) -> None:
    """Vendor-built kernels (lists them; `kernels add` registers one)."""
    if ctx.invoked_subcommand is None:
        data = backend(ctx).list_kernels()
        for k in data:
            k["boards"] = [
                f"{b['vendor']} {b['model']}" + (f" rev {b['revision']}" if b["revision"] else "")
                for b in k["boards"]
            ]
        emit(
            data,
            as_json,
            [
                ("id", "id"),
                ("release", "kernel_release"),
                ("version", "kernel_version"),
                ("build", "build_id"),
                ("verified", "build_id_verified"),
                ("boards", "boards"),
            ],
            "Vendor kernels",
        )


@kernels.command("add")
@click.argument("artifact", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--release",
    default="",
    help="uname -r of the vendor build (read from ARTIFACT; if given too, it must agree)",
)
@click.option(
    "--version", "kversion", default="", help="uname -v, if devices must match the build exactly"
)
@click.option(
    "--build-id",
    default="",
    help="GNU build id typed in instead of an ARTIFACT (recorded as unverified)",
)
@click.option(
    "--board",
    "board_specs",
    multiple=True,
    required=True,
    help="VENDOR/MODEL[@REVISION], repeatable",
)
@json_option
@click.pass_context
def kernels_add(
    ctx: click.Context,
    artifact: Path | None,
    release: str,
    kversion: str,
    build_id: str,
    board_specs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register a vendor-built kernel for some board models (admin).

    ARTIFACT is the vendor's build: a Debian kernel package (.deb), a vmlinuz/bzImage, an arm64
    Image or Image.gz, or a vmlinux; the build id is extracted from it. Without ARTIFACT give
    --release and --build-id: the record is then marked unverified.
    """
    boards = [board_spec(s, "--board") for s in board_specs]
    if artifact is not None:
        if build_id:
            raise UserError(
                "give a kernel ARTIFACT or --build-id, not both: the build id is read from the artifact",
                Location(field="--build-id"),
            )
        if not artifact.is_file():
            raise UserError("kernel artifact not found", Location(str(artifact), None, "ARTIFACT"))
        data = backend(ctx).register_kernel_artifact(
            artifact,
            boards,
            kernel_release=release,
            kernel_version=kversion,
        )
    else:
        for name, value in (("--release", release), ("--build-id", build_id)):
            if not value:
                raise UserError(
                    f"give a kernel ARTIFACT, or both --release and --build-id ({name} is missing)",
                    Location(field=name),
                )
        data = backend(ctx).register_kernel(release, kversion, build_id, boards)
    emit(
        data,
        as_json,
        [
            ("id", "id"),
            ("release", "kernel_release"),
            ("build", "build_id"),
            ("verified", "build_id_verified"),
            ("from", "artifact.format"),
            ("seconds", "extraction_seconds"),
        ],
    )
