"""Ranking the stems a copy found in the wild matches (no Django).

A stem is looked up with both fingerprints, as a catalog song is: Chromaprint finds re-encodes
and excerpts of any material, drums and bass included (the landmark print keeps tonal peaks
only, which a drum stem has few of); landmarks find a stem with other music over it, where
Chromaprint's chroma describes the mixture, not the stem.

Stems are less distinctive than songs: a separator's drum stem of music without drums is
mostly transients and noise, alike across songs, and Chromaprint matched such stems to other
songs' (scores up to 0.80 at the catalog's acceptance BER). So a Chromaprint match counts only
when the landmark constellation corroborates its alignment (`fusion.check_alignments`, the
identification fusion's corroboration score) or, where the stem has too few tonal peaks to
judge, when its own score clears `chromaprint_min_score`, calibrated on `bench.stem_find
--split calibration` (other tracks than the ones it reports). Chromaprint matches rank first
(an aligned run of near-identical items is the stronger evidence), then landmark-only ones.

A stem under louder music keeps few of its own peak pairs in the mixture's print: a bass line
under a song pairs its low partials with the song's, and a drum stem's hits are masked by the
song's drums. So the copy is also looked up through *views*: the parts a fixed, weights-free
separation (`separation.dsp`: low harmonic band, percussive, centre-harmonic, rest) pulls out
of it, each printed and matched on its own (`merge_views`: per stem, the view that found it
best). A view's query holds less of the other music, and also less of everything else, so views
have a bar of their own (`view_min_score`), calibrated like the others.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StemFindParams:
    #: a Chromaprint match the landmarks cannot corroborate needs this score: `bench.stem_find
    #: --split calibration` saw wrong uncorroborated matches up to 0.869; +0.02 margin
    chromaprint_min_score: float = 0.89
    #: landmark acceptance score for stems, calibrated on the stems index's own population
    #: (`bench.stem_find --split calibration`: highest wrong stem 0.756, +0.02), not the
    #: catalog's (`LandmarkParams.min_score`, set by the hardest same-style songs of bench.mixtures)
    landmark_min_score: float = 0.78
    #: landmark alignment score that corroborates a Chromaprint match (as `fusion.FusionParams`,
    #: but calibrated on stems: on `bench.stem_find --split calibration` a drum stem's re-encode
    #: matched another track's drum stem (the same generated loop) at alignment 0.55; +0.02)
    corroborate_score: float = 0.57
    #: landmark acceptance score for a match found in one of the copy's separated views. On
    #: `bench.stem_find --split calibration` the highest wrong candidate in any view was 0.756 (a
    #: drums view; bass views: up to 0.616) — +0.02 is 0.776, so views keep the copy's own bar.
    #: Per-view bars (bass 0.636) found more on that split but let a wrong stem through on the
    #: test split (a bass view at 0.682): the splits disagree by more than the margin.
    view_min_score: float = 0.78


def merge_views(by_view: dict[str, list]) -> tuple[list, dict]:
    """(matches, {key: view}): per stem key the best-scoring landmark match over the views
    (`"mix"` is the copy itself), and which view it came from."""
    best: dict = {}
    view_of: dict = {}
    for view, matches in by_view.items():
        for m in matches:
            if m.key not in best or m.score > best[m.key].score:
                best[m.key], view_of[m.key] = m, view
    return sorted(best.values(), key=lambda m: (-m.score, m.key)), view_of


def accepts(m, alignment, params: StemFindParams) -> bool:
    """Does Chromaprint match `m` count, given its alignment check (a LandmarkMatch or None)?"""
    if alignment is not None and alignment.score >= params.corroborate_score:
        return True
    return m.score >= params.chromaprint_min_score


def rank_stem_matches(chromaprint: list, landmarks: list, alignment: dict | None = None,
                      params: StemFindParams = StemFindParams(), view_of: dict | None = None) -> list[tuple[int, dict]]:
    """(index key, evidence) per matched stem, best first. Evidence: `decided_by`
    (chromaprint | landmarks | both), `score` (the deciding matcher's), the segment in the copy
    (`query_start_s`, `duration_s`) and in the stem (`ref_start_s`), and each matcher's row
    (`alignment`: the landmark check of Chromaprint's alignment, when it could be judged); a
    landmark row says which `view` of the copy matched (`merge_views`; "mix" when none given)."""
    alignment = alignment or {}
    view_of = view_of or {}
    lm_by_key = {m.key: m for m in landmarks}
    out: list[tuple[int, dict]] = []
    seen: set = set()
    for m in sorted(chromaprint, key=lambda m: -m.score):
        al = alignment.get(m.key)
        if m.key in seen or not accepts(m, al, params):
            continue
        seen.add(m.key)
        row = {k: v for k, v in m.as_dict().items() if k != "key"}
        lm = lm_by_key.pop(m.key, None)
        ev = {"decided_by": "both" if lm else "chromaprint", "score": row["score"],
              "query_start_s": row["query_start_s"], "ref_start_s": row["ref_start_s"],
              "duration_s": row["duration_s"], "chromaprint": row}
        if lm:
            ev["landmarks"] = {**{k: v for k, v in lm.as_dict().items() if k != "key"}, "view": view_of.get(m.key, "mix")}
        if al is not None:
            ev["alignment"] = {k: v for k, v in al.as_dict().items() if k != "key"}
        out.append((m.key, ev))
    for m in sorted(lm_by_key.values(), key=lambda m: -m.score):
        row = {**{k: v for k, v in m.as_dict().items() if k != "key"}, "view": view_of.get(m.key, "mix")}
        out.append((m.key, {"decided_by": "landmarks", "score": row["score"], "query_start_s": row["query_start_s"],
                            "ref_start_s": row["ref_start_s"], "duration_s": row["duration_s"], "landmarks": row}))
    return out
