"""Find every catalog recording present anywhere in a query, from raw Chromaprint items.

Chromaprint's own lookup (AcoustID) compares whole tracks at one offset, so it misses
excerpts, samples, mashups and any speed change. This matcher works on the whole query:

1. **Candidates**: an inverted index from item value to (recording, item offset) — see
   `fingerprint.index` — gives exact-value hits. References are indexed at several speeds and
   the query is looked up in each, once per *speed variant* of its own (the same audio
   fingerprinted as if played at another speed; see `scan`), so a track sped up by 3 % still
   produces exact hits in the pair that matches its speed.
2. **Alignment**: hits vote in a Hough space of (slope, offset): reference item ≈ slope ×
   query item + offset. Slopes a little off 1 absorb the speed left over between variants,
   which over a 30 s query drifts the alignment by more than an item.
3. **Verification**: along each candidate line, the per-item bit error rate (BER) is smoothed
   over ~2 s and the longest run below `max_ber` is the matched segment — an excerpt or a
   sample inside a longer track is judged by where it matches, not diluted by the rest.
4. **Decision**: a segment counts only if it holds `min_seconds` of *informative* items (not
   the one value Chromaprint repeats through silence or a steady tone) and enough of them are
   near-identical (≤ `near_bits` differing bits). Unrelated music in the same key can reach
   a low average BER; it does not produce runs of near-identical 32-bit items.

Plain numpy, no Django: the service layer maps keys to recordings and stores the evidence.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .index import MultiIndex
from .scan import ITEM_SECONDS, REFERENCE_SPEEDS

#: Smoothing window for the per-item bit error rate (~2 s).
BER_WINDOW = 16
#: Slopes tried around each variant (covers the speed between two variants of the grid).
SLOPES = 1.0 + np.arange(-0.006, 0.0061, 0.002)
#: Candidate lines verified per recording and variant.
TOP_LINES = 3
#: Recordings (by hit count) considered per variant; the rest had too few hits to matter.
TOP_RECORDINGS = 64
#: Other speeds kept per recording as `Match.alternatives`, and how far apart they must be.
MAX_ALTERNATIVES = 4
ALTERNATIVE_SPEED_GAP = 0.002


@dataclass(frozen=True)
class MatchParams:
    """Thresholds (settings in the product; see `clearstem.settings`)."""

    max_ber: float = 0.30
    min_seconds: float = 5.0
    near_bits: int = 4
    min_near_fraction: float = 0.15
    min_votes: int = 2


@dataclass(frozen=True)
class Match:
    key: int | str  # the index's recording key
    ber: float  # mean bit error rate over the matched segment (0 identical, 0.5 unrelated)
    score: float  # 1 - 2 * ber, in [0, 1]
    query_start_s: float  # in the query's own time
    ref_start_s: float
    duration_s: float  # of the matched part of the query
    speed: float  # query speed relative to the reference (1.03 = 3 % faster)
    near_fraction: float  # share of items with <= near_bits differing bits
    votes: int  # exact hits on the winning line
    decided_by: str = "chromaprint"
    #: The same recording verified at other speeds, next best first. Over a short segment
    #: Chromaprint cannot tell speeds ~1.5 % apart (the drift stays under one 124 ms item), and
    #: a wrong speed misplaces the recording's peaks: `fusion.align_chromaprint` lets the
    #: constellation choose among these hypotheses.
    alternatives: tuple = field(default=(), compare=False, repr=False)

    def as_dict(self) -> dict:
        return {
            "key": self.key, "score": round(self.score, 4), "ber": round(self.ber, 4),
            "query_start_s": round(self.query_start_s, 2), "ref_start_s": round(self.ref_start_s, 2),
            "duration_s": round(self.duration_s, 2), "speed": round(self.speed, 4),
            "near_fraction": round(self.near_fraction, 3), "votes": self.votes, "decided_by": self.decided_by,
        }


@dataclass(frozen=True)
class Candidate:
    """A verified line that did not pass the decision, kept for the audit evidence."""

    key: int | str
    ber: float
    duration_s: float
    near_fraction: float
    votes: int
    speed: float

    def as_dict(self) -> dict:
        return {"key": self.key, "ber": round(self.ber, 4), "duration_s": round(self.duration_s, 2),
                "near_fraction": round(self.near_fraction, 3), "votes": self.votes, "speed": round(self.speed, 4)}


def identify(index, variants: list[tuple[float, np.ndarray]], params: MatchParams = MatchParams(),
             candidates: list | None = None) -> list[Match]:
    """Every recording of `index` found in the query, best first (one index at the references'
    own speed; see `identify_speeds`)."""
    return identify_speeds([(1.0, index)], variants, params, candidates)


def identify_speeds(indexes: list[tuple[float, object]], variants: list[tuple[float, np.ndarray]],
                    params: MatchParams = MatchParams(), candidates: list | None = None) -> list[Match]:
    """Every recording found in the query, best first, over every (reference speed, query
    variant) pair.

    `indexes` are (speed, index) pairs: the references fingerprinted as if played `speed` times
    as fast (1.0 = as registered). `variants` are (factor, items) pairs: the query fingerprinted
    as if it were played at 1/factor of its speed, so factor 1.03 undoes a 3 % speed-up. A pair
    finds queries sped up by about speed × factor (± the slopes), so a few query variants times a
    few reference speeds cover the grid the product of the two spans (see `fingerprint.scan`).
    Each index is anything with `lookup(values) -> (keys, query_idx, ref_off)` and
    `items(key) -> np.ndarray`. Rejected-but-verified candidates are appended to `candidates`.
    """
    min_items = max(int(round(params.min_seconds / ITEM_SECONDS)), BER_WINDOW)
    found: dict = {}
    for factor, items in variants:
        items = np.asarray(items, dtype=np.uint32)
        if items.size < min_items:
            continue
        informative = _informative(items)
        positions = np.flatnonzero(informative)
        for ref_speed, index in indexes:
            keys, q_idx, r_off = index.lookup(items[positions])
            q_idx = positions[q_idx]
            for key, q, r in _candidates(keys, q_idx, r_off, params.min_votes):
                ref = index.items(key)
                for slope, offset, votes in _lines(q, r, params.min_votes):
                    seg = _verify(items, informative, ref, slope, offset, params.max_ber, min_items, params.near_bits)
                    if seg is None:
                        continue
                    q0, r0, n, ber, near = seg
                    # query item q lasts ITEM_SECONDS / factor of the query; reference item r
                    # lasts ITEM_SECONDS * ref_speed of the reference as registered
                    speed = factor * ref_speed * slope
                    if near < params.min_near_fraction:
                        if candidates is not None:
                            candidates.append(Candidate(key, ber, n * ITEM_SECONDS / factor, near, votes, speed))
                        continue
                    m = Match(key=key, ber=ber, score=max(0.0, 1 - 2 * ber),
                              query_start_s=q0 * ITEM_SECONDS / factor, ref_start_s=r0 * ITEM_SECONDS * ref_speed,
                              duration_s=n * ITEM_SECONDS / factor, speed=speed, near_fraction=near, votes=votes)
                    found.setdefault(key, []).append(m)
    best = []
    for matches in found.values():
        top, *rest = sorted(matches, key=lambda m: -_rank(m))
        alternatives: list[Match] = []
        for m in rest:
            if len(alternatives) < MAX_ALTERNATIVES and all(
                    abs(m.speed - h.speed) > ALTERNATIVE_SPEED_GAP for h in (top, *alternatives)):
                alternatives.append(m)
        best.append(replace(top, alternatives=tuple(alternatives)))
    return sorted(best, key=lambda m: (-_rank(m), str(m.key)))


def speed_indexes(scans: dict) -> list[tuple[float, MultiIndex]]:
    """(speed, in-memory index) at 1.0 and every reference speed, from reference scans made with
    `reference_speeds=REFERENCE_SPEEDS` (key -> AudioScan): the catalog as the product keeps it
    on disk (`fingerprint.services.sync_speed_indexes`), for benches and tests."""
    out = [(1.0, MultiIndex.build([(k, s.fingerprint) for k, s in scans.items()]))]
    return out + [(sp, MultiIndex.build([(k, dict(s.speeds)[sp]) for k, s in scans.items()])) for sp in REFERENCE_SPEEDS]


def _informative(items: np.ndarray) -> np.ndarray:
    """Items that carry identity: Chromaprint repeats one value through silence, dither or a
    steady tone, and two recordings that both fall silent would otherwise "match" there."""
    return np.r_[items.size > 0, items[1:] != items[:-1]] if items.size else np.zeros(0, bool)


def _candidates(keys, q_idx, r_off, min_votes: int):
    """(key, query positions, reference offsets) of recordings worth a Hough search: those with
    at least `min_votes` hits on one diagonal band (8 items wide, two staggered binnings so a
    line on a band edge is not split). At 100k recordings most hits are chance collisions
    spread over many recordings; this drops them in one vectorised pass."""
    if keys.size < min_votes:
        return
    order = np.lexsort((q_idx, keys))
    keys, q_idx, r_off = keys[order], q_idx[order], r_off[order]
    diag = r_off - q_idx
    strength: dict = {}
    for shift in (0, 4):
        band = np.floor_divide(diag + shift, 8)
        sub = np.lexsort((band, keys))
        k, b = keys[sub], band[sub]
        start = np.r_[True, (k[1:] != k[:-1]) | (b[1:] != b[:-1])]
        counts = np.diff(np.r_[np.flatnonzero(start), k.size])
        for key, c in zip(k[start][counts >= min_votes].tolist(), counts[counts >= min_votes].tolist()):
            strength[key] = max(strength.get(key, 0), c)
    for key in sorted(strength, key=lambda k: -strength[k])[:TOP_RECORDINGS]:
        lo, hi = np.searchsorted(keys, key, "left"), np.searchsorted(keys, key, "right")
        yield key, q_idx[lo:hi], r_off[lo:hi]


def _rank(m: Match) -> float:
    return m.duration_s * m.score * (0.5 + m.near_fraction)


def _lines(q: np.ndarray, r: np.ndarray, min_votes: int):
    """The best (slope, offset, votes) lines through the hits (q, r), most votes first."""
    offsets = np.rint(r[None, :] - SLOPES[:, None] * q[None, :]).astype(np.int64)  # (slopes, hits)
    span = int(offsets.max() - offsets.min()) + 1
    code = np.arange(SLOPES.size)[:, None] * span + (offsets - offsets.min())
    vals, votes = np.unique(code, return_counts=True)
    keep = votes >= min_votes
    vals, votes = vals[keep], votes[keep]
    centre = SLOPES.size // 2
    s_idx = vals // span
    # most votes first; among equals the slope nearest 1
    order = np.lexsort((np.abs(s_idx - centre), -votes))
    out, seen = [], []
    for j in order:
        offset = int(vals[j] % span + offsets.min())
        # one line per offset neighbourhood: the same alignment seen at adjacent slopes
        if any(abs(offset - o) <= 2 for o in seen):
            continue
        seen.append(offset)
        out.append((float(SLOPES[s_idx[j]]), offset, int(votes[j])))
        if len(out) == TOP_LINES:
            break
    return out


def _verify(query, informative, ref, slope, offset, max_ber, min_items, near_bits):
    """Longest run along r = slope*q + offset whose smoothed BER <= max_ber, or None.

    Returns (query start, reference start, length in query items, mean BER, near fraction).
    Only informative query items count as evidence (see `_informative`): a run needs
    `min_items` of them, and the near-identical share is taken over them.
    """
    q = np.arange(query.size)
    r = np.rint(slope * q + offset).astype(np.int64)
    ok = (r >= 0) & (r < ref.size)
    if ok.sum() < min_items:
        return None
    q, r = q[ok], r[ok]
    bits = np.bitwise_count(query[q] ^ ref[r])
    errors = bits.astype(np.float32) / 32
    kernel = np.ones(BER_WINDOW, np.float32) / BER_WINDOW
    smooth = np.convolve(errors, kernel, mode="same")
    good = smooth <= max_ber
    if not good.any():
        return None
    padded = np.concatenate([[False], good, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    best = None
    for a, b in zip(starts.tolist(), ends.tolist()):
        info = informative[q[a:b]]
        n_info = int(info.sum())
        if n_info < min_items:
            continue
        if best is None or n_info > best[0]:
            best = (n_info, a, b, info)
    if best is None:
        return None
    _, a, b, info = best
    ber = float(errors[a:b][info].mean())
    near = float((bits[a:b][info] <= near_bits).mean())
    return int(q[a]), int(r[a]), b - a, ber, near
