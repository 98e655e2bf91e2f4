"""Where the signing key comes from: a PEM variable, a PEM file, or — in the embedded default
only — a dev key created on first use (mode 0600). Extra verification keys keep old
signatures valid across rotation."""
from __future__ import annotations

import functools
import logging
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .signing import Signer, create_key_file, key_id, load_private_pem, load_public_pem, public_pem

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
