"""Spectral-peak landmarks (Wang's Shazam / audfprint) for identification in mixtures.

EXPERIMENTAL DRAFT (issue 17, slice 1, in progress): peak picking, pair hashing, an in-memory
index and offset candidates, under measurement on bench/mixtures.py. Nothing in the product
uses it yet: verification thresholds, the persisted index, decision fusion with Chromaprint
and the review state are still to come. Speed changes stay Chromaprint's job."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter, maximum_filter1d, minimum_filter1d, uniform_filter1d

RATE = 11025
N_FFT = 512
N_BINS = 256
Q = 64.0
FLOOR = -1e6


@dataclass(frozen=True)
class ExtractParams:
    hop: int = 128
    peak_dt: int = 8
    peak_df: int = 4
    bg_df: int = 12
    bg_dt: int = 16
    contrast_db: float = 22.0
    range_db: float = 60.0
    range_dt: int = 172
    max_per_frame: int = 0
    persist: int = 0  # tonal: within persist_db for the next `persist` frames (bins f±1); 0 = off
    persist_db: float = 10.0
    tonal_frames: int = 7  # flag (not filter): peaks sustained this long are tonal
    tonal_db: float = 10.0
    # pairing
    pair_dt_min: int = 1
    pair_dt_max: int = 63
    pair_df: int = 63
    fanout: int = 8
    f_bits: int = 8
    df_bits: int = 7
    dt_bits: int = 6
    # query presence map
    map_df: int = 2
    map_dt: int = 0
    map_contrast_db: float = 0.0
    map_range_db: float = 50.0


DEFAULT = ExtractParams()
CHUNK = 512


class LandmarkExtractor:
    def __init__(self, params: ExtractParams = DEFAULT, want_map: bool = True):
        self.p = params
        self.want_map = want_map
        self._margin = max(params.peak_dt, params.bg_dt, params.range_dt, params.tonal_frames + 2) + 1
        self._window = np.hanning(N_FFT + 2)[1:-1].astype(np.float32)
        self._pending = np.empty(0, np.float32)
        self._spec = np.empty((0, N_BINS), np.float32)
        self._spec0 = 0
        self._n_frames = 0
        self._next_chunk = 0
        self._peak_t: list[np.ndarray] = []
        self._peak_f: list[np.ndarray] = []
        self._map: list[np.ndarray] = []
        self._tonal: list[np.ndarray] = []
        self._pt = np.empty(0, np.int64)
        self._pf = np.empty(0, np.int64)
        self._hashes: list[np.ndarray] = []
        self._times: list[np.ndarray] = []
        self._finished = False

    def feed(self, pcm: np.ndarray) -> None:
        x = np.asarray(pcm)
        x = x.astype(np.float32) if x.dtype == np.int16 else (np.asarray(x, np.float32) * 32768)
        self._pending = np.concatenate([self._pending, x.reshape(-1)])
        hop = self.p.hop
        n = (self._pending.size - N_FFT) // hop + 1 if self._pending.size >= N_FFT else 0
        if n <= 0:
            return
        frames = np.lib.stride_tricks.sliding_window_view(self._pending[: (n - 1) * hop + N_FFT], N_FFT)[::hop]
        self._add_frames(frames)
        self._pending = self._pending[n * hop:]
        self._pick(final=False)

    def _add_frames(self, frames: np.ndarray) -> None:
        mag = np.abs(np.fft.rfft(frames * self._window, axis=1))[:, 1:N_BINS + 1]
        db = np.rint(20 * np.log10(mag + 1.0) * Q).astype(np.float32)
        self._spec = np.concatenate([self._spec, db]) if self._spec.size else db
        self._n_frames += frames.shape[0]

    def finish(self):
        if not self._finished:
            if self._pending.size:
                frame = np.zeros(N_FFT, np.float32)
                frame[: self._pending.size] = self._pending
                self._add_frames(frame[None])
                self._pending = np.empty(0, np.float32)
            self._pick(final=True)
            self._finished = True
        h = np.concatenate(self._hashes) if self._hashes else np.empty(0, np.uint32)
        t = np.concatenate(self._times) if self._times else np.empty(0, np.uint32)
        return h, t

    def peaks(self):
        t = np.concatenate(self._peak_t) if self._peak_t else np.empty(0, np.int64)
        f = np.concatenate(self._peak_f) if self._peak_f else np.empty(0, np.int64)
        return t, f

    def tonal(self):
        return np.concatenate(self._tonal) if self._tonal else np.empty(0, bool)

    def peak_map(self) -> np.ndarray:
        """Packed bits, one row of 32 bytes per frame."""
        return np.concatenate(self._map) if self._map else np.zeros((0, N_BINS // 8), np.uint8)

    def _pick(self, final: bool) -> None:
        m = self._margin
        while True:
            c0 = self._next_chunk
            c1 = c0 + CHUNK
            if not final and self._n_frames < c1 + m:
                break
            c1 = min(c1, self._n_frames)
            if c1 <= c0:
                break
            lo = max(c0 - m, self._spec0)
            hi = min(c1 + m, self._n_frames)
            block = self._spec[lo - self._spec0: hi - self._spec0]
            block = np.pad(block, ((m - (c0 - lo), m - (hi - c1)), (0, 0)), constant_values=FLOOR)
            t, f, pmap = self._peaks_in(block, m, c1 - c0)
            self._peak_t.append(t + c0)
            self._peak_f.append(f)
            self._tonal.append(self._last_tonal)
            if pmap is not None:
                self._map.append(pmap)
            self._next_chunk = c1
            keep_from = max(self._next_chunk - m, 0)
            if keep_from > self._spec0:
                self._spec = self._spec[keep_from - self._spec0:]
                self._spec0 = keep_from
            self._pair(t + c0, f, final=False)
        if final:
            self._pair(np.empty(0, np.int64), np.empty(0, np.int64), final=True)

    def _peaks_in(self, s: np.ndarray, m: int, n: int):
        p = self.p
        inner = slice(m, m + n)
        si = s[inner]
        valid = s > FLOOR / 2
        fmax = s.max(axis=1)
        rng_max = maximum_filter1d(fmax, 2 * p.range_dt + 1, mode="nearest")[inner]
        local = maximum_filter(s, size=(2 * p.peak_dt + 1, 2 * p.peak_df + 1), mode="nearest")
        cand = si >= local[inner]
        sv = np.where(valid, s, 0.0).astype(np.float64)
        bg = uniform_filter1d(uniform_filter1d(sv, 2 * p.bg_df + 1, axis=1, mode="nearest"),
                              2 * p.bg_dt + 1, axis=0, mode="constant")
        cnt = uniform_filter1d(valid.astype(np.float64), 2 * p.bg_dt + 1, axis=0, mode="constant")
        bgm = bg[inner] / np.maximum(cnt[inner], 1e-9)
        cand &= si >= bgm + p.contrast_db * Q
        cand &= si >= (rng_max - p.range_db * Q)[:, None]
        cand &= valid[inner]
        if p.persist:
            k = p.persist | 1
            mf = maximum_filter1d(s, 3, axis=1, mode="nearest")
            mm = minimum_filter1d(mf, k, axis=0, mode="nearest")
            c = 1 + k // 2
            fwd = mm[m + c: m + c + n]
            cand &= fwd >= si - p.persist_db * Q
        t, f = np.nonzero(cand)
        k = p.tonal_frames | 1
        mf = maximum_filter1d(s, 3, axis=1, mode="nearest")
        mm = minimum_filter1d(mf, k, axis=0, mode="nearest")
        c = 1 + k // 2
        fwd = mm[m + c: m + c + n]
        self._last_tonal = fwd[t, f] >= si[t, f] - p.tonal_db * Q
        pmap = None
        if self.want_map:
            if p.map_dt:
                loc = si >= maximum_filter(s, size=(2 * p.map_dt + 1, 2 * p.map_df + 1), mode="nearest")[inner]
            else:
                loc = si >= maximum_filter1d(si, 2 * p.map_df + 1, axis=1, mode="nearest")
            if p.map_contrast_db:
                loc &= si >= bgm + p.map_contrast_db * Q
            loc &= si > (rng_max - p.map_range_db * Q)[:, None]
            loc &= valid[inner]
            pmap = np.packbits(loc, axis=1)
        return t.astype(np.int64), f.astype(np.int64), pmap

    def _pair(self, t, f, final: bool) -> None:
        p = self.p
        pt = np.concatenate([self._pt, t])
        pf = np.concatenate([self._pf, f])
        if pt.size == 0:
            return
        n_anchor = pt.size if final else int(np.searchsorted(pt, self._next_chunk - p.pair_dt_max, side="left"))
        if n_anchor > 0:
            h, at = pair_hashes(pt, pf, n_anchor, p)
            self._hashes.append(h)
            self._times.append(at)
        self._pt = pt[n_anchor:]
        self._pf = pf[n_anchor:]


def pair_hashes(pt, pf, n_anchor, p: ExtractParams):
    lo = np.searchsorted(pt, pt[:n_anchor] + p.pair_dt_min, side="left")
    hi = np.searchsorted(pt, pt[:n_anchor] + p.pair_dt_max, side="right")
    counts = hi - lo
    a = np.repeat(np.arange(n_anchor), counts)
    b = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(a.size)
    df = pf[b] - pf[a]
    ok = np.abs(df) <= p.pair_df
    a, b, df = a[ok], b[ok], df[ok]
    if p.fanout:
        start = np.r_[0, np.flatnonzero(np.diff(a)) + 1] if a.size else np.empty(0, np.int64)
        rank = np.arange(a.size) - np.repeat(start, np.diff(np.r_[start, a.size]))
        keep = rank < p.fanout
        a, b, df = a[keep], b[keep], df[keep]
    dt = pt[b] - pt[a]
    h = ((pf[a].astype(np.uint32) & ((1 << p.f_bits) - 1)) << (p.df_bits + p.dt_bits)) \
        | (((df + p.pair_df).astype(np.uint32) & ((1 << p.df_bits) - 1)) << p.dt_bits) \
        | (dt.astype(np.uint32) & ((1 << p.dt_bits) - 1))
    return h.astype(np.uint32), pt[a].astype(np.uint32)


def landmarks(pcm, params: ExtractParams = DEFAULT):
    ex = LandmarkExtractor(params, want_map=False)
    ex.feed(pcm)
    return ex.finish()


class LandmarkIndex:
    MAX_POSTINGS = 5000

    def __init__(self, values, doc, time, keys):
        self.values, self.doc, self.time, self.keys = values, doc, time, keys

    @classmethod
    def build(cls, refs):
        keys = [k for k, _, _ in refs]
        vals = [np.asarray(h, np.uint32) for _, h, _ in refs]
        times = [np.asarray(t, np.uint32) for _, _, t in refs]
        doc = np.concatenate([np.full(v.size, i, np.uint32) for i, v in enumerate(vals)])
        values = np.concatenate(vals)
        time = np.concatenate(times)
        order = np.argsort(values, kind="stable")
        return cls(values[order], doc[order], time[order], keys)

    def lookup(self, hashes):
        lo = np.searchsorted(self.values, hashes, side="left")
        hi = np.searchsorted(self.values, hashes, side="right")
        counts = hi - lo
        keep = (counts > 0) & (counts <= self.MAX_POSTINGS)
        counts = counts[keep]
        q = np.repeat(np.flatnonzero(keep), counts)
        first = np.repeat(lo[keep] - np.cumsum(counts) + counts, counts)
        post = first + np.arange(q.size)
        return self.doc[post].astype(np.int64), q, self.time[post].astype(np.int64)


def offset_candidates(lookup, q_hashes, q_times, tol=1, min_votes=4, top=32):
    """[(doc, offset, votes, aligned query times, doc hits, bg per window)] best first."""
    doc, qi, rt = lookup(q_hashes)
    if doc.size == 0:
        return []
    qt = np.asarray(q_times, np.int64)[qi]
    off = rt - qt
    omin = off.min()
    code = doc * (1 << 32) + (off - omin)
    u, c = np.unique(code, return_counts=True)
    tot = c.astype(np.int64).copy()
    for d in range(1, tol + 1):
        for s in (-d, d):
            j = np.clip(np.searchsorted(u, u + s), 0, u.size - 1)
            tot += np.where(u[j] == u + s, c[j], 0)
    udoc = u >> 32
    order = np.lexsort((-tot, udoc))
    first = np.r_[True, udoc[order][1:] != udoc[order][:-1]]
    best = order[first]
    best = best[tot[best] >= min_votes]
    best = best[np.argsort(-tot[best], kind="stable")][:top]
    hits = np.bincount(doc)
    out = []
    for j in best:
        d = int(udoc[j])
        o = int(u[j] & 0xFFFFFFFF) + int(omin)
        sel = (doc == d) & (np.abs(off - o) <= tol)
        out.append((d, o, int(tot[j]), np.unique(qt[sel]), int(hits[d])))
    return out
