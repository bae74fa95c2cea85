"""Onboarding a lab cannot go wrong, and a run that stays queued says why and what to do.

Issue 16: a lab registered under a name other than the one it signs bundles with used to be
discovered only at its first submission, with the reason hidden in an outbox file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.registry.store import LOCAL_ADMIN, Store
from tests.registry.runfolder import make_run_folder

REPO = Path(__file__).resolve().parents[2]


def sh(
    command: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A command line as a user types it (pipes included), with this checkout's harness."""
    harness = f"{sys.executable} -m harness"
    return subprocess.run(
        ["bash", "-c", command.replace("harness ", harness + " ")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300, input=stdin,
    )  # fmt: skip


def admin_server(db_url: str, start_server) -> tuple[str, str]:
    store = Store(db_url)
    admin = store.create_token("admin", "ops")
    store.register_board("Acme Boards", "AB-100", "", ["A1"], LOCAL_ADMIN)
    store.close()
    return start_server(db_url).url, admin


def test_lab_enrols_by_piping_labs_self_into_labs_add_and_its_first_run_is_delivered(
    db_url, start_server, tmp_path
) -> None:
    url, admin = admin_server(db_url, start_server)
    env = dict(os.environ)
    added = sh(f"harness registry labs self --json | harness registry --url {url} --token {admin} labs add --from-file -", env)  # fmt: skip
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("hrt_lab_") and "lab 'lab-one' registered" in added.stderr
    folder = make_run_folder(tmp_path / "results", "first-run")
    lab_env = dict(env, HARNESS_REGISTRY_URL=url, HARNESS_REGISTRY_TOKEN=token)
    submitted = sh(f"harness registry submit --json {folder}", lab_env)
    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout) == {"run_id": "first-run", "status": "delivered"}


def test_registering_a_lab_under_another_name_is_refused_at_labs_add(db_url, tmp_path) -> None:
    env = dict(os.environ)
    enrolment = tmp_path / "lab.json"
    enrolment.write_text(sh("harness registry labs self --json", env).stdout)
    refused = sh(f"harness registry --db '{db_url}' labs add lab-pg2 --from-file {enrolment}", env)
    assert refused.returncode == 2
    assert "the lab signs its bundles as 'lab-one', not 'lab-pg2'" in refused.stderr
    assert "labs self --name lab-pg2 --json" in refused.stderr
    assert "Traceback" not in refused.stderr
    store = Store(db_url)
    try:
        assert store.list_labs() == []
    finally:
        store.close()


def test_an_edited_enrolment_is_refused_by_the_registry(db_url, start_server, tmp_path) -> None:
    url, admin = admin_server(db_url, start_server)
    env = dict(os.environ)
    statement = json.loads(sh("harness registry labs self --json", env).stdout)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({**statement, "name": "lab-pg2"}))
    refused = sh(f"harness registry --url {url} --token {admin} labs add --from-file {edited}", env)
    assert refused.returncode == 2
    assert "enrolment signature does not match lab name 'lab-pg2'" in refused.stderr
    garbage = sh(f"harness registry --url {url} --token {admin} labs add --from-file -", env, "{")
    assert garbage.returncode == 2 and "<stdin>: not JSON" in garbage.stderr
    listed = json.loads(sh(f"harness registry --url {url} --token {admin} labs --json", env).stdout)
    assert listed == []


def test_a_run_refused_by_the_registry_prints_why_and_what_to_do_until_the_lab_re_enrols(
    db_url, start_server, tmp_path
) -> None:
    """The lab renames itself after enrolment: submit and sync say so and name the fix."""
    url, admin = admin_server(db_url, start_server)
    env = dict(os.environ)
    admin_cli = f"harness registry --url {url} --token {admin}"
    token = sh(f"harness registry labs self --json | {admin_cli} labs add --from-file -", env).stdout.strip()  # fmt: skip
    lab_env = dict(env, HARNESS_REGISTRY_URL=url, HARNESS_REGISTRY_TOKEN=token)
    renamed = json.loads(sh("harness registry labs self --name lab-renamed --json", env).stdout)
    assert renamed["name"] == "lab-renamed"

    folder = make_run_folder(tmp_path / "results", "renamed-run")
    queued = sh(f"harness registry submit {folder}", lab_env)
    assert queued.returncode == 3
    assert queued.stdout.startswith("queued:")
    assert "why: registry refused the request: bundle was signed for lab 'lab-renamed', but the token belongs to lab 'lab-one'" in queued.stderr  # fmt: skip
    assert "what to do: this machine signs its bundles under another name" in queued.stderr
    assert "labs self --json" in queued.stderr

    synced = sh("harness registry sync --json", lab_env)
    assert synced.returncode == 3
    report = json.loads(synced.stdout)
    assert report["delivered"] == [] and [q["run_id"] for q in report["queued"]] == ["renamed-run"]
    assert "signed for lab 'lab-renamed'" in report["queued"][0]["reason"]
    assert "labs add --from-file" in report["queued"][0]["what_to_do"]

    new_token = sh(f"harness registry labs self --json | {admin_cli} labs add --from-file -", env).stdout.strip()  # fmt: skip
    fixed = sh("harness registry sync", dict(lab_env, HARNESS_REGISTRY_TOKEN=new_token))
    assert fixed.returncode == 0, fixed.stderr
    assert "1 delivered, 0 still queued" in fixed.stdout


def test_a_revoked_lab_token_is_explained_by_sync(db_url, start_server, tmp_path) -> None:
    url, admin = admin_server(db_url, start_server)
    env = dict(os.environ)
    admin_cli = f"harness registry --url {url} --token {admin}"
    token = sh(f"harness registry labs self --json | {admin_cli} labs add --from-file -", env).stdout.strip()  # fmt: skip
    tokens = json.loads(sh(f"{admin_cli} tokens list --json", env).stdout)
    lab_token_id = next(t["id"] for t in tokens if t["lab"] == "lab-one")
    assert sh(f"{admin_cli} tokens revoke {lab_token_id}", env).returncode == 0
    lab_env = dict(env, HARNESS_REGISTRY_URL=url, HARNESS_REGISTRY_TOKEN=token)
    sh(f"harness registry submit {make_run_folder(tmp_path / 'results', 'r1')}", lab_env)
    synced = sh("harness registry sync", lab_env)
    assert synced.returncode == 3
    assert "still queued: r1: registry refused the request: the bearer token is not valid" in synced.stderr  # fmt: skip
    assert "revoked or expired" in synced.stderr and "tokens rotate ID" in synced.stderr


def test_certify_prints_why_its_run_stayed_queued_and_what_to_do(tmp_path) -> None:
    """`harness certify` (so `harness run`) on the simulated board, with the registry down."""
    dead = f"http://127.0.0.1:{_closed_port()}"
    env = dict(os.environ, HARNESS_REGISTRY_URL=dead, HARNESS_REGISTRY_TOKEN="hrt_lab_x",
               HARNESS_LAB_DIR=str(tmp_path / "lab"))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "harness", "certify", "--board", "sim", "--plan", str(REPO / "testplans" / "smoke.yaml"),
         "--results", str(tmp_path / "results")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert "verdict: CERTIFIED" in done.stdout, done.stdout + done.stderr
    why = f"why: registry {dead} unreachable"
    assert why in done.stderr  # from the run, as soon as delivery failed
    assert "  registry: queued\n    " + why in done.stdout  # in certify's summary
    assert "what to do: the run is safe in the outbox" in done.stdout
    assert "run `harness registry sync`" in done.stdout
    (folder,) = [p.parent for p in (tmp_path / "results").glob("*/run.json")]
    submission = json.loads((folder / "submission.json").read_text())
    assert submission["status"] == "queued" and "unreachable" in submission["reason"]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound and released; connections are refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
