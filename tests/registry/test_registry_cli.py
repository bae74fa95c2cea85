"""`harness registry ...` as a lab engineer types it: tables, --json, and exit 2 on bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.cli import main
from harness.registry.store import LOCAL_ADMIN
from tests.registry.runfolder import repro_fields

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def harness(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """The real `harness` entry point, in-process (same code path as the console script, minus startup)."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        with monkeypatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            patch.chdir(REPO)
            capsys.readouterr()
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def test_admin_and_query_commands_against_the_database(
    harness, db_url, store, lab, make_bundle_bytes
) -> None:
    cert = store.submit_bundle(make_bundle_bytes("cli-run", vendor="Harness Virtual Lab", model="VX-86", revision="A1",
                                                 os_release="Debian 12", kernel_release="6.1.0-28-cloud-amd64"), lab)  # fmt: skip
    db = ("registry", "--db", db_url)

    boards = harness(*db, "boards")
    assert boards.returncode == 0 and "VX-86" in boards.stdout and "Debian 12" in boards.stdout

    eligible = harness(*db, "eligible", "--board", "boards/qemu-x86_64.yaml", "--os-release", "Debian 12",
                       "--kernel", "6.1.0-28-cloud-amd64")  # fmt: skip
    assert eligible.returncode == 0, eligible.stderr
    assert eligible.stdout.startswith("eligible-certified: ")
    assert "rests on certificate" in eligible.stdout and "cli-run" in eligible.stdout

    revoked = harness(
        *db, "revoke", str(cert["certificate_id"]), "--reason", "lab clock was wrong", "--json"
    )
    assert (
        revoked.returncode == 0
        and json.loads(revoked.stdout)["revoked_reason"] == "lab clock was wrong"
    )

    added = harness(*db, "kernels", "add", "--release", "6.6.0-vx1", "--build-id", "vx-build-1",
                    "--board", "Harness Virtual Lab/VX-86@A1", "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["boards"] == [
        {"vendor": "Harness Virtual Lab", "model": "VX-86", "revision": "A1"}
    ]

    answer = json.loads(harness(*db, "eligible", "--vendor", "Harness Virtual Lab", "--model", "VX-86", "--revision", "A1",
                                "--os-release", "Debian 12", "--kernel", "6.6.0-vx1", "--build-id", "vx-build-1",
                                "--json").stdout)  # fmt: skip
    assert answer["status"] == "eligible-vendor-kernel"
    assert [e["build_id"] for e in answer["evidence"]] == ["vx-build-1"]
    # typed in, not extracted from an artifact: shown as unverified
    assert [e["build_id_verified"] for e in answer["evidence"]] == [False]
    assert any("lab clock was wrong" in n["why"] for n in answer["not_counted"])

    opened = harness(*db, "cases", "open", "--id", "CASE-9", "--customer-ref", "CUST-1", "--severity", "high",
                     "--subsystem", "watchdog", "--vendor", "Harness Virtual Lab", "--model", "VX-86", "--revision", "A1",
                     "--opened-at", "2026-11-27T17:30:00+0000", "--json")  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["response_target_at"] == "2026-12-01T09:30:00+00:00"
    store.submit_bundle(make_bundle_bytes("cli-repro", vendor="Harness Virtual Lab", model="VX-86", revision="A1",
                                          **repro_fields("CASE-9")), lab)  # fmt: skip
    attached = harness(*db, "cases", "attach", "CASE-9", "cli-repro", "--json")
    assert [r["run_id"] for r in json.loads(attached.stdout)["reproduction_runs"]] == ["cli-repro"]
    listed = harness(*db, "cases")
    assert "CASE-9" in listed.stdout and "watchdog" in listed.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("revoke", "424242", "--reason", "x"), "certificate 424242 does not exist"),
        (("eligible", "--os-release", "Debian 12", "--kernel", "6.1"), "--vendor"),
        (
            ("eligible", "--board", "boards/missing.yaml", "--os-release", "D", "--kernel", "6.1"),
            "boards/missing.yaml",
        ),
        (
            ("kernels", "add", "--release", "6.6", "--build-id", "b", "--board", "no-slash"),
            "VENDOR/MODEL",
        ),
        (("cases", "attach", "NO-SUCH-CASE", "run"), "case 'NO-SUCH-CASE' does not exist"),
        (
            ("labs", "add", "--from-file", "/nonexistent/lab.json"),
            "/nonexistent/lab.json: cannot read the enrolment",
        ),
    ],
)
def test_bad_input_exits_2_with_one_clear_paragraph(harness, db_url, store, args, words) -> None:
    result = harness("registry", "--db", db_url, *args)
    assert result.returncode == 2, result.stdout
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_unsupported_database_url_exits_2(harness) -> None:
    result = harness("registry", "--db", "mysql://x@y/z", "boards")
    assert result.returncode == 2 and "unsupported database 'mysql'" in result.stderr


def test_lab_onboarding_and_queries_over_http(
    harness, db_url, store, start_server, tmp_path
) -> None:
    """A lab prints its key, an admin registers it over HTTP, the lab then submits with its token."""
    admin = store.create_token("admin", "ops")
    server = start_server(db_url)
    enrolment = tmp_path / "lab.json"
    enrolment.write_text(harness("registry", "labs", "self", "--json").stdout)
    remote = ("registry", "--url", server.url, "--token", admin)
    added = harness(*remote, "labs", "add", "--from-file", str(enrolment))
    assert added.returncode == 0, added.stderr
    lab_token = added.stdout.strip()
    store.register_board("Harness Virtual Lab", "VX-86", "q35", ["A1"], LOCAL_ADMIN)

    from tests.registry.runfolder import make_run_folder

    folder = make_run_folder(
        tmp_path / "results", "http-run-1", vendor="Harness Virtual Lab", model="VX-86"
    )
    lab_env = {"HARNESS_REGISTRY_URL": server.url, "HARNESS_REGISTRY_TOKEN": lab_token}
    submitted = harness("registry", "submit", str(folder), env=lab_env)
    assert submitted.returncode == 0 and submitted.stdout.startswith("delivered"), submitted.stderr

    certs = json.loads(
        harness("registry", "certs", "--model", "VX-86", "--json", env=lab_env).stdout
    )
    assert [c["run_id"] for c in certs] == ["http-run-1"]
    denied = harness("registry", "revoke", str(certs[0]["id"]), "--reason", "x", env=lab_env)
    assert denied.returncode == 2 and "a lab token cannot do this" in denied.stderr


def test_serve_with_an_impossible_holiday_date_exits_2_naming_the_file(
    harness, tmp_path: Path
) -> None:
    calendar = tmp_path / "holidays.yaml"
    calendar.write_text("timezone: Europe/Berlin\nholidays:\n  - 2026-02-30\n")
    result = harness(
        "registry", "--db", str(tmp_path / "r.db"), "serve", "--holidays", str(calendar)
    )
    assert result.returncode == 2
    assert str(calendar) in result.stderr and "day is out of range" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_an_infrastructure_error(harness) -> None:
    result = harness("registry", "--db", "postgresql://harness@127.0.0.1:1/registry", "boards")
    assert result.returncode == 3
    assert "registry database unavailable" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
