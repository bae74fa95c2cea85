"""Hostile bundles: refused from their headers, quickly, in bounded memory, with a named reason."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.report.bundle import make_bundle
from harness.report.bundle_read import verify_bundle
from tests.bundle.hostile import nested_json, oversized_member_bundle, repack, sparse_bundle

# A hang, not a speed requirement: the old verifier never finished on these files.
MAX_JSON_DEPTH = 64  # docs/bundle-format.md "Limits"


def test_sparse_member_declaring_a_petabyte_is_refused_by_bundle_verify(
    tmp_path: Path, harness_cli
) -> None:
    hostile = tmp_path / "sparse.tar"
    hostile.write_bytes(sparse_bundle(10**15))
    assert hostile.stat().st_size < 16 * 1024
    result = harness_cli(
        "bundle", "verify", str(hostile)
    )  # harness_cli's own timeout is the hang bound
    assert result.returncode == 1, result.stderr
    assert "'run/console.log' is a sparse file (refused)" in result.stderr
    assert "Traceback" not in result.stderr


def test_member_declaring_more_bytes_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    report = verify_bundle(oversized_member_bundle(10**12))
    assert not report.ok
    assert "member 'run/run.json' declares 1000000000000 bytes, more than the file holds" in (
        report.problems
    )


def test_bad_signature_stops_verification_before_any_content_is_hashed(run_folder: Path) -> None:
    """A forged manifest also lists a changed file; the verifier stops at the signature."""
    data = make_bundle(run_folder).path.read_bytes()

    def forge(members: dict[str, bytes]) -> None:
        manifest = json.loads(members["manifest.json"])
        manifest["run_id"] = "forged"
        members["manifest.json"] = json.dumps(manifest).encode()
        members["run/console.log"] = members["run/console.log"].replace(b"login", b"LOGIN")

    report = verify_bundle(repack(data, forge))
    assert report.problems == ["signature does not match the manifest (forged or altered manifest)"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deeply_nested_manifest_is_a_named_problem_not_a_crash(
    run_folder: Path, tmp_path: Path, harness_cli, depth: int
) -> None:
    data = make_bundle(run_folder).path.read_bytes()
    hostile = tmp_path / "nested.tar"
    hostile.write_bytes(repack(data, lambda m: m.__setitem__("manifest.json", nested_json(depth))))
    result = harness_cli("bundle", "verify", str(hostile))
    assert result.returncode == 1, result.stderr
    assert f"manifest.json nests deeper than {MAX_JSON_DEPTH} levels" in result.stderr
    assert "Traceback" not in result.stderr


def test_oversized_pax_header_is_refused_without_reading_it(tmp_path: Path) -> None:
    """A pax header that declares 64 MiB of extended data must not be read into memory."""
    from tests.bundle.hostile import header, member

    pax = header("././@PaxHeader", 64 << 20, b"x")
    data = member("manifest.json", b"{}") + pax + b"\0" * (64 << 20) + b"\0" * 1024
    report = verify_bundle(data)
    assert not report.ok
    assert any("extended data" in problem for problem in report.problems), report.problems


def _peak_rss_mib_of(argv: list[str]) -> tuple[int, float]:
    """(exit code, peak RSS in MiB) of one child process, measured by a wrapper that has no other child."""
    probe = textwrap.dedent(
        """
        import resource, subprocess, sys
        code = subprocess.run(sys.argv[1:], capture_output=True).returncode
        print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=600
    )
    code, peak = out.stdout.split()
    return int(code), float(peak)


def test_bundle_verify_streams_a_200_mb_bundle(run_folder: Path, tmp_path: Path) -> None:
    with (run_folder / "artifacts" / "big.bin").open("wb") as out:
        block = bytes(range(256)) * 4096  # 1 MiB, not compressible by anything downstream
        for _ in range(200):
            out.write(block)
    bundle = make_bundle(run_folder, tmp_path / "big.tar").path
    code, peak = _peak_rss_mib_of(
        [sys.executable, "-m", "harness", "bundle", "verify", str(bundle)]
    )
    assert code == 0
    # The interpreter and the harness's imports take ~60 MiB; reading the file whole took 260+.
    print(f"bundle verify peak RSS: {peak:.0f} MiB")
    assert peak < 150, f"bundle verify peaked at {peak:.0f} MiB on a 200 MiB bundle"
