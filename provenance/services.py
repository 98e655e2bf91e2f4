"""Stem provenance: build the versioned record, sign it, store it with the stem."""
from __future__ import annotations

from django.utils import timezone

from .keys import get_signer, verification_keys
from .models import ProvenanceRecord
from .signing import canonical_bytes, sha256_hex

STEM_SCHEMA = "clearstem.stem-provenance/v1"
BUNDLE_SCHEMA = "clearstem.provenance-bundle/v1"


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
    """Sign and store a stem's record; call inside the transaction that creates the stem."""
    record = stem_record(job, stem, model_info)
    signer = get_signer()
    return ProvenanceRecord.objects.create(
        stem=stem, schema=STEM_SCHEMA, envelope=signer.sign_envelope(record),
        payload_sha256=sha256_hex(canonical_bytes(record)), key_id=signer.key_id,
    )


def stem_bundle(stem) -> dict:
    rec = stem.provenance
    return {
        "bundle": BUNDLE_SCHEMA, "stem_id": str(stem.id), "envelope": rec.envelope,
        "public_keys": {kid: pem for kid, pem in verification_keys().items() if kid == rec.key_id},
    }


def sign_statement(statement: dict) -> dict:
    """Sign something a user declared (e.g. an ownership attestation) with the platform key."""
    return get_signer().sign_envelope(statement, payload_type="application/vnd.clearstem.attestation+json")
