"""Decision fusion: which recordings are present, which are only suspected, and on whose word.

Two fingerprints judge every query (issue 17). Chromaprint (`fingerprint.matcher`) is precise on
single songs and covers speed changes of ±3 %; spectral-peak landmarks (`fingerprint.landmarks`)
find songs in mixtures, including one 12 dB under another, but only at the original speed.

- A recording is **present** when either verifies it with enough evidence: `decided_by` is
  `chromaprint`, `landmarks` or `both`, and the row keeps the evidence of each.
- Evidence that is plausible but below the acceptance threshold makes the recording a
  **suspect**: the platform sends such a job to review instead of letting the ownership
  statement through (a producer could otherwise bury a catalog song under other music and tick
  the box). A suspect is never also present.
- **Secondary matches clear the same bar as primary ones**: every recording is judged on its own
  evidence, never relative to the best one in the query.
- Optionally (`confirm_below` > 0), a weak Chromaprint match at the original speed that the
  landmarks — which could have seen it — do not corroborate is demoted to a suspect: at the
  original speed the landmark verification measures its chance rate, Chromaprint's BER does not.

Keys are the indexes' recording keys (ReferenceFingerprint ids in the product); plain Python,
no Django.
"""
from __future__ import annotations

from dataclasses import dataclass

from .landmarks import LandmarkMatch
from .matcher import Candidate, Match, MatchParams


@dataclass(frozen=True)
class FusionParams:
    #: Landmark candidates at or above this score (and with min_votes aligned hashes) are suspects.
    landmark_review_score: float = 0.30
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
    #: Chromaprint matches below this score at the original speed need landmark corroboration
    #: (0 = off). See the module docstring.
    confirm_below: float = 0.0
    #: |speed - 1| under which landmarks can see what Chromaprint saw.
    same_speed: float = 0.006


@dataclass
class Verdict:
    """Per recording key: `present` rows and `suspects` rows (evidence dicts, best first)."""

    present: dict
    suspects: dict


def fuse(cp_matches: list[Match], cp_candidates: list[Candidate], lm_matches: list[LandmarkMatch],
         lm_rejected: list[LandmarkMatch], *, landmarks_ran: bool, cp_params: MatchParams,
         lm_min_score: float, params: FusionParams = FusionParams()) -> Verdict:
    lm_best = {m.key: m for m in lm_matches}
    lm_weak = {}
    for m in lm_rejected:
        if m.key not in lm_weak or m.score > lm_weak[m.key].score:
            lm_weak[m.key] = m
    present: dict = {}
    suspects: dict = {}

    cp_best: dict = {}
    for m in cp_matches:
        if m.key not in cp_best or m.score > cp_best[m.key].score:
            cp_best[m.key] = m
    for key, m in cp_best.items():
        lm = lm_best.get(key)
        weak = lm_weak.get(key)
        uncorroborated = (
            params.confirm_below > 0 and landmarks_ran and lm is None and m.score < params.confirm_below
            and abs(m.speed - 1.0) < params.same_speed
            and (weak is None or weak.score < params.landmark_review_score)
        )
        if uncorroborated:
            suspects[key] = _row("chromaprint", m.score, _cp_where(m), chromaprint=_cp(m), landmarks=_lm(weak),
                                 reason=f"chromaprint: {m.duration_s:.1f} s at score {m.score:.2f} (BER "
                                        f"{m.ber:.3f}) not corroborated by landmarks at the same speed; "
                                        f"accepted alone from {params.confirm_below:.2f}")
            continue
        decided_by = "both" if lm is not None else "chromaprint"
        present[key] = _row(decided_by, max(m.score, lm.score if lm else 0.0), _cp_where(m), chromaprint=_cp(m),
                            landmarks=_lm(lm or weak))
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
                                        f"(acceptance {lm_min_score:.2f})")
    best_cand: dict = {}
    for c in cp_candidates:
        if c.key not in best_cand or c.ber < best_cand[c.key].ber:
            best_cand[c.key] = c
    for key, c in best_cand.items():
        if key in present or key in suspects:
            continue
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
                   suspects=dict(sorted(suspects.items(), key=lambda kv: -kv[1]["score"])))


def _row(decided_by: str, score: float, where: dict, *, chromaprint, landmarks, reason: str | None = None) -> dict:
    row = {"decided_by": decided_by, "score": round(float(score), 4), **where,
           "chromaprint": chromaprint, "landmarks": landmarks}
    if reason:
        row["reason"] = reason
    return row


def _cp(m: Match | None) -> dict | None:
    if m is None:
        return None
    d = m.as_dict()
    d.pop("key")
    d.pop("decided_by")
    return d


def _lm(m: LandmarkMatch | None) -> dict | None:
    if m is None:
        return None
    d = m.as_dict()
    d.pop("key")
    d.pop("decided_by")
    return d


def _cp_where(m: Match) -> dict:
    return {"query_start_s": round(m.query_start_s, 2), "ref_start_s": round(m.ref_start_s, 2),
            "duration_s": round(m.duration_s, 2), "speed": round(m.speed, 4), "ber": round(m.ber, 4),
            "near_fraction": round(m.near_fraction, 3), "votes": m.votes}


def _lm_where(m: LandmarkMatch) -> dict:
    return {"query_start_s": round(m.query_start_s, 2), "ref_start_s": round(m.ref_start_s, 2),
            "duration_s": round(m.duration_s, 2), "speed": 1.0, "votes": m.votes}
