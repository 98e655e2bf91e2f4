"""Find every catalog recording present anywhere in a query fingerprint.

Candidate search: an inverted index from raw Chromaprint item values to (recording, item
offset), kept as sorted numpy arrays; hits vote for an alignment (reference offset minus query
offset). Verification: for the best alignments, the per-item bit error rate (BER) is smoothed
over a few seconds and the longest run below the threshold is the matched segment — so an
excerpt, or a sample inside a longer track, is found by where it matches, not diluted by the
rest of the file.

This is the foundation's matcher: exact-value candidates, in memory, rebuilt per process. The
identification issue adds masked/landmark candidates, speed robustness and a persistent index.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scan import ITEM_SECONDS

#: Values that occur more often than this across the catalog carry no identity (silence, tones).
MAX_POSTINGS_PER_VALUE = 2000
#: Alignments verified per recording.
TOP_ALIGNMENTS = 3
#: Smoothing window for the per-item bit error rate (~2 s).
BER_WINDOW = 16


@dataclass(frozen=True)
class Match:
    key: str  # the caller's recording key
    ber: float  # bit error rate over the matched segment (0 = identical, 0.5 = unrelated)
    score: float  # 1 - 2 * ber, in [0, 1]
    query_start_s: float
    ref_start_s: float
    duration_s: float
    hits: int

    def as_dict(self) -> dict:
        return {
            "key": self.key, "score": round(self.score, 4), "ber": round(self.ber, 4),
            "query_start_s": round(self.query_start_s, 2), "ref_start_s": round(self.ref_start_s, 2),
            "duration_s": round(self.duration_s, 2), "hits": self.hits,
        }


class ReferenceIndex:
    """An in-memory inverted index over reference fingerprints."""

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._items: list[np.ndarray] = []
        self._values = np.empty(0, np.uint32)
        self._rec = np.empty(0, np.int32)
        self._off = np.empty(0, np.int32)

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def build(cls, references: list[tuple[str, np.ndarray]]) -> "ReferenceIndex":
        index = cls()
        values, recs, offs = [], [], []
        for i, (key, items) in enumerate(references):
            items = np.asarray(items, dtype=np.uint32)
            index._keys.append(key)
            index._items.append(items)
            values.append(items)
            recs.append(np.full(items.size, i, np.int32))
            offs.append(np.arange(items.size, dtype=np.int32))
        if values:
            v = np.concatenate(values)
            order = np.argsort(v, kind="stable")
            index._values, index._rec, index._off = v[order], np.concatenate(recs)[order], np.concatenate(offs)[order]
        return index

    def query(self, items: np.ndarray, max_ber: float = 0.30, min_seconds: float = 5.0) -> list[Match]:
        items = np.asarray(items, dtype=np.uint32)
        if items.size == 0 or self._values.size == 0:
            return []
        lo = np.searchsorted(self._values, items, side="left")
        hi = np.searchsorted(self._values, items, side="right")
        counts = hi - lo
        keep = (counts > 0) & (counts <= MAX_POSTINGS_PER_VALUE)
        if not keep.any():
            return []
        q_idx = np.repeat(np.nonzero(keep)[0], counts[keep])
        starts = np.repeat(lo[keep], counts[keep])
        within = np.arange(q_idx.size) - np.repeat(np.cumsum(counts[keep]) - counts[keep], counts[keep])
        posting = starts + within
        rec = self._rec[posting]
        delta = self._off[posting] - q_idx.astype(np.int32)

        min_items = max(int(round(min_seconds / ITEM_SECONDS)), BER_WINDOW)
        matches = []
        for r in np.unique(rec):
            d = delta[rec == r]
            vals, votes = np.unique(d, return_counts=True)
            best = None
            for j in np.argsort(votes)[::-1][:TOP_ALIGNMENTS]:
                if votes[j] < 2:
                    break
                seg = self._verify(items, self._items[r], int(vals[j]), max_ber, min_items)
                if seg and (best is None or seg[2] > best[2] or (seg[2] == best[2] and seg[3] < best[3])):
                    best = (*seg, int(votes[j]))
            if best:
                q0, r0, n, ber, hits = best
                matches.append(Match(
                    key=self._keys[r], ber=ber, score=max(0.0, 1 - 2 * ber),
                    query_start_s=q0 * ITEM_SECONDS, ref_start_s=r0 * ITEM_SECONDS,
                    duration_s=n * ITEM_SECONDS, hits=hits,
                ))
        return sorted(matches, key=lambda m: (-m.duration_s * m.score, m.key))

    @staticmethod
    def _verify(query: np.ndarray, ref: np.ndarray, delta: int, max_ber: float, min_items: int):
        """Longest run of aligned items whose smoothed BER is below max_ber, or None."""
        q0 = max(0, -delta)
        q1 = min(query.size, ref.size - delta)
        if q1 - q0 < min_items:
            return None
        errors = np.bitwise_count(query[q0:q1] ^ ref[q0 + delta:q1 + delta]).astype(np.float32) / 32
        kernel = np.ones(BER_WINDOW, np.float32) / BER_WINDOW
        smooth = np.convolve(errors, kernel, mode="same")
        good = smooth <= max_ber
        if not good.any():
            return None
        # longest run of True
        padded = np.concatenate([[False], good, [False]])
        edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
        starts, ends = edges[::2], edges[1::2]
        k = int(np.argmax(ends - starts))
        a, b = int(starts[k]), int(ends[k])
        if b - a < min_items:
            return None
        ber = float(errors[a:b].mean())
        return q0 + a, q0 + a + delta, b - a, ber
