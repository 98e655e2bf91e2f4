"""Signed provenance: canonical JSON (RFC 8785), Ed25519 signatures in DSSE envelopes.

`signing` and `verify` need no Django; `models` and `services` store records for stems.
"""
