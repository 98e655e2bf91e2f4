"""Signed tree heads, as JSON and as C2SP checkpoint notes. No Django.

The tree head JSON {origin, size, root_hash, timestamp, key_id} is signed as RFC 8785 canonical
bytes; the same head is also exported as a C2SP `tlog-checkpoint` body
("<origin>\\n<size>\\n<base64 root>\\n") wrapped in a C2SP `signed-note` with an Ed25519
signature line, so standard transparency-log tooling can check it too.
"""
from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .signing import SignatureError, canonical_bytes, key_id

STH_SCHEMA = "clearstem.tree-head/v1"


def tree_head_payload(origin: str, size: int, root: bytes, timestamp_ms: int, kid: str) -> dict:
    return {"schema": STH_SCHEMA, "origin": origin, "size": size, "root_hash": root.hex(),
            "timestamp": timestamp_ms, "key_id": kid}


def sign_tree_head(private_key: Ed25519PrivateKey, origin: str, size: int, root: bytes, timestamp_ms: int) -> dict:
    pub = private_key.public_key()
    payload = tree_head_payload(origin, size, root, timestamp_ms, key_id(pub))
    signature = private_key.sign(canonical_bytes(payload))
    return {**payload, "signature": base64.b64encode(signature).decode(),
            "checkpoint": signed_note(private_key, origin, checkpoint_body(origin, size, root))}


def verify_tree_head(head: dict, keys: dict[str, Ed25519PublicKey]) -> None:
    try:
        payload = {k: head[k] for k in ("schema", "origin", "size", "root_hash", "timestamp", "key_id")}
        signature = base64.b64decode(head["signature"], validate=True)
    except (KeyError, ValueError) as exc:
        raise SignatureError(f"malformed tree head: {exc}") from exc
    key = keys.get(payload["key_id"])
    if key is None:
        raise SignatureError(f"tree head signed by unknown key {payload['key_id']}")
    try:
        key.verify(signature, canonical_bytes(payload))
    except InvalidSignature:
        raise SignatureError("tree head signature does not verify") from None


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint(note: str) -> tuple[str, int, bytes]:
    """(origin, size, root hash) of a C2SP checkpoint (signed or not); its signatures are the
    caller's to check (`verify_note`)."""
    lines = note.partition("\n\n")[0].split("\n")
    if len(lines) < 3:
        raise SignatureError("malformed checkpoint: it needs an origin, a size and a root hash line")
    origin, size, root_b64 = lines[:3]
    if not size.isascii() or not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        raise SignatureError(f"malformed checkpoint: size {size!r} is not a decimal number")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except ValueError:
        root = b""
    if len(root) != 32:
        raise SignatureError("malformed checkpoint: the root hash is not 32 base64-encoded bytes")
    return origin, int(size), root


def note_key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + b"\x01" + raw).digest()[:4]


def signed_note(private_key: Ed25519PrivateKey, name: str, text: str) -> str:
    sig = private_key.sign(text.encode())
    blob = base64.b64encode(note_key_hash(name, private_key.public_key()) + sig).decode()
    return f"{text}\n\u2014 {name} {blob}\n"


def verify_note(note: str, name: str, public_key: Ed25519PublicKey) -> str:
    """Return the note's text when a signature line by (name, key) verifies."""
    text, sep, sigs = note.partition("\n\n")
    if not sep:
        raise SignatureError("not a signed note")
    text += "\n"
    want = note_key_hash(name, public_key)
    for line in sigs.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014" or parts[1] != name:
            continue
        blob = base64.b64decode(parts[2])
        if blob[:4] != want:
            continue
        try:
            public_key.verify(blob[4:], text.encode())
        except InvalidSignature:
            raise SignatureError("checkpoint signature does not verify") from None
        return text
    raise SignatureError(f"no checkpoint signature by {name} with this key")
