"""The lab's signing identity: one ed25519 key pair per lab machine.

Evidence is only worth something if the registry can tell which lab produced
it and that nobody edited it afterwards, so every bundle is signed with this
key. The private key is created on first use with mode 0600 and never leaves
the machine; only the public key (``ed25519:<base64>``) is handed to a
registry when the lab is registered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.errors import InfraError, Location, UserError
from harness.registry.config import ENV_LAB_NAME, data_home

KEY_PREFIX = "ed25519:"
PRIVATE_NAME = "lab_ed25519"
PUBLIC_NAME = "lab_ed25519.pub"
IDENTITY_NAME = "lab.json"


def key_dir() -> Path:
    return data_home() / "lab"


def encode_public_key(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def decode_public_key(text: str, where: Location | None = None) -> Ed25519PublicKey:
    """Parse ``ed25519:<base64 of 32 bytes>``; anything else is the caller's mistake."""
    text = text.strip()
    if not text.startswith(KEY_PREFIX):
        raise UserError(f"public key must start with '{KEY_PREFIX}'", where)
    try:
        raw = base64.b64decode(text[len(KEY_PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise UserError("public key is not 32 bytes of base64 after 'ed25519:'", where) from None


def fingerprint(public_key_text: str) -> str:
    """Short, stable name for a key so people can compare keys by eye."""
    return "SHA256:" + hashlib.sha256(public_key_text.strip().encode()).hexdigest()[:32]


def verify_signature(public_key_text: str, signature: bytes, message: bytes) -> bool:
    try:
        decode_public_key(public_key_text).verify(signature, message)
    except (InvalidSignature, UserError):
        return False
    return True


@dataclass(frozen=True)
class LabIdentity:
    name: str
    private_key: Ed25519PrivateKey

    @property
    def public_key_text(self) -> str:
        return encode_public_key(self.private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def enrolment(self) -> dict[str, str]:
        """What a registry admin needs to register this lab, signed so the name cannot drift.

        Bundles carry the lab's name (the manifest's `lab`) and the registry refuses a bundle
        whose name differs from the lab its token belongs to. Registering the name and key
        from this statement, whose signature proves that the key's holder uses exactly this
        name, makes that mismatch impossible instead of a surprise at the first submission.
        """
        key = self.public_key_text
        return {
            "name": self.name,
            "public_key": key,
            "fingerprint": fingerprint(key),
            "signature": base64.b64encode(self.sign(enrolment_message(self.name, key))).decode(),
        }


def enrolment_message(name: str, public_key_text: str) -> bytes:
    """The bytes a lab signs to enrol: a fixed context string, its name and its key."""
    return b"harness-lab-enrolment-v1\0" + name.encode() + b"\0" + public_key_text.strip().encode()


def verify_enrolment(name: str, public_key_text: str, signature: str) -> bool:
    """True if `signature` (base64) is the key's own signature of this name and key."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return False
    return verify_signature(public_key_text, raw, enrolment_message(name, public_key_text))


def _write_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Create `path` atomically with `mode`; False if another process created it first.

    Written to a private temp file and hard-linked into place, so a reader can
    never see a half-written key and two first uses cannot both win.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def load_or_create_identity(directory: Path | None = None) -> LabIdentity:
    """The lab identity, generated on first use; refuses a private key others can read."""
    directory = directory or key_dir()
    private_path = directory / PRIVATE_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not private_path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            name = os.environ.get(ENV_LAB_NAME) or socket.gethostname()
            if _write_exclusive(private_path, pem, 0o600):
                pub = encode_public_key(key.public_key()) + "\n"
                (directory / PUBLIC_NAME).write_text(pub)
                _write_exclusive(
                    directory / IDENTITY_NAME, json.dumps({"name": name}).encode(), 0o644
                )
        return _load(directory)
    except OSError as exc:
        raise InfraError(
            f"cannot set up the lab key in {directory}: {exc.strerror or exc}"
        ) from None


def rename_identity(name: str, directory: Path | None = None) -> LabIdentity:
    """Change the name this lab signs its bundles with (the key stays); the new identity.

    Bundles already made keep the old name; register the lab again with the new enrolment.
    """
    from harness.durable import write_atomic

    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise UserError("a lab name is 1 to 200 printable characters", Location(field="--name"))
    directory = directory or key_dir()
    load_or_create_identity(directory)
    write_atomic(directory / IDENTITY_NAME, json.dumps({"name": name}))
    return _load(directory)


def _load(directory: Path) -> LabIdentity:
    private_path = directory / PRIVATE_NAME
    mode = private_path.stat().st_mode & 0o777
    if mode & 0o077:
        raise UserError(
            f"lab private key is readable by others (mode {mode:o})",
            Location(private_path),
            "run: chmod 600 on it",
        )
    try:
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    except ValueError:
        raise UserError("lab private key is not a valid PEM key", Location(private_path)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError("lab private key is not an ed25519 key", Location(private_path))
    identity_path = directory / IDENTITY_NAME
    try:
        name = json.loads(identity_path.read_text())["name"]
    except (OSError, ValueError, KeyError, TypeError):
        name = os.environ.get(ENV_LAB_NAME) or socket.gethostname()
    return LabIdentity(name=str(name), private_key=key)
