"""Ranking the stems a copy found in the wild matches (no Django).

A stem is looked up with both fingerprints, as a catalog song is: Chromaprint finds re-encodes
and excerpts of any material, drums and bass included (the landmark print keeps tonal peaks
only, which a drum stem has few of); landmarks find a stem with other music over it, where
Chromaprint's chroma describes the mixture, not the stem.

Stems are less distinctive than songs: a drum stem is mostly transients and noise, whose
chroma is alike across songs, and Chromaprint matched such stems to other songs' (scores up to
0.93 for the band-split model's drum stems, over a whole 20 s copy, at unrelated offsets). So a
Chromaprint match counts only when the landmark constellation corroborates its alignment —
on the stem's sustained partials (`fusion.check_alignments`, the identification fusion's
check) or, for a stem whose identity is its rhythm, on all its peaks, hits included
(`tonal_only=False`: another song's drums do not hit at the same instants). Where the
constellation was judged and agrees on neither, the match is refused, whatever its score; only
where there are too few peaks to judge at all does the score decide (`chromaprint_min_score`).
Thresholds are calibrated on `bench.stem_find --split calibration` (other tracks than the ones
it reports). Chromaprint matches rank first (an aligned run of near-identical items is the
stronger evidence), then landmark-only ones.

A stem under louder music keeps few of its own peak pairs in the mixture's print: a bass line
under a song pairs its low partials with the song's, and a drum stem's hits are masked by the
song's drums. So the copy is also looked up through *views*: the parts a fixed, weights-free
separation (`separation.dsp`: low harmonic band, percussive, centre-harmonic, rest) pulls out
of it, each printed and matched on its own (`merge_views`: per stem, the view that found it
best). A view's query holds less of the other music, and also less of everything else, so views
have a bar of their own (`view_min_score`), calibrated like the others.

A stem buried under louder music keeps few peaks, but it keeps them over the whole copy, while
an unrelated stem agrees with the copy locally (a cadence, a shared chord): so a landmark match
over a segment of `long_seconds` or more is accepted from a lower bar (`landmark_long_min_score`,
as the catalog's long rule, `LandmarkParams.acceptance`). Not for drum stems (`RHYTHM_STEMS`):
loops and kits recur across songs, and other tracks' drum stems agreed with a drum copy over
14–16 s as well as the true one did — they keep the one bar (`refuse_long_rhythm`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .landmarks import LandmarkParams


@dataclass(frozen=True)
class StemFindParams:
    #: a Chromaprint match that neither check could judge (too few peaks in the segment) needs
    #: this score: `bench.stem_find --split calibration` on `dsp`-made stems saw wrong
    #: uncorroborated matches up to 0.869; +0.02 margin (on model-made stems every match was checked)
    chromaprint_min_score: float = 0.89
    #: landmark acceptance score for stems, calibrated on the stems index's own population
    #: (`bench.stem_find --split calibration`: highest wrong stem 0.756, +0.02), not the
    #: catalog's (`LandmarkParams.min_score`, set by the hardest same-style songs of bench.mixtures)
    landmark_min_score: float = 0.78
    #: landmark alignment score that corroborates a Chromaprint match (as `fusion.FusionParams`,
    #: but calibrated on stems: on `bench.stem_find --split calibration` a drum stem's re-encode
    #: matched another track's drum stem (the same generated loop) at alignment 0.55; +0.02)
    corroborate_score: float = 0.57
    #: the same check on every peak of the stem, transients included (`verify_alignment(tonal_only=False)`),
    #: for stems with few sustained partials. `bench.stem_find --split calibration` (stems made by
    #: clearstem-bandsplit-v1): wrong Chromaprint matches (all drum stems) reached 0.726 on it; +0.02
    rhythm_corroborate_score: float = 0.746
    #: landmark acceptance score for a match found in one of the copy's separated views. On
    #: `bench.stem_find --split calibration` the highest wrong candidate in any view was 0.756 (a
    #: drums view; bass views: up to 0.616) — +0.02 is 0.776, so views keep the copy's own bar.
    #: Per-view bars (bass 0.636) found more on that split but let a wrong stem through on the
    #: test split (a bass view at 0.682): the splits disagree by more than the margin.
    #: Stop 42, stems made by clearstem-bandsplit-v3: an MP3 copy of a drum stem matched another
    #: track's drum stem in its `dsp` drums view at 0.796 (the bench's shared loops and kits),
    #: so views get their own bar again: 0.796 + 0.02.
    view_min_score: float = 0.816
    #: a landmark match of a tonal stem (not one of RHYTHM_STEMS) over a segment of at least
    #: `long_seconds` is accepted from this score (None: off). A stem buried under louder music
    #: agrees with the copy faintly but over the whole excerpt; unrelated stems agree locally.
    #: `bench.stem_find --split calibration` (stop 34, stems made by clearstem-bandsplit-v1,
    #: candidates in the copy and every view): wrong tonal-stem candidates over 10 s or more
    #: scored up to 0.565 (presence 0.14; a vocals copy's drums view), +0.02; wrong drum-stem
    #: candidates over 14-16 s reached 0.726 (presence 0.41: the bench's shared loops and kits),
    #: so drum stems keep the one bar. Stop 40, stems made by clearstem-bandsplit-v2 (the new
    #: default): a wrong *other* stem reached 0.603 over 16 s (presence 0.19, an *other* copy's
    #: own view; the next 0.518), reported as a wrong stem at 0.585 — so 0.603 + 0.02.
    #: Stop 49, stems made by clearstem-bandsplit-v4 (shipped, selectable): an MP3 copy of a vocals
    #: stem matched another track's vocals stem over 16 s at 0.663 in the copy itself (the bar was
    #: 0.623), so 0.663 + 0.02. On that split no stem found under music or overdubbed relied on a
    #: long match below the new bar.
    landmark_long_min_score: float | None = 0.683
    long_seconds: float = 10.0
    long_min_presence: float = 0.0

    def landmark_params(self, base: LandmarkParams | None = None, view: bool = False) -> LandmarkParams:
        """`base` (the catalog's landmark parameters) with the stems' bars, for matching a copy's
        own print (or, `view`, one of its separated views) against the stems index."""
        return replace(base or LandmarkParams(), min_score=self.view_min_score if view else self.landmark_min_score,
                       long_min_score=self.landmark_long_min_score, long_seconds=self.long_seconds,
                       long_min_presence=self.long_min_presence)


#: Stems whose identity is their rhythm: loops and kits recur across songs, so a long faint
#: agreement is no evidence that a copy holds this stem (they keep the one landmark bar).
RHYTHM_STEMS = frozenset({"drums"})


def refuse_long_rhythm(matches: list, rhythm_keys, params: StemFindParams, view: bool = False) -> list:
    """`matches` (accepted with `params.landmark_params(view=view)`) less those of rhythm stems
    that only the long rule let through. `rhythm_keys(keys)` says which of `keys` are rhythm
    stems; it is asked only about such matches (none, usually)."""
    bar = params.view_min_score if view else params.landmark_min_score
    below = {m.key for m in matches if m.score < bar}
    rhythm = set(rhythm_keys(below)) if below else set()
    return [m for m in matches if m.key not in rhythm or m.score >= bar]


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


def accepts(m, alignment, params: StemFindParams, rhythm=None) -> bool:
    """Does Chromaprint match `m` count, given the checks of its alignment on the stem's
    sustained partials (`alignment`) and on all its peaks (`rhythm`), each a LandmarkMatch or
    None (too few peaks to judge)?"""
    if alignment is not None and alignment.score >= params.corroborate_score:
        return True
    if rhythm is not None and rhythm.score >= params.rhythm_corroborate_score:
        return True
    if alignment is not None or rhythm is not None:
        return False  # judged, and contradicted: the score is not evidence enough for a stem
    return m.score >= params.chromaprint_min_score


def rank_stem_matches(chromaprint: list, landmarks: list, alignment: dict | None = None,
                      params: StemFindParams = StemFindParams(), view_of: dict | None = None,
                      rhythm: dict | None = None) -> list[tuple[int, dict]]:
    """(index key, evidence) per matched stem, best first. Evidence: `decided_by`
    (chromaprint | landmarks | both), `score` (the deciding matcher's), the segment in the copy
    (`query_start_s`, `duration_s`) and in the stem (`ref_start_s`), and each matcher's row
    (`alignment` and `rhythm`: the landmark checks of Chromaprint's alignment on partials and
    on all peaks, when they could be judged); a landmark row says which `view` of the copy
    matched (`merge_views`; "mix" when none given)."""
    alignment = alignment or {}
    rhythm = rhythm or {}
    view_of = view_of or {}
    lm_by_key = {m.key: m for m in landmarks}
    out: list[tuple[int, dict]] = []
    seen: set = set()
    for m in sorted(chromaprint, key=lambda m: -m.score):
        al, rh = alignment.get(m.key), rhythm.get(m.key)
        if m.key in seen or not accepts(m, al, params, rh):
            continue
        seen.add(m.key)
        row = {k: v for k, v in m.as_dict().items() if k != "key"}
        lm = lm_by_key.pop(m.key, None)
        ev = {"decided_by": "both" if lm else "chromaprint", "score": row["score"],
              "query_start_s": row["query_start_s"], "ref_start_s": row["ref_start_s"],
              "duration_s": row["duration_s"], "chromaprint": row}
        if lm:
            ev["landmarks"] = {**{k: v for k, v in lm.as_dict().items() if k != "key"}, "view": view_of.get(m.key, "mix")}
        for name, check in (("alignment", al), ("rhythm", rh)):
            if check is not None:
                ev[name] = {k: v for k, v in check.as_dict().items() if k != "key"}
        out.append((m.key, ev))
    for m in sorted(lm_by_key.values(), key=lambda m: -m.score):
        row = {**{k: v for k, v in m.as_dict().items() if k != "key"}, "view": view_of.get(m.key, "mix")}
        out.append((m.key, {"decided_by": "landmarks", "score": row["score"], "query_start_s": row["query_start_s"],
                            "ref_start_s": row["ref_start_s"], "duration_s": row["duration_s"], "landmarks": row}))
    return out
