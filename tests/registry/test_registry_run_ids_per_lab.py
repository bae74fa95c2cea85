"""Run ids belong to the lab that made them; the registry database is private to its owner."""

from __future__ import annotations

import stat
from pathlib import Path

from harness.labkey import LabIdentity, load_or_create_identity
from harness.registry.store import Store


def submit(api, data: bytes, token: str):
    return api.client.post(
        "/submissions",
        files={"bundle": ("b.tar", data)},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_one_lab_cannot_squat_another_labs_run_id(api, make_bundle_bytes, tmp_path: Path) -> None:
    other_key = load_or_create_identity(tmp_path / "lab-two-key")
    lab_two = LabIdentity("lab-two", other_key.private_key)
    two_token = api.store.add_lab("lab-two", lab_two.public_key_text)
    squatted = submit(api, make_bundle_bytes("shared-run-1", identity=lab_two), two_token)
    assert squatted.status_code == 201, squatted.text

    own = make_bundle_bytes("shared-run-1")
    first = submit(api, own, api.tokens["lab"])
    assert first.status_code == 201, first.text  # not "already stored with a different bundle"
    again = submit(api, own, api.tokens["lab"])
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert sorted(r["lab"] for r in api.store.list_runs()) == ["lab-one", "lab-two"]

    ambiguous = api.client.get("/runs/shared-run-1/bundle")
    assert ambiguous.status_code == 409
    assert "lab-one, lab-two" in ambiguous.json()["detail"]
    assert api.client.get("/runs/shared-run-1/bundle", params={"lab": "lab-one"}).content == own


def test_registry_database_file_is_created_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "registry.db"
    Store(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
