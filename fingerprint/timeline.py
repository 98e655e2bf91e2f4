"""Recordings laid end to end on one uint32 timeline: a posting is a single position on it.

Both inverted indexes (Chromaprint's items, the landmark hashes) store each posting as one
uint32, its position on the segment's timeline, where recording i occupies [starts[i],
starts[i + 1]). A recording number and an offset as two arrays cost twice the bytes per
posting (8 instead of 4 for the landmarks) and two page reads per hit: at 100k recordings the
landmark index alone then filled a 23.5 GiB machine's page cache (bench.landmark_scale).
Finding a position's recording takes a table per block of positions — numpy's binary search
of 75k hits in the starts took 7.6 ms at 10k recordings, the table ~1 ms.
"""
from __future__ import annotations

import numpy as np

#: Positions a timeline holds (uint32 postings and starts).
MAX_POSITIONS = (1 << 32) - 1


def starts_of(spans) -> np.ndarray:
    """Where each recording's span begins, and the end (int64, len(spans) + 1)."""
    return np.concatenate([np.zeros(1, np.int64), np.cumsum(np.asarray(spans, np.int64))])


def cut(spans, capacity: int = MAX_POSITIONS) -> list[slice]:
    """Consecutive groups of recordings (slices of `spans`) whose spans fit `capacity` each;
    a recording longer than `capacity` alone is refused (ValueError)."""
    out, first, used = [], 0, 0
    for i, span in enumerate(int(s) for s in spans):
        if span > capacity:
            raise ValueError(f"a recording spans {span} positions, more than a segment holds ({capacity})")
        if used + span > capacity:
            out.append(slice(first, i))
            first, used = i, 0
        used += span
    return out + [slice(first, len(spans))]


class Timeline:
    """Which recording a timeline position is in: the one starting at or before its block's
    first position (a table of 4 bytes per 2 ** block_bits positions), then a step on for each
    recording that starts later inside the block (most positions need none)."""

    def __init__(self, starts: np.ndarray, block_bits: int):
        starts = np.asarray(starts, np.int64)
        if starts[-1] > MAX_POSITIONS:
            raise ValueError(f"{starts[-1]} positions do not fit one timeline ({MAX_POSITIONS})")
        self.block_bits = block_bits
        self.starts = starts.astype(np.uint32)
        blocks = np.arange(0, int(starts[-1]), 1 << block_bits, dtype=np.int64)
        self.block_first = (np.searchsorted(starts, blocks, side="right") - 1).astype(np.int32)

    def locate(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(recording numbers, offsets within them), both int64, of uint32 positions that each
        lie inside some recording's span."""
        pos = np.asarray(pos, np.uint32)
        doc = self.block_first[pos >> self.block_bits]
        later = np.flatnonzero(self.starts[doc + 1] <= pos)
        while later.size:
            doc[later] += 1
            later = later[self.starts[doc[later] + 1] <= pos[later]]
        return doc.astype(np.int64), (pos - self.starts[doc]).astype(np.int64)
