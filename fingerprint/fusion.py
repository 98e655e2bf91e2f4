"""Decision fusion: which recordings are present, which are only suspected, and on whose word.

Two fingerprints judge every query (issue 17). Chromaprint (`fingerprint.matcher`) is precise on
single songs and covers speed changes of ±3 %; spectral-peak landmarks (`fingerprint.landmarks`)
find songs in mixtures, including one 12 dB under another, but only at the original speed.

- A recording is **present** when either verifies it with enough evidence: `decided_by` is
  `chromaprint`, `landmarks` or `both`, and the row keeps the evidence of each.
- Evidence that is plausible but below the acceptance threshold makes the recording a
  **suspect** (landmark candidates between the review and acceptance scores; Chromaprint
  matches the landmarks neither corroborate nor contradict; Chromaprint near misses when the
  query has no landmark print): the platform sends such a job to review instead of letting the ownership
  statement through (a producer could otherwise bury a catalog song under other music and tick
  the box). A suspect is never also present.
- **Secondary matches clear the same bar as primary ones**: every recording is judged on its own
  evidence, never relative to the best one in the query.
- **Chromaprint matches are checked on the constellation** when the query has a landmark print:
  the caller verifies each one's alignment (`landmarks.verify_alignment`: the recording's
  sustained peaks moved to Chromaprint's offset *and speed* must land on the query's spectral
  maxima well above their chance rate). A match scoring below `confirm_below` that neither the
  landmark hashes nor that check corroborate is demoted to a suspect: Chromaprint's bit error
  rate alone lets unrelated music with the same harmony and rhythm through on long queries and
  at speed variants; the check measures its own chance rate, at any speed.

Keys are the indexes' recording keys (ReferenceFingerprint ids in the product); plain Python,
no Django.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from .landmarks import LandmarkMatch, LandmarkParams, verify_alignment
from .matcher import Candidate, Match, MatchParams

_C = TypeVar("_C")
_L = TypeVar("_L")


def side_by_side(chromaprint: Callable[[], _C], landmarks: Callable[[], _L] | None) -> tuple[_C, _L | None]:
    """(chromaprint(), landmarks()), the two matchers run at once: Chromaprint's on a thread of its
    own while this thread matches the landmark print. They overlap where numpy releases the GIL;
    the Python between their numpy calls does not, so the gain is modest: 6–14 % off one after the
    other for a 15 s query at 1k–10k recordings (bench.landmark_scale --side-by-side), nothing on
    a long query whose landmark windows already use both cores. A thread per call rather than a
    pool: workers fork, and a pool made before a fork has no threads in the child. An exception
    in either is raised here, after both have stopped."""
    if landmarks is None:
        return chromaprint(), None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromaprint-match") as pool:
        cp = pool.submit(chromaprint)
        lm = landmarks()
        return cp.result(), lm


@dataclass(frozen=True)
class FusionParams:
    #: Landmark candidates at or above this score (and with min_votes aligned hashes) are suspects.
    landmark_review_score: float = 0.592  # bench.mixtures calibration split, full run: 0.5924
    #: ... and pass every other gate of an accepted landmark match: aligned hashes, distinct
    #: seconds holding them, length of the matched segment.
    landmark_min_votes: int = 4
    landmark_min_vote_seconds: int = 2
    landmark_min_seconds: float = 4.0
    #: Chromaprint candidates are suspects when their BER is within this of the acceptance BER,
    review_ber_margin: float = 0.02
    #: with this share of the acceptance's near-identical items and of its minimum length.
    review_near_share: float = 0.67
    review_length_share: float = 0.6
    #: Chromaprint matches scoring below this need the landmarks' corroboration (0 = never,
    #: above 1 = always) when it can be had; see the module docstring.
    confirm_below: float = 1.01
    #: The alignment check's score that corroborates a Chromaprint match; below `reject_below`
    #: the recording's peaks are no more there than by chance: the match is contradicted and
    #: rejected (kept as evidence), not merely unproven (a suspect).
    corroborate_score: float = 0.30
    reject_below: float = 0.15


@dataclass
class Verdict:
    """Per recording key: `present` rows and `suspects` rows (evidence dicts, best first), and
    the Chromaprint matches the landmark check contradicted (kept as evidence)."""

    present: dict
    suspects: dict
    contradicted: dict


def fuse(cp_matches: list[Match], cp_candidates: list[Candidate], lm_matches: list[LandmarkMatch],
         lm_rejected: list[LandmarkMatch], *, landmarks_ran: bool, cp_params: MatchParams,
         lm_params: LandmarkParams, params: FusionParams = FusionParams(),
         alignment: dict | None = None) -> Verdict:
    """`alignment`: key -> `landmarks.verify_alignment` of that key's best Chromaprint match
    (None where it could not be judged: no reference peaks in the segment); keys missing from it
    (references without a landmark print) keep Chromaprint's word."""
    alignment = alignment or {}
    lm_best = {m.key: m for m in lm_matches}
    lm_weak = {}
    for m in lm_rejected:
        if m.key not in lm_weak or m.score > lm_weak[m.key].score:
            lm_weak[m.key] = m
    present: dict = {}
    suspects: dict = {}
    rejected: dict = {}

    cp_best: dict = {}
    for m in cp_matches:
        if m.key not in cp_best or m.score > cp_best[m.key].score:
            cp_best[m.key] = m
    for key, m in cp_best.items():
        lm = lm_best.get(key)
        check = alignment.get(key)
        corroborated = lm is not None or (check is not None and check.score >= params.corroborate_score)
        judged = landmarks_ran and key in alignment
        if judged and not corroborated and check is not None and check.score < params.reject_below:
            rejected[key] = _row("chromaprint", m.score, _cp_where(m), chromaprint=_cp(m), landmarks=_lm(check),
                                 reason=f"chromaprint: {m.duration_s:.1f} s at score {m.score:.2f}, contradicted: "
                                        f"the recording's peaks at that alignment score {check.score:.2f} "
                                        f"(rejected below {params.reject_below:.2f})")
            continue
        if judged and not corroborated and m.score < params.confirm_below:
            got = f"{check.score:.2f}" if check is not None else "too few reference peaks to judge"
            suspects[key] = _row("chromaprint", m.score, _cp_where(m), chromaprint=_cp(m), landmarks=_lm(check),
                                 reason=f"chromaprint: {m.duration_s:.1f} s at score {m.score:.2f} (BER {m.ber:.3f}, "
                                        f"speed {m.speed:.3f}); the recording's peaks at that alignment: {got} "
                                        f"(corroboration from {params.corroborate_score:.2f})")
            continue
        decided_by = "both" if corroborated else "chromaprint"
        present[key] = _row(decided_by, max(m.score, lm.score if lm else 0.0), _cp_where(m), chromaprint=_cp(m),
                            landmarks=_lm(lm or check or lm_weak.get(key)))
    for key, lm in lm_best.items():
        if key in present or key in suspects:
            continue
        present[key] = _row("landmarks", lm.score, _lm_where(lm), chromaprint=None, landmarks=_lm(lm))

    for key, weak in lm_weak.items():
        if key in present or key in suspects:
            continue
        if (weak.score >= params.landmark_review_score and weak.votes >= params.landmark_min_votes
                and weak.vote_seconds >= params.landmark_min_vote_seconds
                and weak.duration_s >= params.landmark_min_seconds):
            suspects[key] = _row("landmarks", weak.score, _lm_where(weak), chromaprint=None, landmarks=_lm(weak),
                                 reason=f"landmarks: {weak.duration_s:.1f} s aligned at score {weak.score:.2f} "
                                        f"(acceptance {lm_params.acceptance(weak.duration_s, weak.presence):.2f})")
    best_cand: dict = {}
    for c in cp_candidates:
        if c.key not in best_cand or c.ber < best_cand[c.key].ber:
            best_cand[c.key] = c
    for key, c in best_cand.items():
        if landmarks_ran or key in present or key in suspects or key in rejected:
            continue  # with a landmark print, the landmarks' own review bar judges near misses
        if (c.ber <= cp_params.max_ber + params.review_ber_margin
                and c.near_fraction >= params.review_near_share * cp_params.min_near_fraction
                and c.duration_s >= params.review_length_share * cp_params.min_seconds):
            score = max(0.0, 1 - 2 * c.ber)
            suspects[key] = _row("chromaprint", score, {"speed": round(c.speed, 4), "duration_s": round(c.duration_s, 2)},
                                 chromaprint=c.as_dict() | {"score": round(score, 4)}, landmarks=None,
                                 reason=f"chromaprint: {c.duration_s:.1f} s at BER {c.ber:.3f}, "
                                        f"{100 * c.near_fraction:.0f} % near-identical (acceptance: BER ≤ "
                                        f"{cp_params.max_ber:.2f}, {cp_params.min_seconds:.0f} s, "
                                        f"{100 * cp_params.min_near_fraction:.0f} %)")
    order = sorted(present, key=lambda k: -present[k]["score"])
    return Verdict(present={k: present[k] for k in order},
                   suspects=dict(sorted(suspects.items(), key=lambda kv: -kv[1]["score"])),
                   contradicted=rejected)


def align_chromaprint(cp_matches: list[Match], peaks_of, query_map, params: LandmarkParams | None = None,
                      tonal_only: bool = True, good_enough: float | None = None) -> tuple[list[Match], dict]:
    """`fuse`'s Chromaprint matches and `alignment`: each recording's best Chromaprint match
    verified on the landmark constellation — and, where Chromaprint verified the recording at
    other speeds too (`Match.alternatives`: over a short segment it cannot tell speeds ~1.5 %
    apart), each of those, keeping the hypothesis whose recording peaks land best. Returns the
    chosen match per recording and key -> its check. `peaks_of(key)` gives the reference's
    packed peaks, or None when the reference has no landmark print (that key keeps its best
    match and is left out of the checks: Chromaprint's word stands). `tonal_only`: as
    `verify_alignment`'s. `good_enough`: a hypothesis checked at this score or more is kept
    without trying the rest (`fuse` passes its corroboration score: beyond it the verdict is the
    same, and a 4-minute query's checks cost 15 ms instead of 55)."""
    params = params or LandmarkParams()
    best: dict = {}
    for m in cp_matches:
        if m.key not in best or m.score > best[m.key].score:
            best[m.key] = m
    chosen, checks = [], {}
    for key, m in best.items():
        peaks = peaks_of(key)
        if peaks is None:
            chosen.append(m)
            continue
        pick, check = m, None
        for h in (m, *m.alternatives):
            c = verify_alignment(key, peaks, query_map, query_start_s=h.query_start_s, ref_start_s=h.ref_start_s,
                                 duration_s=h.duration_s, speed=h.speed, params=params, tonal_only=tonal_only)
            if c is not None and (check is None or c.score > check.score):
                pick, check = h, c
            if check is not None and good_enough is not None and check.score >= good_enough:
                break
        chosen.append(pick)
        checks[key] = check
    return chosen, checks


def check_alignments(cp_matches: list[Match], peaks_of, query_map, params: LandmarkParams | None = None,
                     tonal_only: bool = True) -> dict:
    """The checks of `align_chromaprint` alone (key -> check, or None where the segment holds
    too few reference peaks to judge)."""
    return align_chromaprint(cp_matches, peaks_of, query_map, params, tonal_only)[1]


def _row(decided_by: str, score: float, where: dict, *, chromaprint, landmarks, reason: str | None = None) -> dict:
    row = {"decided_by": decided_by, "score": round(float(score), 4), **where,
           "chromaprint": chromaprint, "landmarks": landmarks}
    if reason:  # a suspect: `source` names the fingerprint whose partial evidence it is
        row["reason"] = reason
        row["source"] = decided_by
    return row


def _cp(m: Match | None) -> dict | None:
    if m is None:
        return None
    d = m.as_dict()
    d.pop("key")
    d.pop("decided_by")
    return d


def _lm(m: LandmarkMatch | None) -> dict | None:
    """Landmark evidence; `method` says whether it came from the landmark hashes or from
    checking another matcher's alignment on the peaks (`verify_alignment`)."""
    if m is None:
        return None
    d = m.as_dict()
    d.pop("key")
    d["method"] = "alignment" if d.pop("decided_by") == "landmarks-alignment" else "hashes"
    return d


def _cp_where(m: Match) -> dict:
    return {"query_start_s": round(m.query_start_s, 2), "ref_start_s": round(m.ref_start_s, 2),
            "duration_s": round(m.duration_s, 2), "speed": round(m.speed, 4), "ber": round(m.ber, 4),
            "near_fraction": round(m.near_fraction, 3), "votes": m.votes}


def _lm_where(m: LandmarkMatch) -> dict:
    return {"query_start_s": round(m.query_start_s, 2), "ref_start_s": round(m.ref_start_s, 2),
            "duration_s": round(m.duration_s, 2), "speed": 1.0, "votes": m.votes}
