"""Secrets never leak: a console password, a registry token and the lab's private key are planted,
then every output of real harness sessions is searched for them.

The sessions run against a simulated board whose console and SSH password is
the planted one, and a real registry (`harness registry serve`, uvicorn on
127.0.0.1) whose lab token is the planted token. Scanned: run folders
(console.log, results, reports, inventory, artifacts), bundles as the
registry serves them (unpacked), the outbox, every stdout/stderr and HTTP
reply, and the server's own log. Excluded are only the places a secret must
live: the lab's key folder, the board profile and env file the lab wrote,
and the bench's state.

`SESSIONS` is the list of sessions run and scanned (certification, the registry
down and a wrong token, and a repro run with a verify-resolution run against its
downloaded bundle, attached to a registry case); another session plugs in by
appending a function `(SecretsLab) -> Outputs` to it.
"""

from __future__ import annotations

import base64
import os
import secrets as random_secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from harness.labkey import PRIVATE_NAME, key_dir, load_or_create_identity
from harness.model.board import load_board
from harness.registry.store import LOCAL_ADMIN, Store
from harness.vlab.boardhost import SIM_PROFILE
from harness.vlab.handle import RunningBoard
from tests.registry.conftest import Server
from tests.secrets_scan import Outputs, Secret, find_leaks

REPO = Path(__file__).resolve().parents[1]
PLAN = REPO / "tests" / "run" / "plans" / "all-pass.yaml"
CASES = REPO / "testplans" / "cases"

pytestmark = pytest.mark.slow


@dataclass
class SecretsLab:
    """A simulated board and a registry holding planted secrets, and where sessions write."""

    board: RunningBoard
    server: Server
    token: str
    wrong_token: str
    data_home: Path
    work: Path
    secrets: list[Secret]

    def env(self, **more: str) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "HARNESS_DATA_HOME": str(self.data_home),
            "HARNESS_LAB_NAME": "lab-secrets",
            "HARNESS_REGISTRY_URL": self.server.url,
            "HARNESS_REGISTRY_TOKEN": self.token,
        }
        env.pop("HARNESS_REGISTRY_DB", None)
        return {**env, **more}

    def harness(
        self, name: str, *args: str, **env: str
    ) -> tuple[subprocess.CompletedProcess[str], Outputs]:
        done = subprocess.run(
            [sys.executable, "-m", "harness", *args],
            capture_output=True, text=True, cwd=self.work, env=self.env(**env), timeout=900,
        )  # fmt: skip
        return done, Outputs(texts={f"{name} stdout": done.stdout, f"{name} stderr": done.stderr})

    def certify(
        self, name: str, results: Path, **env: str
    ) -> tuple[subprocess.CompletedProcess[str], Outputs]:
        done, outputs = self.harness(
            name, "certify", "--board", str(self.board.profile.source), "--env",
            str(self.board.env_file), "--plan", str(PLAN), "--results", str(results), **env,
        )  # fmt: skip
        outputs.folders.append(results)
        return done, outputs


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- sessions --------------------------------------------------------------------------------


def certify_and_deliver(lab: SecretsLab) -> Outputs:
    """`harness certify` with the registry up; then the bundle as the registry serves it."""
    results = lab.work / "results-delivered"
    done, outputs = lab.certify("certify", results)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registry: delivered" in done.stdout
    (folder,) = [p for p in results.iterdir() if (p / "run.json").is_file()]
    reply = httpx.get(
        f"{lab.server.url}/runs/{folder.name}/bundle",
        headers={"Authorization": f"Bearer {lab.token}"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    bundle = lab.work / "downloaded-bundle.tar"
    bundle.write_bytes(reply.content)
    outputs.files.append(bundle)
    return outputs


def certify_with_registry_down_then_sync(lab: SecretsLab) -> Outputs:
    """Delivery fails (nothing listens), the bundle waits in the outbox, `registry sync` later."""
    results = lab.work / "results-queued"
    done, outputs = lab.certify(
        "certify (registry down)",
        results,
        HARNESS_REGISTRY_URL=f"http://127.0.0.1:{_closed_port()}",
    )
    # the run is certified and queued; certify then cannot ask the registry for eligibility
    assert done.returncode == 3, done.stdout + done.stderr
    assert "registry: queued" in done.stdout and "unreachable" in done.stderr
    # what waits in the outbox is scanned as it was before sync delivers (and removes) it
    shutil.copytree(lab.data_home / "outbox", lab.work / "outbox-before-sync")
    outputs.folders.append(lab.data_home / "outbox")
    _, synced = lab.harness("registry sync", "registry", "sync", "--results", str(results))
    outputs.add(synced)
    return outputs


def refused_token(lab: SecretsLab) -> Outputs:
    """A wrong token is refused; neither it nor the right one appears in the messages."""
    results = lab.work / "results-refused"
    done, outputs = lab.certify(
        "certify (wrong token)", results, HARNESS_REGISTRY_TOKEN=lab.wrong_token
    )
    assert "registry: queued" in done.stdout, done.stdout + done.stderr
    _, synced = lab.harness(
        "registry sync (wrong token)", "registry", "sync", "--results", str(results),
        HARNESS_REGISTRY_TOKEN=lab.wrong_token,
    )  # fmt: skip
    outputs.add(synced)
    reply = httpx.get(
        f"{lab.server.url}/runs", headers={"Authorization": f"Bearer {lab.wrong_token}"}, timeout=30
    )
    outputs.texts["HTTP reply to a wrong token"] = (
        f"{reply.status_code} {reply.headers} {reply.text}"
    )
    return outputs


def repro_verify_and_case(lab: SecretsLab) -> Outputs:
    """`harness repro` delivered to the registry, its bundle downloaded and used as the baseline
    of a verify-resolution run, both attached to a registry case (and refused to a wrong token)."""
    results = lab.work / "results-repro"
    case = lab.work / "case.yaml"
    case.write_text((CASES / "always.yaml").read_text())
    fixed = lab.work / "fixed.yaml"
    fixed.write_text(case.read_text().replace("status: ERROR state", "status: OK"))
    board = ["--board", str(lab.board.profile.source), "--env", str(lab.board.env_file)]
    done, outputs = lab.harness(
        "repro", "repro", str(case), *board, "--repeat", "3", "--results", str(results)
    )
    outputs.folders.append(results)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "registry: delivered" in done.stderr, done.stderr
    (repro_id,) = [p.name for p in results.iterdir() if (p / "run.json").is_file()]
    auth = {"Authorization": f"Bearer {lab.token}"}
    reply = httpx.get(f"{lab.server.url}/runs/{repro_id}/bundle", headers=auth, timeout=60)
    assert reply.status_code == 200, reply.text
    baseline = lab.work / "repro-baseline.bundle.tar"
    baseline.write_bytes(reply.content)
    outputs.files.append(baseline)

    verify, more = lab.harness(
        "repro --verify", "repro", str(fixed), *board, "--verify", "--baseline", str(baseline),
        "--results", str(results),
    )  # fmt: skip
    outputs.add(more)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    (verify_id,) = [p.name for p in results.iterdir() if p.name != repro_id]
    store = Store(lab.server.db_url)
    try:
        store.open_case(
            {"case_id": "demo-always", "customer_ref": "ACME-1001", "severity": "low",
             "subsystem": "userspace", "vendor": "Harness Virtual Lab",
             "model": "SIM (simulated, not hardware)", "revision": "1"},
            LOCAL_ADMIN,
        )  # fmt: skip
    finally:
        store.close()
    for name, args, env in (
        ("cases attach", ("attach", "demo-always", repro_id), {}),
        ("cases attach (wrong token)", ("attach", "demo-always", verify_id),
         {"HARNESS_REGISTRY_TOKEN": lab.wrong_token}),
        ("cases verify", ("verify", "demo-always", "--verdict", "resolved", "--run", verify_id), {}),
    ):  # fmt: skip
        step, more = lab.harness(name, "registry", "cases", *args, **env)
        outputs.add(more)
        assert (step.returncode == 0) == ("wrong" not in name), step.stdout + step.stderr
    report = httpx.get(f"{lab.server.url}/runs/{repro_id}/report", timeout=60)
    assert report.status_code == 200 and "ERROR state" in report.text
    outputs.texts["HTTP reply: repro report"] = report.text
    cases_page = httpx.get(f"{lab.server.url}/ui/cases", timeout=60)
    outputs.texts["HTTP reply: cases page"] = cases_page.text
    assert "resolved" in cases_page.text
    return outputs


SESSIONS: list[Callable[[SecretsLab], Outputs]] = [
    certify_and_deliver,
    certify_with_registry_down_then_sync,
    refused_token,
    repro_verify_and_case,
]


# ---- fixture and test ------------------------------------------------------------------------


def _key_secrets() -> list[Secret]:
    text = (key_dir() / PRIVATE_NAME).read_text()
    body = "".join(line for line in text.splitlines() if not line.startswith("-----"))
    key = serialization.load_pem_private_key(text.encode(), password=None)
    raw = key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return [
        Secret("lab private key (PEM)", body),
        Secret("lab private key (raw, base64)", base64.b64encode(raw).decode().rstrip("=")),
        Secret("lab private key (raw, hex)", raw.hex()),
    ]


@pytest.fixture
def secrets_lab(
    tmp_path: Path, vlab_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SecretsLab]:
    data_home = tmp_path / "lab-home"
    monkeypatch.setenv("HARNESS_DATA_HOME", str(data_home))
    monkeypatch.setenv("HARNESS_LAB_NAME", "lab-secrets")
    identity = load_or_create_identity()

    password = f"Planted-Console-{random_secrets.token_hex(8)}"
    profile = tmp_path / "secret-sim.yaml"
    profile.write_text(SIM_PROFILE.read_text().replace("password: root", f"password: {password}"))
    assert profile.read_text().count(password) == 2

    db = tmp_path / "registry.db"
    store = Store(f"sqlite:///{db}")
    token = store.add_lab(identity.name, identity.public_key_text)
    server_env = {**os.environ, "HARNESS_DATA_HOME": str(tmp_path / "server-home")}
    server = Server(f"sqlite:///{db}", server_env, tmp_path / "server.log").start()

    board = RunningBoard.start(load_board(profile), "secrets-sim", lab_dir=vlab_dir)
    work = tmp_path / "work"
    work.mkdir()
    wrong_token = f"wrong-{random_secrets.token_hex(16)}"
    lab = SecretsLab(
        board=board,
        server=server,
        token=token,
        wrong_token=wrong_token,
        data_home=data_home,
        work=work,
        secrets=[
            Secret("console password", password),
            Secret("registry token", token),
            Secret("wrong registry token", wrong_token),
            *_key_secrets(),
        ],
    )
    try:
        yield lab
    finally:
        board.stop()
        server.stop()


def test_no_session_output_contains_a_planted_secret(
    secrets_lab: SecretsLab, tmp_path: Path
) -> None:
    lab = secrets_lab
    outputs = Outputs(
        folders=[lab.work],
        files=[lab.server.log, lab.board.console_log],
        excluded=[key_dir()],
    )
    for session in SESSIONS:
        outputs.add(session(lab))
    leaks = find_leaks(outputs, lab.secrets)
    assert leaks == [], "\n".join(leaks)
