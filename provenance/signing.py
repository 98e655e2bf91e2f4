"""Ed25519 over RFC 8785 canonical JSON, wrapped as a DSSE envelope. No Django.

Key id = hex SHA-256 of the raw 32-byte public key, so anyone holding the public key can
compute it. DSSE signs PAE(payloadType, payload), which binds the type to the bytes.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PAYLOAD_TYPE = "application/vnd.clearstem.provenance+json"


class SignatureError(Exception):
    pass


def canonical_bytes(obj) -> bytes:
    return rfc8785.dumps(obj)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_pem(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("not an Ed25519 public key")
    return key


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass
class Signer:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign_envelope(self, payload_obj, payload_type: str = PAYLOAD_TYPE) -> dict:
        payload = canonical_bytes(payload_obj)
        sig = self.private_key.sign(pae(payload_type, payload))
        return {
            "payloadType": payload_type,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": self.key_id, "sig": base64.b64encode(sig).decode()}],
        }


def verify_envelope(envelope: dict, public_keys: dict[str, Ed25519PublicKey],
                    check_canonical: bool = True) -> tuple[dict, str]:
    """Return (payload, keyid) when one signature verifies with a known key; else raise."""
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        payload_type = envelope["payloadType"]
        signatures = envelope["signatures"]
    except (KeyError, TypeError, ValueError) as exc:
        raise SignatureError(f"malformed envelope: {exc}") from exc
    for entry in signatures:
        key = public_keys.get(entry.get("keyid", ""))
        if key is None:
            continue
        try:
            key.verify(base64.b64decode(entry["sig"]), pae(payload_type, payload))
        except (InvalidSignature, ValueError, KeyError):
            raise SignatureError(f"signature by key {entry.get('keyid')} does not verify") from None
        obj = json.loads(payload)
        if check_canonical and canonical_bytes(obj) != payload:
            raise SignatureError("payload is not in canonical (RFC 8785) form")
        return obj, entry["keyid"]
    raise SignatureError("no signature by a known key")


def load_private_pem(pem: bytes | str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError("the signing key is not an Ed25519 private key")
    return key


def create_key_file(path: Path) -> bool:
    """Create an Ed25519 key at `path` (mode 0600) unless one exists; True when created."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return write_new_file(path, pem)


def write_new_file(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Write `data` to `path` unless a file is there; True when this call wrote it.

    The data goes to a temporary file that is hard-linked into place, so concurrent workers
    racing on first start end up sharing one complete file (keys, dev certificates).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".new-")
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)
