"""Stem provenance: build the versioned record, sign it, store it with the stem."""
from __future__ import annotations

import base64
import importlib.metadata
import json

from django.utils import timezone

from . import credentials
from .keys import c2pa_credentials, get_signer, verification_keys
from .ledger import current_tree_head, do_append_entry, inclusion_proof, tree_head_dict
from .models import LedgerEntry, ProvenanceRecord
from .signing import canonical_bytes, sha256_hex

STEM_SCHEMA = "clearstem.stem-provenance/v1"
BUNDLE_SCHEMA = "clearstem.provenance-bundle/v2"


def stem_record(job, stem, model_info: dict) -> dict:
    upload = job.upload
    decision = job.decision or {}
    return {
        "schema": STEM_SCHEMA,
        "stem": {
            "id": str(stem.id), "name": stem.name, "sha256": stem.sha256, "size": stem.size,
            "format": stem.format, "sample_rate": stem.sample_rate, "bits_per_sample": stem.bits_per_sample,
            "channels": stem.channels, "duration_s": round(stem.duration_s, 6),
        },
        "source": {
            "upload_id": str(upload.id), "sha256": upload.sha256, "original_name": upload.original_name,
            "duration_s": round(upload.duration_s, 6),
        },
        "job": {
            "id": str(job.id), "stems": job.stems, "purpose": job.purpose, "commercial": job.commercial,
            "territory": job.territory, "created_at": job.created_at.isoformat(),
        },
        "identification": {
            "matcher": upload.identification.get("matcher"),
            "matches": [
                {k: m.get(k) for k in ("recording", "isrc", "title", "score", "query_start_s", "ref_start_s", "duration_s")}
                for m in upload.identification.get("matches", [])
            ],
        },
        "rights": {
            "basis": decision.get("basis"),
            "grants": decision.get("grants", []),
            "attestation": job.attestation,
        },
        "model": model_info,
        "actor": {"user": job.requested_by.username, "organisation": job.organisation.slug},
        "issued_at": timezone.now().isoformat(),
    }


def do_record_stem_provenance(job, stem, model_info: dict) -> ProvenanceRecord:
    """Sign a stem's record and append it to the ledger; call inside the transaction that
    creates the stem (no stem without its entry, no entry without its stem)."""
    record = stem_record(job, stem, model_info)
    signer = get_signer()
    envelope = signer.sign_envelope(record)
    entry = do_append_entry(LedgerEntry.Kind.STEM, f"stem:{stem.id}", envelope)
    return ProvenanceRecord.objects.create(
        stem=stem, ledger_entry=entry, schema=STEM_SCHEMA, envelope=envelope,
        payload_sha256=sha256_hex(canonical_bytes(record)), key_id=signer.key_id,
    )


def stem_bundle(stem) -> dict:
    """Everything a third party needs offline: the signed record, its ledger entry, the
    inclusion proof and the signed tree head it leads to, and the public keys involved."""
    rec = stem.provenance
    entry = rec.ledger_entry
    head = current_tree_head(covering=entry.index)
    keys = verification_keys()
    return {
        "bundle": BUNDLE_SCHEMA, "stem_id": str(stem.id), "envelope": rec.envelope,
        "ledger": {
            "index": entry.index,
            "entry": base64.b64encode(bytes(entry.body)).decode(),
            "inclusion_proof": [p.hex() for p in inclusion_proof(entry.index, head.size)],
            "tree_head": tree_head_dict(head),
        },
        "public_keys": {kid: pem for kid, pem in keys.items() if kid in (rec.key_id, head.key_id)},
    }


def sign_statement(statement: dict) -> dict:
    """Sign something a user declared (e.g. an ownership attestation) with the platform key."""
    return get_signer().sign_envelope(statement, payload_type="application/vnd.clearstem.attestation+json")


def software_version() -> str:
    try:
        return importlib.metadata.version("clearstem")
    except importlib.metadata.PackageNotFoundError:  # running from a checkout that was not installed
        return "unknown"


def signed_record(stem) -> dict:
    """The stem's provenance record as signed (the envelope's payload)."""
    return json.loads(base64.b64decode(stem.provenance.envelope["payload"]))


def embed_content_credentials(stem, src, dst, delivered_format: str, title: str, parent=None) -> None:
    """Write `src` (the stem encoded as `delivered_format`) to `dst` with a signed C2PA manifest
    of the stem's provenance (`provenance.credentials`). `parent`: (path, MIME type, title) of
    the upload, the parent ingredient."""
    creds = c2pa_credentials()
    record = signed_record(stem)
    manifest = credentials.manifest_definition(stem_bundle(stem), record, delivered_format=delivered_format,
                                               title=title, software_version=software_version(),
                                               with_parent=parent is not None)
    mime = credentials.MIME_TYPES["wav" if delivered_format.startswith("wav") else delivered_format]
    if parent is not None:
        path, parent_mime, parent_title = parent
        parent = (path, parent_mime, credentials.parent_ingredient(parent_title, record))
    credentials.embed(src, dst, mime, manifest, creds.chain_pem, creds.key_pem, parent=parent)


def read_content_credentials(path) -> credentials.Credentials:
    """Read a file's C2PA manifest, trusting the platform's configured anchors."""
    return credentials.read(path, c2pa_credentials().trust_anchors_pem or None)
