"""Identification: keep the on-disk catalog index in step with the database and match
fingerprints against it, returning the evidence (the platform stores it on the upload)."""
from __future__ import annotations

import threading
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Count, Sum

from licensing.models import Recording

from .fusion import FusionParams, align_chromaprint, check_alignments, fuse, side_by_side
from .index import IndexStore, MultiIndex, Segment
from .landmarks import PRINT_VERSION, LandmarkIndex, LandmarkParams, match_landmarks, unpack_print
from .matcher import Candidate, MatchParams, identify, identify_speeds
from .models import ReferenceFingerprint
from .scan import ITEM_SECONDS, REFERENCE_SPEEDS, unpack_variants
from .stems import StemFindParams, merge_views, rank_stem_matches, refuse_long_rhythm

MATCHER_NAME = "chromaprint-speedgrid-v3"
LANDMARK_MATCHER_NAME = f"landmarks-v{PRINT_VERSION}"
#: Rejected candidates kept in the evidence (closest first).
EVIDENCE_CANDIDATES = 10
_lock = threading.Lock()
_stores: dict[str, IndexStore] = {}


def index_store() -> IndexStore:
    return _store(str(settings.CLEARSTEM_INDEX_DIR), Segment)


def speed_store(speed: float) -> IndexStore:
    """The Chromaprint index of the references' prints at one of the REFERENCE_SPEEDS."""
    return _store(str(Path(settings.CLEARSTEM_INDEX_DIR) / "speeds" / f"{speed:.4f}"), Segment)


def landmark_store() -> IndexStore:
    return _store(str(settings.CLEARSTEM_LANDMARK_INDEX_DIR), LandmarkIndex)


def stem_stores() -> tuple[IndexStore, IndexStore]:
    """The Chromaprint and landmark indexes of the stems the platform made (finding a stem from
    a copy in the wild), kept apart from the catalog's, which identification must not confuse
    with stems."""
    base = Path(settings.CLEARSTEM_STEM_INDEX_DIR)
    return _store(str(base / "chromaprint"), Segment), _store(str(base / "landmarks"), LandmarkIndex)


def _store(path: str, segment_cls) -> IndexStore:
    with _lock:
        if path not in _stores:
            store = IndexStore(path, segment_cls=segment_cls)
            store.upgrade()  # segments of an older layout: rewritten once, by the first process here
            _stores[path] = store
        return _stores[path]


def _with_landmarks():
    return ReferenceFingerprint.objects.exclude(landmarks=b"")


def _chromaprint_refs(ids) -> list[tuple]:
    return [(r.id, r.as_array()) for r in ReferenceFingerprint.objects.filter(id__in=ids).only("id", "items")]


def _landmark_refs(ids, rows=None) -> list[tuple]:
    out = []
    for r in (_with_landmarks() if rows is None else rows).filter(id__in=ids).only("id", "landmarks"):
        try:
            kind, hashes, times, peaks = unpack_print(r.landmarks)
        except ValueError:  # an older print version: `backfill_landmarks` recomputes it
            continue
        if kind == "reference":
            out.append((r.id, hashes, times, peaks))
    return out


def sync_catalog_index() -> MultiIndex:
    """The Chromaprint catalog index, brought in line with the ReferenceFingerprint rows first."""
    return _sync(index_store(), ReferenceFingerprint.objects.all(), _chromaprint_refs)


def sync_speed_indexes() -> list[tuple[float, MultiIndex]]:
    """(speed, index) for 1.0 and each of the REFERENCE_SPEEDS, each brought in line with the
    reference rows first (at the other speeds: the rows that have those prints; see
    `catalog.do_backfill_prints` for references registered before — and for rows printed on
    another grid, which each sync reads again, finding no print at that speed, until the
    backfill recomputes them). The speed stores are synced together, so a first build reads
    each row's prints once, not once per speed."""
    rows = ReferenceFingerprint.objects.exclude(speed_items=b"")

    def load(ids) -> dict[float, list[tuple]]:
        refs: dict[float, list[tuple]] = {speed: [] for speed in REFERENCE_SPEEDS}
        for r in rows.filter(id__in=ids).only("id", "speed_items"):
            prints = dict(unpack_variants(bytes(r.speed_items)))
            for speed in REFERENCE_SPEEDS:
                items = prints.get(round(speed, 4))
                if items is not None:
                    refs[speed].append((r.id, items))
        return refs

    speeds = _sync_stores({speed: speed_store(speed) for speed in REFERENCE_SPEEDS}, rows, load)
    return [(1.0, sync_catalog_index()), *((speed, speeds[speed]) for speed in REFERENCE_SPEEDS)]


def sync_landmark_index() -> MultiIndex:
    """The landmark index, brought in line with the reference rows that have a landmark print."""
    return _sync(landmark_store(), _with_landmarks(), _landmark_refs)


def sync_print_index(store: IndexStore, rows) -> MultiIndex:
    """`store` brought in line with `rows`: any queryset of rows with an integer `id` and a
    `landmarks` reference print (e.g. the platform's stem prints, in `stem_store()`)."""
    rows = rows.exclude(landmarks=b"")
    return _sync(store, rows, lambda ids: _landmark_refs(ids, rows))


def sync_item_index(store: IndexStore, rows) -> MultiIndex:
    """`store` brought in line with `rows`: any queryset of rows with an integer `id` and raw
    Chromaprint `items` (uint32 LE bytes)."""
    rows = rows.exclude(items=b"")

    def load(ids):
        return [(r.id, np.frombuffer(bytes(r.items), dtype="<u4")) for r in rows.filter(id__in=ids).only("id", "items")]

    return _sync(store, rows, load)


def find_copies(cp_index: MultiIndex, lm_index: MultiIndex, items: np.ndarray, query_print: tuple,
                views: dict[str, tuple] | None = None, rhythm_keys=lambda keys: set()):
    """(key, evidence) of every indexed item a query is a copy of, best first: Chromaprint for
    re-encodes and excerpts, landmarks for copies under other audio (`fingerprint.stems`), on
    the copy's own print and on each of its separated `views` (name -> query print).
    `rhythm_keys(keys)`: which of `keys` are rhythm stems (`stems.RHYTHM_STEMS`), which the
    long rule does not apply to."""
    params = StemFindParams()  # stems have thresholds of their own (see fingerprint.stems)
    # stems keep bars of their own (calibrated by bench.stem_find)
    base = landmark_params()
    lm_params, view_params = params.landmark_params(base), params.landmark_params(base, view=True)
    # one hypothesis per stem, as bench.stem_find calibrated the bars (no alternative speeds)
    cp = [replace(m, alternatives=()) for m in identify(cp_index, [(1.0, items)], match_params())] if len(cp_index) else []
    by_view = {"mix": refuse_long_rhythm(match_print(lm_index, query_print, lm_params)[0], rhythm_keys, params)
               if len(lm_index) else []}
    for name, view_print in (views or {}).items():
        by_view[name] = refuse_long_rhythm(match_print(lm_index, view_print, view_params)[0], rhythm_keys, params,
                                           view=True) if len(lm_index) else []
    lm, view_of = merge_views(by_view)
    peaks_of = lambda key: _peaks_or_none(lm_index, key)  # noqa: E731
    alignment = check_alignments(cp, peaks_of, query_print[3], lm_params)
    rhythm = check_alignments(cp, peaks_of, query_print[3], lm_params, tonal_only=False)
    return rank_stem_matches(cp, lm, alignment, params, view_of, rhythm)


def match_print(index: MultiIndex, query_print: tuple, params: LandmarkParams | None = None):
    """(matches, rejected) of a query landmark print — `scan_audio(..., landmarks="query")` —
    in a landmark index, best first (`fingerprint.landmarks.match_landmarks`)."""
    _, hashes, times, peak_map = query_print
    lookup = partial(index.lookup, hits_per_hash=settings.CLEARSTEM_LANDMARK_HITS_PER_HASH)
    return match_landmarks(lookup, hashes, times, params or landmark_params(),
                           peaks=lambda key: index.segment_of(key).peaks_of(key), query_map=peak_map)


def _db_state(rows) -> dict:
    agg = rows.aggregate(n=Count("id"), s=Sum("id"))
    return {"count": agg["n"], "sum": int(agg["s"] or 0)}


def _sync(store: IndexStore, rows, load_refs) -> MultiIndex:
    """`store`'s index, brought in line with `rows` (a queryset of rows with integer ids) first.

    The database is the source of truth; the index directory is a per-machine cache of it that
    survives restarts. A cheap aggregate (count and sum of row ids) says whether anything was
    added or removed; only then does one process — under the store's file lock, while the
    others wait and then find the work done — index the new rows and tombstone the removed.
    """
    return _sync_stores({None: store}, rows, lambda ids: {None: load_refs(ids)})[None]


def _sync_stores(stores: dict, rows, load_refs) -> dict:
    """As `_sync`, for several stores filled from the same rows (name -> store; `load_refs(ids)`
    returns name -> refs): the new rows are read in batches once for all the stores that lack
    them, so a first build of the reference-speed indexes reads each row once, not per speed."""
    state = _db_state(rows)
    stale = [name for name, store in stores.items() if store.meta().get("db") != state]
    if stale:
        with ExitStack() as locks:
            for name in stale:  # always in the same order: no two processes wait on each other
                locks.enter_context(stores[name].write_lock())
            stale = [name for name in stale if stores[name].meta().get("db") != state]
            db_ids = set(rows.values_list("id", flat=True)) if stale else set()
            plans = {}
            for name in stale:
                live = stores[name].index().keys()
                plans[name] = {"new": db_ids - live, "removed": live - db_ids, "final": set(db_ids)}
            new_ids = sorted(set().union(*(plan["new"] for plan in plans.values())))
            batch = 5000  # bound memory on a first build of a large catalog
            for i in range(0, max(len(new_ids), 1), batch):
                ids = new_ids[i:i + batch]
                loaded = load_refs(ids) if ids else {}
                last = i + batch >= len(new_ids)
                for name, plan in plans.items():
                    wanted = plan["new"].intersection(ids)
                    add = [ref for ref in loaded.get(name, ()) if ref[0] in wanted]
                    plan["final"] -= wanted - {ref[0] for ref in add}  # deleted meanwhile (or unreadable)
                    if add or last or (i == 0 and plan["removed"]):
                        final = plan["final"]
                        stores[name].apply(add=add, remove=plan["removed"] if i == 0 else set(),
                                           meta={"db": {"count": len(final), "sum": sum(final)}} if last else None)
            if len(new_ids) > batch:  # a first build or a large import
                for name in plans:
                    stores[name].settle()
    return {name: store.index() for name, store in stores.items()}


def match_params() -> MatchParams:
    return MatchParams(
        max_ber=settings.CLEARSTEM_MATCH_MAX_BER, min_seconds=settings.CLEARSTEM_MATCH_MIN_SECONDS,
        near_bits=settings.CLEARSTEM_MATCH_NEAR_BITS, min_near_fraction=settings.CLEARSTEM_MATCH_MIN_NEAR_FRACTION,
    )


def landmark_params() -> LandmarkParams:
    return LandmarkParams(min_score=settings.CLEARSTEM_LANDMARK_MIN_SCORE,
                          long_min_score=settings.CLEARSTEM_LANDMARK_LONG_MIN_SCORE)


def fusion_params() -> FusionParams:
    lm = landmark_params()
    return FusionParams(landmark_review_score=settings.CLEARSTEM_LANDMARK_REVIEW_SCORE,
                        corroborate_score=settings.CLEARSTEM_MATCH_CORROBORATE_SCORE,
                        reject_below=settings.CLEARSTEM_MATCH_REJECT_BELOW,
                        landmark_min_votes=lm.min_votes, landmark_min_vote_seconds=lm.min_vote_seconds,
                        landmark_min_seconds=lm.min_seconds, confirm_below=settings.CLEARSTEM_MATCH_CONFIRM_BELOW)


def sync_indexes() -> None:
    """Bring the identification indexes in line with the catalog (after catalog changes)."""
    sync_speed_indexes()
    if settings.CLEARSTEM_LANDMARKS:
        sync_landmark_index()


@dataclass
class Identification:
    """Evidence rows of one query, keyed to recordings (see `fingerprint.fusion`)."""

    matches: list
    suspects: list
    rejected: list  # Chromaprint's closest rejected candidates
    landmark_rejected: list  # the landmarks' closest rejected candidates
    contradicted: list  # Chromaprint matches the recording's peaks contradict (fingerprint.fusion)
    landmarks_ran: bool


def _peaks_or_none(index: MultiIndex, key: int):
    try:
        return index.segment_of(key).peaks_of(key)
    except KeyError:  # a reference without a landmark print (see backfill_landmarks)
        return None


def identify_query(variants: list[tuple[float, np.ndarray]], landmark_print: tuple | None = None) -> Identification:
    """Every catalog recording found in the query (Chromaprint speed variants, and the query's
    landmark print when given), and the recordings only suspected, as evidence rows."""
    cp_params = match_params()
    cp_candidates: list[Candidate] = []
    indexes = sync_speed_indexes() if settings.CLEARSTEM_MATCH_SPEED_VARIANTS else [(1.0, sync_catalog_index())]
    landmarks_ran = bool(settings.CLEARSTEM_LANDMARKS and landmark_print is not None)
    lm_params = landmark_params()
    index = sync_landmark_index() if landmarks_ran else None  # the database is read here, not on the thread
    cp_matches, lm_found = side_by_side(
        partial(identify_speeds, indexes, variants, cp_params, candidates=cp_candidates),
        partial(match_print, index, landmark_print, lm_params) if landmarks_ran else None)
    lm_matches, lm_rejected = lm_found or ([], [])
    alignment: dict = {}
    if landmarks_ran:
        cp_matches, alignment = align_chromaprint(cp_matches, lambda key: _peaks_or_none(index, key),
                                                  landmark_print[3], lm_params,
                                                  good_enough=fusion_params().corroborate_score)
    verdict = fuse(cp_matches, cp_candidates, lm_matches, lm_rejected, landmarks_ran=landmarks_ran,
                   cp_params=cp_params, lm_params=lm_params, params=fusion_params(), alignment=alignment)
    keys = ({m.key for m in cp_matches} | {c.key for c in cp_candidates} | {m.key for m in lm_matches}
            | {m.key for m in lm_rejected})
    rec_of = dict(ReferenceFingerprint.objects.filter(id__in=keys).values_list("id", "recording_id"))
    recs = {r.id: r for r in Recording.objects.select_related("rights_holder").filter(id__in=rec_of.values())}

    def rows(by_key: dict) -> list[dict]:
        out = []
        for key, row in by_key.items():
            rec = recs.get(rec_of.get(key))
            if rec is None:  # removed meanwhile
                continue
            out.append({"recording": str(rec.id), "isrc": rec.isrc, "title": rec.title, "artist": rec.artist,
                        "rights_holder": rec.rights_holder.slug, **row})
        return out

    decided = set(verdict.present) | set(verdict.suspects) | set(verdict.contradicted)
    best: dict = {}
    for c in cp_candidates:
        if c.key not in decided and (c.key not in best or c.near_fraction > best[c.key].near_fraction):
            best[c.key] = c
    rejected = []
    for c in sorted(best.values(), key=lambda c: -c.near_fraction)[:EVIDENCE_CANDIDATES]:
        d = c.as_dict()
        rejected.append({"recording": str(rec_of[d.pop("key")]) if c.key in rec_of else None, **d})
    lm_rej = []
    for m in lm_rejected:
        if m.key in decided:
            continue
        d = m.as_dict()
        lm_rej.append({"recording": str(rec_of[d.pop("key")]) if m.key in rec_of else None, **d})
    return Identification(matches=rows(verdict.present), suspects=rows(verdict.suspects), rejected=rejected,
                          landmark_rejected=lm_rej[:EVIDENCE_CANDIDATES], contradicted=rows(verdict.contradicted),
                          landmarks_ran=landmarks_ran)


def identify_fingerprint(items: np.ndarray, variants: list[tuple[float, np.ndarray]], peak_dbfs: float | None,
                         landmark_print: tuple | None = None) -> dict:
    """The identification evidence for one query: the recordings present (`matches`, each with
    `decided_by` and the evidence of both fingerprints), the recordings only suspected
    (`suspects`: the platform sends such jobs to review), the rejected candidates closest to the
    thresholds, and everything needed to judge the result again later (matchers, thresholds,
    speed variants, index generations). `variants` includes (1.0, items)."""
    params = match_params()
    lm_params = landmark_params()
    fusion = fusion_params()
    evidence = {
        "matcher": MATCHER_NAME,
        "thresholds": {"max_ber": params.max_ber, "min_seconds": params.min_seconds,
                       "near_bits": params.near_bits, "min_near_fraction": params.min_near_fraction},
        "speed_variants": [f for f, _ in variants],
        "reference_speeds": [1.0, *REFERENCE_SPEEDS] if settings.CLEARSTEM_MATCH_SPEED_VARIANTS else [1.0],
        "query_items": int(items.size),
        "query_seconds": round(items.size * ITEM_SECONDS, 2),
        "landmarks": {
            "matcher": LANDMARK_MATCHER_NAME, "computed": landmark_print is not None,
            "enabled": settings.CLEARSTEM_LANDMARKS,
            "thresholds": {"min_score": lm_params.min_score, "long_min_score": lm_params.long_min_score,
                           "long_seconds": lm_params.long_seconds, "long_min_presence": lm_params.long_min_presence,
                           "min_votes": lm_params.min_votes,
                           "min_vote_seconds": lm_params.min_vote_seconds, "min_seconds": lm_params.min_seconds,
                           "review_score": fusion.landmark_review_score,
                           "hits_per_hash": settings.CLEARSTEM_LANDMARK_HITS_PER_HASH},
            "query_hashes": int(landmark_print[1].size) if landmark_print is not None else 0,
        },
        "fusion": {"confirm_below": fusion.confirm_below, "corroborate_score": fusion.corroborate_score,
                   "reject_below": fusion.reject_below},
        "suspects": [],
    }
    if items.size * ITEM_SECONDS < settings.CLEARSTEM_MATCH_MIN_SECONDS:
        evidence["matches"] = []
        evidence["note"] = "too_short: the audio is too short to identify; treated as unmatched"
    elif peak_dbfs is None or peak_dbfs < -70:
        evidence["matches"] = []
        evidence["note"] = "silent: the audio is silent; treated as unmatched"
    else:
        found = identify_query(variants, landmark_print)
        evidence["matches"] = found.matches
        evidence["suspects"] = found.suspects
        evidence["rejected_candidates"] = found.rejected
        evidence["landmarks"]["rejected_candidates"] = found.landmark_rejected
        evidence["contradicted"] = found.contradicted
        evidence["index_generation"] = index_store().generation()
        if found.landmarks_ran:
            evidence["landmarks"]["index_generation"] = landmark_store().generation()
    return evidence
