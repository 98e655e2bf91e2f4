"""Ed25519 over RFC 8785 canonical JSON in DSSE envelopes (no Django needed)."""
import base64
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provenance.signing import (
    PAYLOAD_TYPE,
    SignatureError,
    Signer,
    canonical_bytes,
    create_key_file,
    key_id,
    load_private_pem,
    verify_envelope,
)


def test_canonical_json_is_rfc8785():
    assert canonical_bytes({"b": 1, "a": [1.5, "é", None]}) == b'{"a":[1.5,"\xc3\xa9",null],"b":1}'


def test_sign_and_verify_roundtrip():
    signer = Signer(Ed25519PrivateKey.generate())
    env = signer.sign_envelope({"stem": {"sha256": "ab"}, "n": 1})
    assert env["payloadType"] == PAYLOAD_TYPE and env["signatures"][0]["keyid"] == signer.key_id
    payload, kid = verify_envelope(env, {signer.key_id: signer.public_key})
    assert payload == {"stem": {"sha256": "ab"}, "n": 1} and kid == signer.key_id


def test_tampered_payload_and_foreign_key_are_rejected():
    signer = Signer(Ed25519PrivateKey.generate())
    env = signer.sign_envelope({"stem": {"sha256": "ab"}})
    forged = dict(env, payload=base64.b64encode(canonical_bytes({"stem": {"sha256": "cd"}})).decode())
    with pytest.raises(SignatureError):
        verify_envelope(forged, {signer.key_id: signer.public_key})
    other = Signer(Ed25519PrivateKey.generate())
    resigned = other.sign_envelope(json.loads(base64.b64decode(env["payload"])))
    with pytest.raises(SignatureError, match="no signature by a known key"):
        verify_envelope(resigned, {signer.key_id: signer.public_key})


def test_dev_key_file_is_private_and_created_once(tmp_path):
    path = tmp_path / "keys" / "k.pem"
    assert create_key_file(path) is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = path.read_bytes()
    assert create_key_file(path) is False and path.read_bytes() == first
    key = load_private_pem(first)
    assert len(key_id(key.public_key())) == 64
