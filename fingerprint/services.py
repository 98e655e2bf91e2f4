"""Identification: match an upload's fingerprint against the catalog and store the evidence."""
from __future__ import annotations

import threading

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from clearstem.uploads.models import Upload

from .matcher import ReferenceIndex
from .models import ReferenceFingerprint
from .scan import ITEM_SECONDS

MATCHER_NAME = "chromaprint-exact-v1"
_lock = threading.Lock()
_cache: dict = {"version": None, "index": None}


def catalog_index() -> ReferenceIndex:
    """The process's index, rebuilt when the catalog changed (count or newest entry).

    Foundation version: built from the database per process; the identification issue makes
    it incremental and shared across processes.
    """
    agg = ReferenceFingerprint.objects.aggregate(n=Count("id"), newest=Max("id"))
    version = (agg["n"], agg["newest"])
    with _lock:
        if _cache["version"] != version:
            refs = [(str(r.recording_id), r.as_array()) for r in ReferenceFingerprint.objects.all()]
            _cache["index"] = ReferenceIndex.build(refs)
            _cache["version"] = version
        return _cache["index"]


def identify_items(items: np.ndarray) -> list[dict]:
    from licensing.models import Recording

    matches = catalog_index().query(
        items, max_ber=settings.CLEARSTEM_MATCH_MAX_BER, min_seconds=settings.CLEARSTEM_MATCH_MIN_SECONDS
    )
    recs = {str(r.id): r for r in Recording.objects.select_related("rights_holder").filter(id__in=[m.key for m in matches])}
    out = []
    for m in matches:
        rec = recs.get(m.key)
        if rec is None:  # removed meanwhile
            continue
        d = m.as_dict()
        d.pop("key")
        out.append({
            "recording": str(rec.id), "isrc": rec.isrc, "title": rec.title, "artist": rec.artist,
            "rights_holder": rec.rights_holder.slug, **d, "decided_by": "chromaprint",
        })
    return out


def do_identify_upload(upload_id) -> Upload:
    """Idempotent: an upload is identified once; its evidence is kept for audit."""
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=upload_id)
        if upload.identification_status == Upload.Identification.DONE:
            return upload
        items = np.frombuffer(bytes(upload.fingerprint), dtype="<u4")
        evidence = {
            "matcher": MATCHER_NAME,
            "thresholds": {"max_ber": settings.CLEARSTEM_MATCH_MAX_BER, "min_seconds": settings.CLEARSTEM_MATCH_MIN_SECONDS},
            "query_items": int(items.size),
            "query_seconds": round(items.size * ITEM_SECONDS, 2),
        }
        if items.size * ITEM_SECONDS < settings.CLEARSTEM_MATCH_MIN_SECONDS:
            evidence["matches"] = []
            evidence["note"] = "too_short: the audio is too short to identify; treated as unmatched"
        elif upload.peak_dbfs is None or upload.peak_dbfs < -70:
            evidence["matches"] = []
            evidence["note"] = "silent: the audio is silent; treated as unmatched"
        else:
            evidence["matches"] = identify_items(items)
        upload.identification = evidence
        upload.identification_status = Upload.Identification.DONE
        upload.identified_at = timezone.now()
        upload.save(update_fields=["identification", "identification_status", "identified_at"])
        return upload
