"""Where the signing key comes from: a PEM variable, a PEM file, or — in the embedded default
only — a dev key created on first use (mode 0600). Extra verification keys keep old
signatures valid across rotation."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .certificates import CertificateError, check_signing_chain, issue_signing_certificate, load_chain, make_dev_ca, pem
from .signing import Signer, create_key_file, key_id, load_private_pem, load_public_pem, public_pem, write_new_file

log = logging.getLogger("clearstem.provenance")


@functools.cache
def get_signer() -> Signer:
    if settings.CLEARSTEM_SIGNING_KEY_PEM:
        return Signer(load_private_pem(settings.CLEARSTEM_SIGNING_KEY_PEM))
    path = Path(settings.CLEARSTEM_SIGNING_KEY_FILE)
    if not path.exists():
        if not settings.CLEARSTEM_AUTO_CREATE_DEV_KEY:
            raise ImproperlyConfigured(f"no signing key at {path} (set CLEARSTEM_SIGNING_KEY_FILE or _PEM)")
        if create_key_file(path):
            log.warning("created a DEVELOPMENT signing key at %s (mode 0600); use a managed key in production", path)
    return Signer(load_private_pem(path.read_bytes()))


def verification_keys() -> dict[str, str]:
    """key id -> public PEM, the active key first."""
    signer = get_signer()
    keys = {signer.key_id: public_pem(signer.public_key)}
    for file in settings.CLEARSTEM_VERIFY_KEY_FILES:
        pub = load_public_pem(Path(file).read_bytes())
        keys.setdefault(key_id(pub), public_pem(pub))
    return keys


@dataclass(frozen=True)
class C2paCredentials:
    """What signs content credentials: the platform key, its certificate chain (leaf first)
    and the trust anchors our own checks use (the dev CA in the embedded default)."""
    chain_pem: str
    key_pem: str
    trust_anchors_pem: str


@functools.cache
def c2pa_credentials() -> C2paCredentials:
    """The operator's chain (CLEARSTEM_C2PA_CERT_CHAIN_FILE), checked against the signing key;
    in the embedded default, a development CA and leaf made on first use (and a new leaf when
    the signing key changed)."""
    signer = get_signer()
    key_pem = signer.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()).decode()
    chain_file = Path(settings.CLEARSTEM_C2PA_CERT_CHAIN_FILE)
    anchors_file = Path(settings.CLEARSTEM_C2PA_TRUST_ANCHORS_FILE) if settings.CLEARSTEM_C2PA_TRUST_ANCHORS_FILE else None
    if settings.CLEARSTEM_C2PA_DEV_CA:
        anchors_file = anchors_file or chain_file.parent / "c2pa-dev-ca.pem"
        _ensure_dev_chain(chain_file, anchors_file, signer)
    if not chain_file.exists():
        raise ImproperlyConfigured(f"no C2PA certificate chain at {chain_file} (set CLEARSTEM_C2PA_CERT_CHAIN_FILE)")
    chain = chain_file.read_text()
    try:
        check_signing_chain(chain, signer.public_key)
    except CertificateError as exc:
        raise ImproperlyConfigured(f"C2PA certificate chain {chain_file}: {exc}") from None
    anchors = anchors_file.read_text() if anchors_file and anchors_file.exists() else ""
    return C2paCredentials(chain_pem=chain, key_pem=key_pem, trust_anchors_pem=anchors)


def _ensure_dev_chain(chain_file: Path, ca_file: Path, signer: Signer) -> None:
    ca_key_file = ca_file.with_name(ca_file.stem + "-key.pem")
    if write_new_file(ca_key_file, Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())):
        log.warning("created a DEVELOPMENT C2PA certificate authority in %s; files it signs are trusted only where "
                    "it is configured as a trust anchor", ca_file.parent)
    ca_key = load_private_pem(ca_key_file.read_bytes())
    write_new_file(ca_file, make_dev_ca(ca_key).public_bytes(serialization.Encoding.PEM), mode=0o644)
    ca_cert = load_chain(ca_file.read_bytes())[0]
    if chain_file.exists():
        try:
            check_signing_chain(chain_file.read_text(), signer.public_key)
            return
        except CertificateError:  # a new signing key or an expired leaf: issue another
            chain_file.unlink(missing_ok=True)
    leaf = issue_signing_certificate(ca_key, ca_cert, signer.public_key)
    write_new_file(chain_file, (pem(leaf) + pem(ca_cert)).encode(), mode=0o644)
