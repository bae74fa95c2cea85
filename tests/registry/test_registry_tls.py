"""`harness registry serve --certfile --keyfile` serves HTTPS that labs verify against their CA.

The certificates are made here with the `cryptography` package: a CA, and a server
certificate it signs for 127.0.0.1 and localhost.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.registry.store import LOCAL_ADMIN, Store
from tests.registry.conftest import _free_port
from tests.registry.runfolder import make_run_folder

REPO = Path(__file__).resolve().parents[2]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_pki(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) as PEM files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("Test Lab CA")).issuer_name(_name("Test Lab CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("registry")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )  # fmt: skip
    paths[2].chmod(0o600)
    return paths


@pytest.fixture
def tls_server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """A real `harness registry serve` over HTTPS on 127.0.0.1: (URL, CA file, admin token)."""
    ca, cert, key = make_pki(tmp_path)
    store = Store(db_url)
    admin = store.create_token("admin", "ops")
    store.register_board("Acme Boards", "AB-100", "", ["A1"], LOCAL_ADMIN)
    store.close()
    port = _free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "registry", "--db", db_url, "serve", "--port", str(port),
         "--certfile", str(cert), "--keyfile", str(key)],
        stdout=subprocess.DEVNULL, stderr=log.open("ab"), env=dict(os.environ),
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(ca))
    try:
        deadline = time.monotonic() + 60  # bound for a hang only; readiness is the evidence
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/health", verify=trust, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "registry did not answer over HTTPS"
                time.sleep(0.1)
        yield url, ca, admin
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cli(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "registry", *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)  # fmt: skip


def test_a_lab_enrols_and_delivers_over_https_trusting_the_labs_ca(tls_server, tmp_path) -> None:
    url, ca, admin = tls_server
    env = dict(os.environ, SSL_CERT_FILE=str(ca))
    enrolment = cli("labs", "self", "--json", env=env).stdout
    added = cli("--url", url, "--token", admin, "labs", "add", "--from-file", "-", env=env, stdin=enrolment)  # fmt: skip
    assert added.returncode == 0, added.stderr
    lab_env = dict(env, HARNESS_REGISTRY_URL=url, HARNESS_REGISTRY_TOKEN=added.stdout.strip())
    folder = make_run_folder(tmp_path / "results", "tls-run")
    submitted = cli("submit", str(folder), "--json", env=lab_env)
    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["status"] == "delivered"
    certs = json.loads(cli("certs", "--json", env=lab_env).stdout)
    assert [c["run_id"] for c in certs] == ["tls-run"]


def test_plain_http_to_the_https_port_gets_no_answer(tls_server) -> None:
    url, _, _ = tls_server
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https://", "http://") + "/health", timeout=5)


def test_a_lab_that_does_not_trust_the_certificate_is_told_how_to(tls_server, tmp_path) -> None:
    url, _, _ = tls_server
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    lab_env = dict(env, HARNESS_REGISTRY_URL=url, HARNESS_REGISTRY_TOKEN="hrt_lab_whatever")
    queued = cli("submit", str(make_run_folder(tmp_path / "results", "untrusted")), env=lab_env)
    assert queued.returncode == 3
    assert "CERTIFICATE_VERIFY_FAILED" in queued.stderr
    assert "what to do: this machine does not trust the registry's TLS certificate: set SSL_CERT_FILE" in queued.stderr  # fmt: skip


def test_serve_refuses_half_or_broken_tls_options_with_exit_2(tmp_path) -> None:
    _, cert, key = make_pki(tmp_path)
    db = ("--db", str(tmp_path / "r.db"))
    env = dict(os.environ)
    half = cli(*db, "serve", "--certfile", str(cert), env=env)
    assert half.returncode == 2 and "--keyfile is missing" in half.stderr
    wrong = cli(*db, "serve", "--certfile", str(cert), "--keyfile", str(cert), env=env)
    assert (
        wrong.returncode == 2 and "not a PEM certificate and matching private key" in wrong.stderr
    )
    missing = cli(*db, "serve", "--certfile", str(tmp_path / "nope.pem"), "--keyfile", str(key), env=env)  # fmt: skip
    assert missing.returncode == 2 and "nope.pem" in missing.stderr
    assert "Traceback" not in half.stderr + wrong.stderr + missing.stderr
