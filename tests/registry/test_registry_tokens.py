"""Tokens can be listed, revoked, rotated and can expire: in the store, over HTTP and from the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx

from harness.registry.store import Store

REPO = Path(__file__).resolve().parents[2]


def test_revoked_token_is_refused_and_listed_as_revoked(api) -> None:
    reader = api.store.create_token_record("reader", "dashboard-2")
    auth = {"Authorization": f"Bearer {reader['token']}"}
    assert api.client.post("/tokens", headers=auth, json={"role": "reader", "label": "x"}).status_code == 403  # fmt: skip
    revoked = api.client.post(f"/tokens/{reader['id']}/revoke", headers=api.headers("admin"))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked" and revoked.json()["revoked_at"]
    assert api.client.post("/tokens", headers=auth, json={"role": "reader", "label": "x"}).status_code == 401  # fmt: skip
    again = api.client.post(f"/tokens/{reader['id']}/revoke", headers=api.headers("admin"))
    assert again.status_code == 409 and "already revoked" in again.json()["detail"]
    listed = {t["id"]: t for t in api.client.get("/tokens", headers=api.headers("admin")).json()}
    assert listed[reader["id"]]["state"] == "revoked"
    assert all("token" not in t and "token_sha256" not in t for t in listed.values())


def test_rotation_replaces_a_lab_token_with_one_of_the_same_lab(api, make_bundle_bytes) -> None:
    old_id = next(t["id"] for t in api.store.list_tokens() if t["label"] == "lab one ci")
    rotated = api.client.post(f"/tokens/{old_id}/rotate", headers=api.headers("admin"))
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert (new["role"], new["lab"], new["label"], new["replaces"]) == ("lab", "lab-one", "lab one ci", old_id)  # fmt: skip
    bundle = {"bundle": ("b.tar", make_bundle_bytes("run-rot"))}
    old = api.client.post("/submissions", files=bundle, headers=api.headers("lab"))
    assert old.status_code == 401
    fresh = api.client.post(
        "/submissions", files=bundle, headers={"Authorization": f"Bearer {new['token']}"}
    )
    assert fresh.status_code == 201, fresh.text
    assert api.store.get_token(old_id)["state"] == "revoked"


def test_token_expires_after_its_days_and_rotation_keeps_the_period(store, clock) -> None:
    token = store.create_token_record("reader", "ci", expires_in_days=30)
    assert token["expires_at"] == (clock.now + timedelta(days=30)).isoformat()
    assert store.authenticate(token["token"]) is not None
    clock.now += timedelta(days=30)
    assert store.authenticate(token["token"]) is None
    assert store.get_token(token["id"])["state"] == "expired"
    replaced = store.rotate_token(token["id"])
    assert replaced["expires_at"] == (clock.now + timedelta(days=30)).isoformat()
    assert store.authenticate(replaced["token"]) is not None


def test_last_use_is_recorded_at_most_once_a_minute(store, clock) -> None:
    token = store.create_token_record("reader", "ci")
    assert store.get_token(token["id"])["last_used_at"] is None
    store.authenticate(token["token"])
    first = clock.now
    assert store.get_token(token["id"])["last_used_at"] == first.isoformat()
    clock.now += timedelta(seconds=30)
    store.authenticate(token["token"])
    assert store.get_token(token["id"])["last_used_at"] == first.isoformat()
    clock.now += timedelta(seconds=31)
    store.authenticate(token["token"])
    assert store.get_token(token["id"])["last_used_at"] == clock.now.isoformat()


def test_rotation_and_revocation_are_audited(store) -> None:
    token = store.create_token_record("admin", "ops")
    store.rotate_token(token["id"])
    actions = [(e["action"], e["entity"]) for e in store.audit_entries()]
    assert actions[:3] == [("create", "token"), ("rotate", "token"), ("create", "token")]


def test_a_lab_name_on_a_reader_token_is_refused(store, lab) -> None:
    from harness.registry.errors import Invalid

    try:
        store.create_token("reader", "r", lab="lab-one")
    except Invalid as exc:
        assert "only for lab tokens" in str(exc)
    else:
        raise AssertionError("a reader token bound to a lab was accepted")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "registry", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip


def test_cli_tokens_create_list_rotate_revoke_over_http(db_url, start_server, data_home) -> None:
    """What an admin types; the secret alone is on stdout so `$(...)` captures it."""
    store = Store(db_url)
    admin = store.create_token("admin", "ops")
    store.close()
    server = start_server(db_url)
    env = dict(os.environ, HARNESS_REGISTRY_URL=server.url, HARNESS_REGISTRY_TOKEN=admin)

    created = run_cli("tokens", "create", "--role", "reader", "--label", "grafana", "--expires-in", "90", env=env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("hrt_reader_") and "\n" not in secret
    assert "expires 20" in created.stderr and "shown once" in created.stderr
    assert httpx.get(server.url + "/boards", headers={"Authorization": f"Bearer {secret}"}).status_code == 200  # fmt: skip

    listed = json.loads(run_cli("tokens", "list", "--json", env=env).stdout)
    mine = next(t for t in listed if t["label"] == "grafana")
    assert mine["role"] == "reader" and mine["state"] == "valid" and mine["expires_at"]
    assert mine["last_used_at"] is not None  # the read above
    table = run_cli("tokens", "list", env=env)
    assert "grafana" in table.stdout and "valid" in table.stdout

    rotated = run_cli("tokens", "rotate", str(mine["id"]), "--json", env=env)
    assert rotated.returncode == 0, rotated.stderr
    replacement = json.loads(rotated.stdout)
    assert replacement["replaces"] == mine["id"] and replacement["label"] == "grafana"
    assert httpx.post(server.url + "/tokens", headers={"Authorization": f"Bearer {secret}"}, json={}).status_code == 401  # fmt: skip

    revoked = run_cli("tokens", "revoke", str(replacement["id"]), "--json", env=env)
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["state"] == "revoked"
    twice = run_cli("tokens", "revoke", str(replacement["id"]), env=env)
    assert twice.returncode == 2 and "already revoked" in twice.stderr
    missing = run_cli("tokens", "revoke", "999999", env=env)
    assert missing.returncode == 2 and "token 999999 does not exist" in missing.stderr
    assert "Traceback" not in twice.stderr + missing.stderr


def test_a_registry_made_before_token_expiry_existed_is_upgraded(tmp_path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE tokens (id INTEGER PRIMARY KEY, token_sha256 VARCHAR(64) NOT NULL UNIQUE,"
            " role VARCHAR(10) NOT NULL, lab_id INTEGER, label VARCHAR(200) NOT NULL,"
            " created_at DATETIME NOT NULL)"
        )
        db.execute(
            "INSERT INTO tokens VALUES (1, 'ab', 'admin', NULL, 'old', '2026-01-01 00:00:00.000000')"
        )
    store = Store(f"sqlite:///{path}")
    try:
        assert [(t["label"], t["state"], t["expires_at"]) for t in store.list_tokens()] == [
            ("old", "valid", None)
        ]
        assert store.create_token_record("reader", "new", expires_in_days=1)["state"] == "valid"
    finally:
        store.close()
