"""Ranking the stems a copy found in the wild matches (no Django).

A stem is looked up with both fingerprints, as a catalog song is: Chromaprint finds re-encodes
and excerpts of any material, drums and bass included (the landmark print keeps tonal peaks
only, which a drum stem has few of); landmarks find a stem with other music over it, where
Chromaprint's chroma describes the mixture, not the stem. Both use their product thresholds.
Chromaprint matches rank first (an aligned run of near-identical items is the stronger
evidence), then landmark-only matches, each by score.
"""
from __future__ import annotations


def rank_stem_matches(chromaprint: list, landmarks: list) -> list[tuple[int, dict]]:
    """(index key, evidence) per matched stem, best first. Evidence: `decided_by`
    (chromaprint | landmarks | both), `score` (the deciding matcher's), the segment in the copy
    (`query_start_s`, `duration_s`) and in the stem (`ref_start_s`), and each matcher's row."""
    lm_by_key = {m.key: m for m in landmarks}
    out: list[tuple[int, dict]] = []
    for m in sorted(chromaprint, key=lambda m: -m.score):
        row = {k: v for k, v in m.as_dict().items() if k != "key"}
        lm = lm_by_key.pop(m.key, None)
        ev = {"decided_by": "both" if lm else "chromaprint", "score": row["score"],
              "query_start_s": row["query_start_s"], "ref_start_s": row["ref_start_s"],
              "duration_s": row["duration_s"], "chromaprint": row}
        if lm:
            ev["landmarks"] = {k: v for k, v in lm.as_dict().items() if k != "key"}
        out.append((m.key, ev))
    for m in sorted(lm_by_key.values(), key=lambda m: -m.score):
        row = {k: v for k, v in m.as_dict().items() if k != "key"}
        out.append((m.key, {"decided_by": "landmarks", "score": row["score"], "query_start_s": row["query_start_s"],
                            "ref_start_s": row["ref_start_s"], "duration_s": row["duration_s"], "landmarks": row}))
    return out
