"""Identification: keep the on-disk catalog index in step with the database and match
fingerprints against it, returning the evidence (the platform stores it on the upload)."""
from __future__ import annotations

import threading

import numpy as np
from django.conf import settings
from django.db.models import Count, Sum

from licensing.models import Recording

from .index import IndexStore, MultiIndex
from .matcher import Candidate, MatchParams, identify
from .models import ReferenceFingerprint
from .scan import ITEM_SECONDS

MATCHER_NAME = "chromaprint-speedgrid-v2"
#: Rejected candidates kept in the evidence (closest first).
EVIDENCE_CANDIDATES = 10
_lock = threading.Lock()
_stores: dict[str, IndexStore] = {}


def index_store() -> IndexStore:
    path = str(settings.CLEARSTEM_INDEX_DIR)
    with _lock:
        if path not in _stores:
            _stores[path] = IndexStore(path)
        return _stores[path]


def _db_state() -> dict:
    agg = ReferenceFingerprint.objects.aggregate(n=Count("id"), s=Sum("id"))
    return {"count": agg["n"], "sum": int(agg["s"] or 0)}


def sync_catalog_index() -> MultiIndex:
    """The catalog index, brought in line with the ReferenceFingerprint rows first.

    The database is the source of truth; the index directory is a per-machine cache of it that
    survives restarts. A cheap aggregate (count and sum of row ids) says whether anything was
    added or removed; only then does one process — under the store's file lock, while the
    others wait and then find the work done — index the new rows and tombstone the removed.
    """
    store = index_store()
    state = _db_state()
    if store.meta().get("db") == state:
        return store.index()
    with store.write_lock():
        if store.meta().get("db") != state:
            live = store.index().keys()
            db_ids = set(ReferenceFingerprint.objects.values_list("id", flat=True))
            new_ids = sorted(db_ids - live)
            removed = live - db_ids
            final = (live - removed) | set(new_ids)
            batch = 5000  # bound memory on a first build of a large catalog
            for i in range(0, max(len(new_ids), 1), batch):
                ids = new_ids[i:i + batch]
                add = [(r.id, r.as_array()) for r in ReferenceFingerprint.objects.filter(id__in=ids).only("id", "items")]
                last = i + batch >= len(new_ids)
                final -= set(ids) - {k for k, _ in add}  # deleted meanwhile
                store.apply(add=add, remove=removed if i == 0 else set(),
                            meta={"db": {"count": len(final), "sum": sum(final)}} if last else None)
    return store.index()


def match_params() -> MatchParams:
    return MatchParams(
        max_ber=settings.CLEARSTEM_MATCH_MAX_BER, min_seconds=settings.CLEARSTEM_MATCH_MIN_SECONDS,
        near_bits=settings.CLEARSTEM_MATCH_NEAR_BITS, min_near_fraction=settings.CLEARSTEM_MATCH_MIN_NEAR_FRACTION,
    )


def identify_variants(variants: list[tuple[float, np.ndarray]], rejected: list | None = None) -> list[dict]:
    """Every catalog recording found in the query (given as speed variants), as evidence rows."""
    rejected_raw: list[Candidate] = []
    matches = identify(sync_catalog_index(), variants, match_params(), candidates=rejected_raw)
    keys = {m.key for m in matches} | {c.key for c in rejected_raw}
    rec_of = dict(ReferenceFingerprint.objects.filter(id__in=keys).values_list("id", "recording_id"))
    recs = {r.id: r for r in Recording.objects.select_related("rights_holder").filter(id__in=rec_of.values())}
    out = []
    for m in matches:
        rec = recs.get(rec_of.get(m.key))
        if rec is None:  # removed meanwhile
            continue
        d = m.as_dict()
        d.pop("key")
        out.append({"recording": str(rec.id), "isrc": rec.isrc, "title": rec.title, "artist": rec.artist,
                    "rights_holder": rec.rights_holder.slug, **d})
    if rejected is not None:
        matched = {m.key for m in matches}
        best: dict = {}
        for c in rejected_raw:
            if c.key not in matched and (c.key not in best or c.near_fraction > best[c.key].near_fraction):
                best[c.key] = c
        for c in sorted(best.values(), key=lambda c: -c.near_fraction)[:EVIDENCE_CANDIDATES]:
            rec_id = rec_of.get(c.key)
            d = c.as_dict()
            d.pop("key")
            rejected.append({"recording": str(rec_id) if rec_id else None, **d})
    return out


def identify_fingerprint(items: np.ndarray, variants: list[tuple[float, np.ndarray]], peak_dbfs: float | None) -> dict:
    """The identification evidence for one query: its matches, the rejected candidates closest
    to the thresholds, and everything needed to judge the result again later (matcher,
    thresholds, speed variants, index generation). `variants` includes (1.0, items)."""
    params = match_params()
    evidence = {
        "matcher": MATCHER_NAME,
        "thresholds": {"max_ber": params.max_ber, "min_seconds": params.min_seconds,
                       "near_bits": params.near_bits, "min_near_fraction": params.min_near_fraction},
        "speed_variants": [f for f, _ in variants],
        "query_items": int(items.size),
        "query_seconds": round(items.size * ITEM_SECONDS, 2),
    }
    if items.size * ITEM_SECONDS < settings.CLEARSTEM_MATCH_MIN_SECONDS:
        evidence["matches"] = []
        evidence["note"] = "too_short: the audio is too short to identify; treated as unmatched"
    elif peak_dbfs is None or peak_dbfs < -70:
        evidence["matches"] = []
        evidence["note"] = "silent: the audio is silent; treated as unmatched"
    else:
        rejected: list = []
        evidence["matches"] = identify_variants(variants, rejected)
        evidence["rejected_candidates"] = rejected
        evidence["index_generation"] = index_store().generation()
    return evidence
