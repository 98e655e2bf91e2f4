"""Spectral-peak landmarks (Wang's Shazam paper, audfprint) to find every catalog recording in a mixture.

Chromaprint (`fingerprint.scan` / `fingerprint.matcher`) describes the whole mixture with chroma
features, so a second source changes every item. Spectral peaks survive mixing: the louder
source keeps most of its peaks, a quieter one keeps its strongest partials wherever the other
source leaves the time-frequency plane free. This module is the landmark core; Chromaprint keeps
the speed-changed cases (its speed-variant grid covers ±3 %); landmarks are for mixtures and are
not speed-invariant — a query more than ~0.5 % off speed will not align here.

Plain numpy/scipy, no Django. Input is the PCM that `fingerprint.scan` already produces
(11025 Hz mono s16), fed block by block in the same decoding pass.

**Spectrogram.** Hann window of `N_FFT` = 1024 samples (93 ms, 10.8 Hz bins), hop `HOP` = 128
samples (`FRAME_SECONDS` = 11.6 ms); bins 1..512 (10.8 Hz .. 5.5 kHz), log magnitude quantised to
1/64 dB so every windowed sum is exact and streaming gives the same landmarks as one call.
The fine frequency resolution is what separates the partials of two tonal songs: in
development runs of bench.mixtures (its quick set, not the reported test split), moving from
512 to 1024 points is what made songs 12 dB under another song findable most of the time.

**Peaks** (the landmark constellation, reference and query alike): local maxima over ±8 frames
(±93 ms) × ±8 bins (±86 Hz) that stand `contrast_db` (22 dB) above the mean level of their
neighbourhood (±24 bins × ±16 frames: an adaptive per-band threshold) and lie within 60 dB of the
loudest bin of the surrounding ±2 s. About 50–70 peaks/s on music. Each peak carries a *tonal*
flag: its partial (bins f±1) stays within 10 dB for the next 7 frames (80 ms). Drum hits are not
tonal; the flag matters for verification (below).

**Hashes.** Each anchor peak is paired with the next peaks in time (1..63 frames = 0.73 s ahead,
|Δf| ≤ 127 bins): the nearest `ref_fanout` (5) for references, `query_fanout` (10) for queries —
denser queries keep a reference pair even when the other source adds peaks between its two
peaks. Hash = f1 (9 bits) | Δf + 127 (8 bits) | Δt (6 bits): 23 bits, packed in a uint32 with the
anchor frame as its time. Finer fields (more bits) split a partial that moves one bin between
renders; coarser ones (fewer bits) multiply chance collisions at 100k recordings (the bench
reports the measured value entropy and postings per query at scale).

**Lookup.** Hash values are far from uniform: in the bench catalog the commonest 1 % of values
held 17 % of the postings a query meets, the commonest 10 % held 77 %, and a common value says
little about which recording a query is. So a lookup keeps the query's *rarest* values first,
at most `HITS_PER_HASH` hits per query hash on average, which also makes a query's matching
cost independent of the catalog's size (bench.landmark_scale). The bound is a trade: a song
buried 12 dB under another keeps mostly its strongest, low partials, whose values are common,
so a tight bound drops exactly its evidence. On bench.mixtures' *calibration* split (96
recordings; 64 buried songs, 64 equal-level overlays, 32 at −6 dB) bounds of 2 / 4 / 8 / 12 /
none found 51 / 54 / 55 / 56 / 57 of the buried songs and the same overlays, with no wrong
match at any bound; a 4-minute query's matching cost 0.21 / 0.37 / 0.43 / – / 0.98 s of CPU
(the unbounded lookup met 3.0 M hits, 8 per hash 1.3 M). In a large catalog the same bound
drops far more: at 100k derived references (bench.landmark_scale, 40 queries each) 8 / 16 / 32
hits per hash found 32.5 / 57.5 / 77.5 % of equal-level overlays and 27.5 / 42.5 / 52.5 % of
buried songs, at a p95 of 20 / 33 / 84 ms per 15 s query; on bench.mixtures' 96-track catalog 16
found nothing 8 did not (one buried song fewer, 4 more false reviews on seed 17's test split) and
cost a 4-minute MP3 ~0.15 s more on the product path. So 8 stays the default, and a large catalog
should set 16 (`CLEARSTEM_LANDMARK_HITS_PER_HASH`: still within 50 ms p95 at 100k). Shortlisting
recordings on the rare values and counting only theirs among the common ones does not recover
the rest: at 30k, 19 of the 31 true recordings missed held at most one aligned rare hash, tied
with ~20,000 other recordings.

**Query peak map.** For verification the query also keeps a bitmap of its spectral maxima
(local max over ±3 frames × ±2 bins, within 50 dB of the ±2 s maximum): 64 bytes per frame.

**Matching** (`match_landmarks`): the caller's `lookup(hashes)` returns exact hits; per
recording a histogram of (reference frame − query frame) offsets gives the best offset (±1
frame) and its aligned hashes (candidates need `min_votes`). Each candidate is then *verified*
on the constellation: the recording's tonal peaks, moved to the query's time at that offset,
must land on spectral maxima of the query (±1 frame) far more often than they do at six shifted
offsets (±1.5, 3, 4.6 s: the chance rate for this recording against this query — two pieces in
the same key and instrumentation share many peaks at any offset). The query is cut into 2 s
segments; the contiguous run of segments with the largest excess is the matched segment, and
its excess over chance, as a z-score, is the evidence: score = 1 − exp(−z / 15). A recording is
reported when score ≥ `min_score` (≥ `long_min_score` when the matched segment lasts ≥
`long_seconds` and holds ≥ `long_min_presence` of the recording's tonal peaks: see
`LandmarkParams`), its aligned hashes number ≥ `min_votes` spread over ≥
`min_vote_seconds` distinct seconds, and the matched segment lasts ≥ `min_seconds`. Only tonal
peaks count: a drum pattern at the same tempo (same kit, same loop) lines up peaks of two
unrelated songs for many seconds and would otherwise be a match; nor do peaks below 27 Hz
(`MIN_VERIFY_BIN`: DC offset, rumble and codec artefacts, not music). Every candidate recording is
judged on its own, so every recording present in a mixture is reported, not only the loudest —
with one exception: a candidate whose matched segment is a short passage inside a longer
segment of a recording already accepted (best first) is verified again on the query maxima
that recording does not explain (`_explains`): a song that quotes, or shares a cadence with,
the one playing agrees with the query only through the playing song's own peaks.
"""
from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.fft

from .timeline import MAX_POSITIONS, Timeline, cut, starts_of

RATE = 11025
N_FFT = 1024
HOP = 128
N_BINS = N_FFT // 2
#: Seconds per landmark frame (the unit of `times`).
FRAME_SECONDS = HOP / RATE
#: Log magnitudes are integers in 1/Q dB (exact sums; streaming == one call).
Q = 64
#: 20 Q log10(x) as a multiple of ln(x).
_DB_PER_LN = np.float32(20 * Q / np.log(10))
_FLOOR = -32768  # int16 1/Q dB below anything a signal gives (log of magnitude + 1 >= 0)
#: Frames per peak-picking chunk and per FFT batch (fixed, so block sizes never matter).
CHUNK = 512
FFT_BATCH = 256
MAP_BYTES = N_BINS // 8
F_BITS, DF_BITS, DT_BITS = 9, 8, 6
#: Packed reference peaks: frame << 10 | tonal << 9 | bin.
PEAK_T_SHIFT, PEAK_TONAL_BIT = 10, 1 << 9


@dataclass(frozen=True)
class ExtractParams:
    peak_dt: int = 8  # local maximum over ±peak_dt frames ...
    peak_df: int = 8  # ... and ±peak_df bins
    bg_dt: int = 16  # adaptive threshold: mean level over ±bg_dt frames ...
    bg_df: int = 24  # ... and ±bg_df bins,
    contrast_db: float = 22.0  # which a peak must exceed by this much
    range_db: float = 60.0  # and within this of the loudest bin of ±range_dt frames
    range_dt: int = 172
    tonal_frames: int = 7  # tonal: bins f±1 stay within tonal_db for this many frames
    tonal_db: float = 10.0
    pair_dt_max: int = 63  # target zone: 1..pair_dt_max frames ahead (DT_BITS)
    pair_df: int = 127  # and |Δf| <= pair_df bins (DF_BITS)
    ref_fanout: int = 5  # nearest targets per anchor in references
    query_fanout: int = 10  # and in queries
    map_dt: int = 3  # query peak map: local maximum over ±map_dt frames ...
    map_df: int = 2  # ... and ±map_df bins,
    map_range_db: float = 50.0  # within this of the loudest bin of ±range_dt frames


DEFAULT = ExtractParams()


class LandmarkExtractor:
    """Streaming landmark extraction: `feed` s16 (or float in [-1, 1]) mono PCM at 11025 Hz in
    blocks of any size, then `finish()`. Memory: a few seconds of spectrogram plus the output.

    kind="reference": hashes with `ref_fanout`, plus `peaks()` for verification.
    kind="query": hashes with `query_fanout`, plus `peak_map()` for verification.
    """

    def __init__(self, kind: str = "query", params: ExtractParams = DEFAULT):
        if kind not in ("query", "reference"):
            raise ValueError(f"kind must be 'query' or 'reference', not {kind!r}")
        self.kind = kind
        self.p = params
        self._fanout = params.ref_fanout if kind == "reference" else params.query_fanout
        self._m2 = max(params.peak_dt, params.bg_dt, params.map_dt, params.tonal_frames + 2) + 1
        self._window = np.hanning(N_FFT + 2)[1:-1].astype(np.float32)
        self._pending = np.empty(0, np.float32)
        self._frames_out = 0  # frames whose spectrum is computed
        self._spec = np.empty((0, N_BINS), np.int16)  # spectrum of frames [_spec0, _frames_out)
        self._spec0 = 0
        self._fmax = np.empty(0, np.int16)  # per-frame maximum of frames [_fmax0, _frames_out)
        self._fmax0 = 0
        self._next = 0  # first frame whose peaks are not picked yet
        self._peaks: list[np.ndarray] = []
        self._map: list[np.ndarray] = []
        self._pt = np.empty(0, np.int64)  # peaks still waiting for their pairing
        self._pf = np.empty(0, np.int64)
        self._hashes: list[np.ndarray] = []
        self._times: list[np.ndarray] = []
        self._samples = 0
        self._done = False

    # -- input ---------------------------------------------------------------------------
    def feed(self, pcm) -> None:
        if self._done:
            raise RuntimeError("feed() after finish()")
        x = np.asarray(pcm)
        x = x.astype(np.float32) if x.dtype == np.int16 else np.asarray(x, np.float32) * 32768
        x = x.reshape(-1)
        self._samples += x.size
        self._pending = np.concatenate([self._pending, x]) if self._pending.size else x.copy()
        self._spectra(final=False)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(hashes uint32, anchor frames uint32), in anchor-time order."""
        if not self._done:
            if self._samples:  # the tail: zero padding so the last samples get a frame
                self._pending = np.concatenate([self._pending, np.zeros(N_FFT - HOP, np.float32)])
            self._spectra(final=True)
            self._pick(final=True)
            self._done = True
        return _cat(self._hashes, np.uint32), _cat(self._times, np.uint32)

    @property
    def frames(self) -> int:
        return self._frames_out

    def peaks(self) -> np.ndarray:
        """The constellation (after `finish`): uint32 frame << 10 | tonal << 9 | bin."""
        return _cat(self._peaks, np.uint32)

    def peak_map(self) -> np.ndarray:
        """The query's spectral maxima (after `finish`): uint8 [frames, 64], bits MSB-first per bin."""
        return np.concatenate(self._map) if self._map else np.zeros((0, MAP_BYTES), np.uint8)

    # -- spectrum ------------------------------------------------------------------------
    def _spectra(self, final: bool) -> None:
        """Spectra of the complete frames, FFT_BATCH at a time, each batch followed by the peak
        picking it allows (so one huge `feed` keeps only seconds of spectrogram)."""
        avail = (self._pending.size - N_FFT) // HOP + 1 if self._pending.size >= N_FFT else 0
        used = 0
        while avail >= FFT_BATCH or (final and avail > 0):
            n = min(avail, FFT_BATCH)
            chunk = self._pending[used: used + (n - 1) * HOP + N_FFT]
            frames = np.lib.stride_tricks.sliding_window_view(chunk, N_FFT)[::HOP]
            # float32 FFT (scipy): 3x numpy's float64; the 1/Q dB rounding hides the difference
            mag = np.abs(scipy.fft.rfft(frames * self._window, axis=1))[:, 1:N_BINS + 1]
            # natural log scaled to dB: numpy's float32 log is vectorised, its log10 is not (4x the
            # time: a tenth of a 4-minute query's extraction); 0.03 % of cells round one 1/Q dB apart
            db = np.rint(_DB_PER_LN * np.log(mag + np.float32(1.0))).astype(np.int16)
            self._spec = np.concatenate([self._spec, db])
            self._fmax = np.concatenate([self._fmax, db.max(axis=1)])
            self._frames_out += n
            used += n * HOP
            avail -= n
            self._pick(final=False)
        self._pending = self._pending[used:].copy() if used else self._pending

    # -- peaks ---------------------------------------------------------------------------
    def _pick(self, final: bool) -> None:
        p, m2 = self.p, self._m2
        need = max(m2, p.range_dt)
        while True:
            c0 = self._next
            c1 = c0 + CHUNK
            if not final and self._frames_out < c1 + need:
                break
            c1 = min(c1, self._frames_out)
            if c1 <= c0:
                break
            lo, hi = max(c0 - m2, 0), min(c1 + m2, self._frames_out)
            block = self._spec[lo - self._spec0: hi - self._spec0]
            block = np.pad(block, ((m2 - (c0 - lo), m2 - (hi - c1)), (0, 0)), constant_values=_FLOOR)
            rlo, rhi = max(c0 - p.range_dt, 0), min(c1 + p.range_dt, self._frames_out)
            fmax = self._fmax[rlo - self._fmax0: rhi - self._fmax0]
            fmax = np.pad(fmax, (p.range_dt - (c0 - rlo), p.range_dt - (rhi - c1)), constant_values=_FLOOR)
            loud = _running(fmax, p.range_dt, 0)[p.range_dt: p.range_dt + c1 - c0].astype(np.int32)
            t, f, tonal, pmap = self._peaks_in(block, m2, c1 - c0, loud)
            t += c0
            if self.kind == "reference":
                self._peaks.append((t.astype(np.uint32) << PEAK_T_SHIFT) | (tonal.astype(np.uint32) << 9)
                                   | f.astype(np.uint32))
            else:
                self._map.append(pmap)
            self._next = c1
            keep = max(c1 - m2, 0)
            self._spec, self._spec0 = self._spec[keep - self._spec0:], keep
            keep = max(c1 - p.range_dt, 0)
            self._fmax, self._fmax0 = self._fmax[keep - self._fmax0:], keep
            self._pair(t, f, final=False)
        if final:
            self._pair(np.empty(0, np.int64), np.empty(0, np.int64), final=True)

    def _peaks_in(self, s: np.ndarray, m: int, n: int, loud: np.ndarray):
        """Peaks of frames m..m+n of the padded block `s` (int16 1/Q dB; frames outside the
        signal hold _FLOOR)."""
        p = self.p
        inner = slice(m, m + n)
        si = s[inner]
        valid = s[:, 0] > _FLOOR
        local = _running(_running(s, p.peak_df, 1), p.peak_dt, 0)
        cand = si >= local[inner]
        cand &= si >= (loud - p.range_db * Q)[:, None]
        cand &= valid[inner, None]
        # adaptive threshold: mean level of the neighbourhood, in exact integer sums; summed over
        # frames for the inner rows only, then over bins only at the candidates (a few % of cells)
        t, f = np.nonzero(cand)
        sv = np.where(valid[:, None], s, np.int16(0))[m - p.bg_dt: m + n + p.bg_dt].astype(np.int32)  # m > bg_dt
        rows = np.cumsum(_window_sum(sv, 2 * p.bg_dt + 1), axis=1, dtype=np.int32)
        rows = np.concatenate([np.zeros((n, 1), np.int32), rows], axis=1)
        c0, c1 = np.maximum(f - p.bg_df, 0), np.minimum(f + p.bg_df + 1, N_BINS)
        total = rows[t, c1].astype(np.int64) - rows[t, c0]
        frames = _window_sum(valid[m - p.bg_dt: m + n + p.bg_dt].astype(np.int32), 2 * p.bg_dt + 1)
        # level >= mean + contrast, in integers: level * count >= total + contrast * count
        cnt = frames[t].astype(np.int64) * (c1 - c0)
        keep = si[t, f].astype(np.int64) * cnt >= total + int(p.contrast_db * Q) * cnt
        t, f = t[keep], f[keep]
        tonal = pmap = None
        if self.kind == "reference":
            # tonal: the partial (bins f±1) holds within tonal_db over the next tonal_frames frames
            k = p.tonal_frames | 1
            ahead = _running(_running(s, 1, 1), k // 2, 0, np.minimum, np.iinfo(np.int16).max)
            ahead = ahead[m + 1 + k // 2: m + 1 + k // 2 + n]
            tonal = ahead[t, f].astype(np.int32) >= si[t, f].astype(np.int32) - int(p.tonal_db * Q)
        else:
            loc = si >= _running(_running(s, p.map_df, 1), p.map_dt, 0)[inner]
            loc &= si >= (loud - p.map_range_db * Q)[:, None]
            loc &= valid[inner, None]
            pmap = np.packbits(loc, axis=1)
        return t.astype(np.int64), f.astype(np.int64), tonal, pmap

    # -- pairs ---------------------------------------------------------------------------
    def _pair(self, t: np.ndarray, f: np.ndarray, final: bool) -> None:
        pt = np.concatenate([self._pt, t])
        pf = np.concatenate([self._pf, f])
        if pt.size == 0:
            return
        # an anchor is paired once every peak within its target zone is known
        n_anchor = pt.size if final else int(np.searchsorted(pt, self._next - self.p.pair_dt_max, side="left"))
        if n_anchor:
            h, at = _pair_hashes(pt, pf, n_anchor, self._fanout, self.p)
            self._hashes.append(h)
            self._times.append(at)
        self._pt, self._pf = pt[n_anchor:], pf[n_anchor:]


def _running(x: np.ndarray, radius: int, axis: int, op=np.maximum, pad=_FLOOR) -> np.ndarray:
    """op (max or min) over x[i - radius .. i + radius] along `axis`, ignoring positions outside
    the array (pad must be neutral for op). Van Herk style by doubling: O(log radius) passes,
    each one whole-array op on contiguous memory. Along the last axis of a 2-D array the rows
    are laid end to end with `radius` pad cells either side, so the passes run over one flat
    array (a window never reaches past the pad into the next row): slicing the rows instead
    cost 2.6x as much, and the transposed copy this once made 3.5x."""
    if radius <= 0:
        return x
    w = 2 * radius + 1
    span = 1 << (w.bit_length() - 1)  # largest power of two <= w
    if axis == 1 and x.ndim == 2:
        rows, n = x.shape
        padded = np.full((rows, n + 2 * radius), pad, x.dtype)
        padded[:, radius: radius + n] = x
        flat = _doubling(padded.reshape(-1), w, span, op)  # window starting at each flat position
        full = np.empty(padded.size, x.dtype)
        full[: flat.size] = flat
        return full.reshape(rows, n + 2 * radius)[:, :n]
    x = np.moveaxis(x, axis, 0)
    n = x.shape[0]
    fill = np.full((radius,) + x.shape[1:], pad, x.dtype)
    return np.moveaxis(_doubling(np.concatenate([fill, x, fill]), w, span, op)[:n], 0, axis)


def _doubling(y: np.ndarray, w: int, span: int, op) -> np.ndarray:
    """op over y[j .. j + w - 1] for every j with a whole window (along axis 0)."""
    n = y.shape[0] - w + 1
    width = 1  # y[j] = op(original[j .. j + width - 1])
    while width < span:
        y = op(y[:-width], y[width:])
        width *= 2
    return op(y[:n], y[w - span: w - span + n])  # two spans cover a window of w


def _window_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Exact sums of w consecutive rows: out[i] = x[i] + ... + x[i + w - 1] (len(x) - w + 1 rows),
    by doubling (contiguous whole-array adds; numpy's cumsum along rows is several times slower).
    Integer input; a window must fit its dtype (levels under 10,000 per cell: 33 rows in int32)."""
    out, y, width, pos = None, x, 1, 0
    n = x.shape[0] - w + 1
    while True:
        if w & width:  # this power of two is part of w: take y's window starting at pos
            part = y[pos: pos + n]
            out = part.copy() if out is None else out + part
            pos += width
        if width * 2 > w:
            return out
        y = y[:-width] + y[width:]
        width *= 2


def _pair_hashes(pt, pf, n_anchor: int, fanout: int, p: ExtractParams):
    """Hashes of anchors 0..n_anchor-1 (peaks sorted by time, then bin) with their `fanout`
    nearest targets (by time, then bin) in the zone 1..pair_dt_max frames, |Δf| <= pair_df."""
    lo = np.searchsorted(pt, pt[:n_anchor] + 1, side="left")
    hi = np.searchsorted(pt, pt[:n_anchor] + p.pair_dt_max, side="right")
    counts = hi - lo
    a = np.repeat(np.arange(n_anchor), counts)
    b = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(a.size)
    df = pf[b] - pf[a]
    ok = np.abs(df) <= p.pair_df
    a, b, df = a[ok], b[ok], df[ok]
    if a.size:
        start = np.r_[0, np.flatnonzero(np.diff(a)) + 1]
        rank = np.arange(a.size) - np.repeat(start, np.diff(np.r_[start, a.size]))
        keep = rank < fanout
        a, b, df = a[keep], b[keep], df[keep]
    dt = pt[b] - pt[a]
    h = (pf[a].astype(np.uint32) << (DF_BITS + DT_BITS)) | ((df + p.pair_df).astype(np.uint32) << DT_BITS) \
        | dt.astype(np.uint32)
    return h, pt[a].astype(np.uint32)


def _cat(parts, dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)


def landmarks(pcm, kind: str = "query", params: ExtractParams = DEFAULT) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, times) of a whole PCM array in one call."""
    ex = LandmarkExtractor(kind, params)
    ex.feed(pcm)
    return ex.finish()


def reference_print(pcm, params: ExtractParams = DEFAULT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What to persist per reference: (hashes, times, peaks)."""
    ex = LandmarkExtractor("reference", params)
    ex.feed(pcm)
    h, t = ex.finish()
    return h, t, ex.peaks()


def query_print(pcm, params: ExtractParams = DEFAULT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a query needs for matching: (hashes, times, peak map)."""
    ex = LandmarkExtractor("query", params)
    ex.feed(pcm)
    h, t = ex.finish()
    return h, t, ex.peak_map()


# -------------------------------------------------------------------------------------------
# storage: one bytes value per print (the database keeps them; the index is rebuilt from them)
# -------------------------------------------------------------------------------------------
_MAGIC = b"CSLM"
#: Bumped when extraction changes in a way that makes stored prints incomparable.
PRINT_VERSION = 1
_KINDS = ("reference", "query")


def pack_print(kind: str, hashes: np.ndarray, times: np.ndarray, extra: np.ndarray) -> bytes:
    """A reference print (extra = `peaks()`) or a query print (extra = `peak_map()`, stored
    zlib-compressed: it is mostly zeros) as bytes, little-endian, with a version header."""
    hashes, times = np.asarray(hashes, "<u4"), np.asarray(times, "<u4")
    if kind == "reference":
        body = np.asarray(extra, "<u4").tobytes()
        count = int(np.asarray(extra).size)
    else:
        extra = np.asarray(extra, np.uint8).reshape(-1, MAP_BYTES)
        body, count = zlib.compress(extra.tobytes(), 1), int(extra.shape[0])
    head = _MAGIC + struct.pack("<BBII", PRINT_VERSION, _KINDS.index(kind), hashes.size, count)
    return head + hashes.tobytes() + times.tobytes() + body


def unpack_print(blob: bytes) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """(kind, hashes, times, peaks or peak map) of `pack_print` bytes; ValueError when they are
    not a print of this version (the caller recomputes it from the audio)."""
    blob = bytes(blob)
    if len(blob) < 14 or blob[:4] != _MAGIC:
        raise ValueError("not a landmark print")
    version, kind, n, count = struct.unpack_from("<BBII", blob, 4)
    if version != PRINT_VERSION or kind >= len(_KINDS):
        raise ValueError(f"landmark print version {version} is not {PRINT_VERSION}")
    pos = 14
    hashes = np.frombuffer(blob, "<u4", n, pos).astype(np.uint32)
    times = np.frombuffer(blob, "<u4", n, pos + 4 * n).astype(np.uint32)
    rest = blob[pos + 8 * n:]
    if _KINDS[kind] == "reference":
        extra = np.frombuffer(rest, "<u4", count).astype(np.uint32)
    else:
        extra = np.frombuffer(zlib.decompress(rest), np.uint8).reshape(count, MAP_BYTES)
    return _KINDS[kind], hashes, times, extra


# -------------------------------------------------------------------------------------------
# the index: an immutable segment, stored and merged by fingerprint.index.IndexStore
# -------------------------------------------------------------------------------------------
#: Hash values held more often than this (per segment) are skipped in lookups.
MAX_POSTINGS = 4000
#: At most this many hits per lookup and segment (None: no bound): beyond it the query's most
#: common hash values are left out first — the rarest say the most about which recording it
#: is — so a query's cost stops growing with the catalog. See bench.landmark_scale.
HIT_BUDGET: int | None = None
#: The same bound relative to the query: at most this many hits per query hash on average.
HITS_PER_HASH: float | None = 8.0


def _from_doc_and_time(doc: np.ndarray, time: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """`post` and `frame_starts` from postings stored as separate recording and time arrays
    (segments saved before stop 36)."""
    spans = np.zeros(n, np.int64)
    np.maximum.at(spans, doc.astype(np.int64), time.astype(np.int64) + 1)
    frame_starts = starts_of(spans)
    return {"post": (frame_starts[doc.astype(np.int64)] + time).astype(np.uint32), "frame_starts": frame_starts}


def _bucket_table(values: np.ndarray) -> np.ndarray:
    """Where each hash value's postings start in the sorted `values` (one pass, no search)."""
    counts = np.bincount(np.asarray(values), minlength=1 << HASH_BITS)
    return np.concatenate([np.zeros(1, np.int64), np.cumsum(counts, dtype=np.int64)])


def _hit_budget(n_hashes: int, hits_per_hash: float | None) -> int | None:
    budgets = [b for b in (HIT_BUDGET, None if hits_per_hash is None else int(hits_per_hash * n_hashes))
               if b is not None]
    return min(budgets) if budgets else None


#: Bits of a hash value (its values are below 2 ** HASH_BITS).
HASH_BITS = F_BITS + DF_BITS + DT_BITS
#: Segments with at least this many hashes get a bucket table (`LandmarkIndex.buckets`).
BUCKET_MIN_HASHES = 1 << 22


class LandmarkIndex:
    """One segment of the landmark index, in memory or memory-mapped from .npy files.

    A posting is one uint32, `post` (4 bytes per reference hash): the hash's frame on the
    segment's timeline (`fingerprint.timeline`), where recording i occupies frames
    [frame_starts[i], frame_starts[i + 1]) (int64, len(keys) + 1; a recording's span is its
    last hashed frame + 1). The timeline bounds a segment to 2 ** 32 frames (~13,850 h of
    references); `parts` cuts larger sets into several segments.

    keys (int64) per recording; peaks (uint32, per recording in order, 4 bytes per peak) with
    peak_starts (int64, len(keys) + 1) for verification. `fingerprint.index.IndexStore`
    (segment_cls=LandmarkIndex) persists, tombstones and merges them like the Chromaprint index.

    Where each hash value's postings are is kept one of two ways. A small segment has `values`
    (uint32, the sorted hash value of every posting, 4 more bytes per hash), searched by
    binary search. A large one (`BUCKET_MIN_HASHES`) has `buckets` instead (int64,
    2 ** HASH_BITS + 1: where each value's postings start; a fixed 64 MiB): a binary search in
    a large sorted array is a chain of cache misses per query hash — at 10k recordings it was
    most of a query's matching time — where the table is two reads, and `values` is then
    redundant (`np.repeat(arange, diff(buckets))`), so it is not stored: a third of the
    index's memory at catalog scale (bench.landmark_scale). Segments saved by older versions
    (a large one with `values` and no table; postings as `doc` and `time` arrays) are
    converted in memory when loaded, and rewritten in this layout by `IndexStore.upgrade`."""

    FILES = ("post", "frame_starts", "keys", "peaks", "peak_starts")
    OPTIONAL = ("values", "buckets")
    LEGACY = ("doc", "time")
    #: Frames a segment's timeline holds.
    MAX_FRAMES = MAX_POSITIONS
    #: log2 of the frames per entry of the table that finds a frame's recording (~12 s).
    BLOCK_BITS = 10
    #: A merge holds every posting in memory about twice (~24 bytes per reference hash: some
    #: 60 GiB for 100k recordings), so a bulk-loaded store keeps its batches' segments
    #: (`IndexStore.settle`); bench.landmark_scale builds large segments by counting sort.
    MERGE_AFTER_BULK = False

    def __init__(self, arrays: dict[str, np.ndarray]):
        #: saved in an older layout and converted in memory (`IndexStore.upgrade` rewrites it)
        self.legacy = "post" not in arrays
        if self.legacy:
            arrays = {**arrays, **_from_doc_and_time(np.asarray(arrays["doc"]), np.asarray(arrays["time"]), arrays["keys"].size)}
        for name in self.FILES:
            setattr(self, name, arrays[name])
        self.values = arrays.get("values")
        self.buckets = arrays.get("buckets")
        if self.values is None and self.buckets is None:
            raise ValueError("a landmark segment needs its values or its bucket table")
        if self.buckets is None and self.values.size >= BUCKET_MIN_HASHES:
            self.buckets = _bucket_table(self.values)
        if self.buckets is not None:
            self.values = None
        self._pos = {int(k): i for i, k in enumerate(self.keys)}
        self.name: str | None = None  # its directory, once saved
        self._timeline = Timeline(self.frame_starts, self.BLOCK_BITS)

    def recording_at(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(segment-local recording numbers, frames within them), both int64, of timeline frames."""
        return self._timeline.locate(frame)

    @staticmethod
    def spans(times: np.ndarray) -> int:
        """Frames a recording with hashes at `times` occupies on a segment's timeline."""
        return int(times.max()) + 1 if times.size else 0

    @classmethod
    def parts(cls, refs) -> list[list]:
        """`refs` in order, cut into groups whose timelines fit one segment each."""
        return [refs[s] for s in cut([cls.spans(np.asarray(r[2])) for r in refs], cls.MAX_FRAMES)]

    @classmethod
    def build(cls, refs) -> LandmarkIndex:
        """refs: [(int key, hashes, times, peaks)] — peaks from `reference_print`; their
        timelines must fit one segment (`parts`)."""
        keys = np.array([int(r[0]) for r in refs], np.int64)
        frame_starts = starts_of([cls.spans(np.asarray(r[2])) for r in refs])
        if frame_starts[-1] > cls.MAX_FRAMES:
            raise ValueError(f"{frame_starts[-1]} reference frames do not fit one segment ({cls.MAX_FRAMES}): use parts()")
        pk = [np.asarray(r[3], np.uint32) if len(r) > 3 else np.empty(0, np.uint32) for r in refs]
        # one sorted array at a time, the unsorted one dropped at once: a large segment (a
        # compaction, bench.landmark_scale) peaks at about twice its own size, not four times
        values = _cat([np.asarray(r[1], np.uint32) for r in refs], np.uint32)
        order = np.argsort(values, kind="stable")
        values = values[order]
        post = _cat([np.asarray(r[2], np.int64) + s for r, s in zip(refs, frame_starts[:-1].tolist())], np.int64)
        post = post.astype(np.uint32)[order]
        del order
        starts = np.r_[0, np.cumsum([p.size for p in pk])].astype(np.int64)
        where = {"buckets": _bucket_table(values)} if values.size >= BUCKET_MIN_HASHES else {"values": values}
        return cls({**where, "post": post, "frame_starts": frame_starts, "keys": keys,
                    "peaks": _cat(pk, np.uint32), "peak_starts": starts})

    # -- the segment protocol of fingerprint.index (persisted, merged, memory-mapped) --------
    @classmethod
    def load(cls, path) -> LandmarkIndex:
        present = tuple(n for n in cls.FILES + cls.OPTIONAL + cls.LEGACY if (Path(path) / f"{n}.npy").exists())
        seg = cls({name: np.load(Path(path) / f"{name}.npy", mmap_mode="r") for name in present})
        seg.name = Path(path).name
        return seg

    def save(self, path) -> None:
        Path(path).mkdir(parents=True)
        for name in self.FILES + (("buckets",) if self.buckets is not None else ("values",)):
            np.save(Path(path) / f"{name}.npy", np.ascontiguousarray(getattr(self, name)))

    def has(self, key: int) -> bool:
        return int(key) in self._pos

    def refs(self, exclude: set[int]) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Every recording's (key, hashes, times, peaks) except `exclude` (for merging segments);
        hashes come back grouped per recording in time order, as `reference_print` made them."""
        post = np.asarray(self.post)
        order = np.argsort(post, kind="stable")  # timeline order: per recording, in time order
        bounds = np.searchsorted(post[order], self.frame_starts)
        out = []
        for i, key in enumerate(self.keys.tolist()):
            if key in exclude:
                continue
            sel = order[bounds[i]:bounds[i + 1]]
            times = (post[sel] - np.uint32(self.frame_starts[i])).astype(np.uint32)
            out.append((int(key), self.values_at(sel), times, self.peaks_of(key)))
        return out

    def values_at(self, positions: np.ndarray) -> np.ndarray:
        """The hash values (uint32) of the postings at `positions`."""
        if self.values is not None:
            return np.asarray(self.values)[positions]
        return (np.searchsorted(self.buckets, positions, side="right") - 1).astype(np.uint32)

    def value_counts(self) -> np.ndarray:
        """Postings per distinct hash value present (for index statistics)."""
        if self.buckets is not None:
            counts = np.diff(self.buckets)
            return counts[counts > 0]
        return np.unique(self.values, return_counts=True)[1]

    @property
    def entries(self) -> int:
        """Postings (reference hashes) in the segment."""
        return int(self.post.size)

    def __len__(self) -> int:
        return int(self.keys.size)

    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.FILES) + sum(
            a.nbytes for a in (self.values, self.buckets) if a is not None)

    def ranges(self, uniq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first posting, postings) of each of the sorted distinct hash values `uniq`.

        Searched in sorted order: numpy's binary search then starts where the previous one
        ended, which on a long query is several times faster than searching its hashes in time
        order (each a fresh walk through the whole array)."""
        if self.buckets is not None:
            u = np.minimum(uniq, self.buckets.size - 2).astype(np.int64)  # values are < 2 ** HASH_BITS
            lo_u = np.asarray(self.buckets[u])
            return lo_u, np.where(uniq == u, np.asarray(self.buckets[u + 1]) - lo_u, 0)
        lo_u = np.searchsorted(self.values, uniq, side="left")
        return lo_u, np.searchsorted(self.values, uniq, side="right") - lo_u

    def lookup_local(self, hashes: np.ndarray, hits_per_hash: float | None = None):
        """(segment-local recording numbers, query positions, reference frames int64) of every
        exact hit, bounded as `lookup_together` bounds them."""
        return self.lookup_together([self], hashes, hits_per_hash)[0]

    @staticmethod
    def lookup_together(segments, hashes: np.ndarray, hits_per_hash: float | None = None):
        """Per segment, (segment-local recording numbers, query positions, reference frames
        int64) of every exact hit. Hash values with more than MAX_POSTINGS postings (in all the
        segments together) are skipped, and of the rest the most common go first when the hits
        exceed the budget (`hits_per_hash` per query hash, by default `HITS_PER_HASH`, 0 for no
        bound; `HIT_BUDGET` in all).

        The bounds hold for the segments together, so recordings spread over several segments
        (as a store's sync leaves them) give the hits one segment of them all would: bounded
        per segment, 5 segments of 10k recordings cost 4x a query's matching time (12.8 →
        51.5 ms p50, stop 36), each adding its own budget of hits."""
        hashes = np.asarray(hashes, np.uint32)
        if hashes.size == 0:
            empty = np.empty(0, np.int64)
            return [(empty, empty, empty) for _ in segments]
        uniq, inv = np.unique(hashes, return_inverse=True)
        ranges = [seg.ranges(uniq) for seg in segments]
        counts = sum(c for _, c in ranges)[inv]
        keep = (counts > 0) & (counts <= MAX_POSTINGS)
        budget = _hit_budget(hashes.size, HITS_PER_HASH if hits_per_hash is None else (hits_per_hash or None))
        if budget is not None and int(counts[keep].sum()) > budget:
            held = np.flatnonzero(keep)
            rarest = held[np.argsort(counts[held], kind="stable")]
            keep = np.zeros_like(keep)
            keep[rarest[np.cumsum(counts[rarest]) <= budget]] = True
        out = []
        for seg, (lo_u, counts_u) in zip(segments, ranges):
            lo, n = lo_u[inv], counts_u[inv]
            sel = keep & (n > 0)
            n = n[sel]
            q = np.repeat(np.flatnonzero(sel), n)
            at = np.repeat(lo[sel] - np.cumsum(n) + n, n) + np.arange(q.size)
            doc, time = seg.recording_at(np.asarray(seg.post[at]))
            out.append((doc, q, time))
        return out

    def lookup(self, hashes: np.ndarray, hits_per_hash: float | None = None):
        """(recording keys int64, query positions, reference frames int64) of every exact hit."""
        doc, q, t = self.lookup_local(hashes, hits_per_hash)
        return np.asarray(self.keys)[doc], q, t

    def peaks_of(self, key: int) -> np.ndarray:
        i = self._pos[int(key)]
        return np.asarray(self.peaks[self.peak_starts[i]:self.peak_starts[i + 1]])


# -------------------------------------------------------------------------------------------
# matching
# -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LandmarkParams:
    """Decision thresholds (calibrated on the bench's calibration split; see bench/mixtures.py).

    The acceptance score depends on how long the matched segment lasts and how much of the
    recording it holds. Unrelated music in the same style agrees with a recording *locally* — a
    cadence, a chord held by the same instrument at the same tempo — for a few seconds, and a
    few seconds of close agreement score high; or it agrees faintly over a long stretch (a
    small share of the recording's partials, on a query so sparse that chance is smaller
    still). A recording that is really there, even buried 12 dB under another song, agrees
    over the whole time it sounds and keeps a good share of its sustained partials. So a
    segment of at least `long_seconds` in which at least `long_min_presence` of the
    recording's tonal peaks land on the query's maxima is accepted from `long_min_score`
    (calibrated: the highest wrong candidate over a segment that long, whatever its presence,
    plus the margin); anything else needs `min_score`. The long bar never exceeds `min_score`;
    None turns it off (one bar for all).

    Measured on bench.mixtures (seed 17, full run, both splits — a development set for this
    rule; the README's "Identification in mixtures" has the figures): wrong candidates scored
    up to 0.816 over 4–8 s segments but 0.62 (calibration split) and 0.72 (test split:
    crossfades, presence 0.11–0.22) over segments of 10 s or more; no wrong candidate over
    10 s in either split had presence 0.25 or more, while buried songs found over the whole
    15 s query had 0.25–0.6."""

    #: 1 - exp(-z / 15), z ≈ 27: bench.mixtures' calibration split (renders with the Csound GM bank,
    #: TimGM6mb and OPL-3), full run: 0.8356 — its highest wrong candidate, 0.816, was a Bach chorale
    #: and a Monteverdi madrigal on the same bank aligned for 6 s (the MuseScore-rendered set gave 0.776)
    min_score: float = 0.836
    #: the calibration split's highest wrong candidate over a segment of 10 s or more, 0.6229
    #: (a crossfade query, 16 s), plus the bench's margin 0.02
    long_min_score: float | None = 0.643
    long_seconds: float = 10.0
    long_min_presence: float = 0.25
    min_votes: int = 4  # aligned hashes at the best offset (±1 frame)
    min_vote_seconds: int = 2  # distinct seconds of the query holding aligned hashes
    min_seconds: float = 4.0  # matched segment
    top_candidates: int = 32  # recordings verified per query (by aligned hashes)
    rejected: int = 10  # best rejected candidates returned as evidence
    #: a candidate whose segment is this much shorter than an overlapping accepted match's is
    #: judged on the query maxima that match leaves unexplained (see `_explains`)
    explain_shorter_s: float = 4.0
    tol: int = 1  # offset tolerance in frames
    segment_s: float = 2.0
    z_scale: float = 15.0
    #: verification counts every reference peak, transients included, not only the sustained
    #: (tonal) ones: for material whose identity is its rhythm (drum stems, `fingerprint.stems`)
    verify_transients: bool = False

    def acceptance(self, duration_s: float, presence: float) -> float:
        """The score a match needs whose segment lasts `duration_s` and holds `presence` of the
        recording's tonal peaks."""
        if self.long_min_score is not None and duration_s >= self.long_seconds and presence >= self.long_min_presence:
            return min(self.long_min_score, self.min_score)
        return self.min_score

    def accepts(self, m: LandmarkMatch) -> bool:
        return (m.score >= self.acceptance(m.duration_s, m.presence) and m.votes >= self.min_votes
                and m.duration_s >= self.min_seconds and m.vote_seconds >= self.min_vote_seconds)


#: Queries longer than this (frames, 60 s) are matched in windows, WINDOW_HOP (45 s) apart:
#: a segment of up to 15 s lies whole in one window.
WINDOW_FRAMES = int(round(60 / FRAME_SECONDS))
WINDOW_HOP = int(round(45 / FRAME_SECONDS))
#: Threads that match the windows of a long query (its own pool: callers may be pool threads).
_WINDOW_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="landmark-window")
#: verify_alignment searches this many frames either side of the alignment it is given.
ALIGN_SEARCH = 12
#: Offsets (frames) at which the chance rate of a candidate is measured: ±1.5, 3.1, 4.6 s.
CHANCE_SHIFTS = (-397, -263, -131, 131, 263, 397)
#: Verification ignores reference peaks in bins below this (0 and 1: 10.8 and 21.5 Hz, under the
#: lowest musical note, A0 at 27.5 Hz). That band holds DC offset, rumble and codec artefacts,
#: which unrelated files share: a sustained sub-audio line there lands on the query's maxima at
#: the aligned offset and not at the shifted ones, so it looks like evidence. It made the one
#: wrong match of bench.mixtures' last full run (119 of its 126 hits were in bin 0).
MIN_VERIFY_BIN = 2


@dataclass(frozen=True)
class LandmarkMatch:
    key: int
    votes: int  # aligned hashes at the best offset (distinct query frames)
    votes_per_s: float  # over the span they occupy
    vote_span_s: float
    vote_seconds: int  # distinct seconds of the query holding aligned hashes
    query_start_s: float  # the matched segment, in the query's time
    query_end_s: float
    ref_start_s: float
    duration_s: float
    presence: float  # share of the recording's tonal peaks (all: verify_transients) found in the query over the segment
    chance: float  # the same share at shifted offsets
    peaks: int  # tonal reference peaks in the segment
    z: float
    score: float  # in [0, 1]
    decided_by: str = "landmarks"
    #: judged on what this (accepted) recording left unexplained (see `_explains`), or None
    explained_by: int | None = None

    def as_dict(self) -> dict:
        return {"key": self.key, "score": round(self.score, 4), "z": round(self.z, 2), "votes": self.votes,
                "votes_per_s": round(self.votes_per_s, 2), "vote_span_s": round(self.vote_span_s, 2),
                "vote_seconds": self.vote_seconds,
                "query_start_s": round(self.query_start_s, 2), "query_end_s": round(self.query_end_s, 2),
                "ref_start_s": round(self.ref_start_s, 2), "duration_s": round(self.duration_s, 2),
                "presence": round(self.presence, 3), "chance": round(self.chance, 3), "peaks": self.peaks,
                "decided_by": self.decided_by, "explained_by": self.explained_by}


def match_landmarks(lookup, q_hashes, q_times, params: LandmarkParams = LandmarkParams(), *, peaks,
                    query_map: np.ndarray) -> tuple[list[LandmarkMatch], list[LandmarkMatch]]:
    """Every recording found in the query, best first, and the best rejected candidates.

    `lookup(hashes) -> (int keys, query positions, reference frames)` (e.g.
    `LandmarkIndex.lookup`); `peaks(key) -> packed reference peaks` (`LandmarkIndex.peaks_of`);
    `query_map` is the query's `peak_map()`.
    """
    q_hashes = np.asarray(q_hashes, np.uint32)
    q_times = np.asarray(q_times, np.int64)
    query_map = np.asarray(query_map, np.uint8)
    n_frames = query_map.shape[0]
    if q_hashes.size == 0 or n_frames == 0:
        return [], []
    peaks = _VerifyPeaks(peaks, tonal_only=not params.verify_transients)
    if n_frames <= WINDOW_FRAMES:
        return _match_window(lookup, q_hashes, q_times, params, peaks, query_map)
    # a long query, window by window: memory stays bounded (every hit of a 2-hour upload at once
    # would not), and each window is judged as a query of its own; per recording the best wins
    # (windows run on a few threads: their lookups, sorts and verification are numpy, which
    # releases the GIL; results are merged in window order, so the outcome is the same)
    best: dict = {}
    best_rejected: dict = {}
    order = np.argsort(q_times, kind="stable")
    q_hashes, q_times = q_hashes[order], q_times[order]
    starts = []
    for start in range(0, n_frames, WINDOW_HOP):
        starts.append(start)
        if start + WINDOW_FRAMES >= n_frames:
            break

    def window(start: int):
        end = min(start + WINDOW_FRAMES, n_frames)
        lo, hi = np.searchsorted(q_times, [start, end])
        return _match_window(lookup, q_hashes[lo:hi], q_times[lo:hi] - start, params, peaks, query_map[start:end])

    for start, (found, missed) in zip(starts, _WINDOW_POOL.map(window, starts)):
        shift = start * FRAME_SECONDS
        for pool, results in ((best, found), (best_rejected, missed)):
            for m in results:
                m = replace(m, query_start_s=m.query_start_s + shift, query_end_s=m.query_end_s + shift)
                if m.key not in pool or m.score > pool[m.key].score:
                    pool[m.key] = m
    matches = sorted(best.values(), key=lambda m: (-m.score, m.key))
    rejected = sorted((m for k, m in best_rejected.items() if k not in best), key=lambda m: (-m.score, m.key))
    return matches, rejected[: params.rejected]


def _match_window(lookup, q_hashes, q_times, params: LandmarkParams, peaks, query_map):
    if q_hashes.size == 0:
        return [], []
    keys, qi, rt = lookup(q_hashes)
    dmap = _dilate(query_map)
    verified = []
    cands = _offset_candidates(np.asarray(keys, np.int64), q_times[qi], np.asarray(rt, np.int64), params)
    for (_, offset, _, vtimes), c in zip(cands, _verify_many(cands, peaks, dmap, params)):
        if c is not None:
            verified.append((c, offset, vtimes))
    # best first; a candidate that would be accepted but whose segment is a short passage inside
    # a longer segment of an accepted recording is judged again on the query maxima that
    # recording leaves unexplained (one already refused stays as it was)
    verified.sort(key=lambda v: (-v[0].score, v[0].key))
    matches, rejected = [], []
    claims: list[tuple[LandmarkMatch, np.ndarray, np.ndarray]] = []
    for c, offset, vtimes in verified:
        over = [(m, t, f) for m, t, f in claims if _explains(m, c, params)] if params.accepts(c) else []
        if over:
            reduced = query_map.copy()
            for _, t, f in over:
                _clear(reduced, t, f)
            c = _verify(c.key, offset, c.votes, vtimes, peaks, _dilate(reduced), params)
            if c is None:
                continue
            c = replace(c, explained_by=over[0][0].key)
        if params.accepts(c):
            matches.append(c)
            claims.append((c, *_hits(c, offset, peaks, dmap)))
        else:
            rejected.append(c)
    matches.sort(key=lambda m: (-m.score, m.key))
    rejected.sort(key=lambda m: (-m.score, m.key))
    return matches, rejected[: params.rejected]


#: Bits of the packed (recording, offset) code that hold the offset when the query frames cannot
#: ride in the same int64 (`_offset_candidates`' fallback): 2**34 frames is 6 years.
_OFF_BITS = 34


def _offset_candidates(keys, qt, rt, params: LandmarkParams):
    """Per recording, the best offset (±tol frames) with at least min_votes aligned hashes;
    the top_candidates recordings by votes, as (key, offset, votes, aligned query frames).

    One sort of the hits packed as key << ob | offset does all the counting (keys are
    non-negative and below 2**29: database ids); neighbouring offsets of the same recording are
    adjacent in that order, so the ±tol smoothing needs no search, and the hits aligned with a
    chosen offset are one slice of it. Their query frames come along in the low bits of the
    same sort key (a plain sort of int64 values is ~3x faster than the argsort it replaces);
    in the rare case the three do not fit in 63 bits, an argsort carries them instead."""
    if keys.size == 0:
        return []
    off = rt - qt
    omin = int(off.min())
    rel = off - omin
    # offset bits: the largest offset plus tol must not carry into the key (see the smoothing)
    ob = (int(rel.max()) + params.tol + 1).bit_length()
    qb = int(qt.max()).bit_length() if qt.size else 0
    if int(qt.min()) >= 0 and int(keys.max()).bit_length() + ob + qb <= 63:
        both = np.sort(keys.astype(np.int64) << (ob + qb) | rel << qb | qt)
        code = both >> qb

        def frames_of(a: int, b: int) -> np.ndarray:
            return both[a:b] & ((1 << qb) - 1)
    else:
        ob = _OFF_BITS
        packed = keys.astype(np.int64) << ob | rel
        order = np.argsort(packed)
        code = packed[order]

        def frames_of(a: int, b: int) -> np.ndarray:
            return qt[order[a:b]]
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    uc = np.diff(np.r_[starts, code.size])
    ucode = code[starts]
    total = uc.copy()
    # the neighbouring offsets of the same recording: code + d (d <= tol), if present, sits at
    # most d places further on in the sorted unique codes (offsets never wrap into another key)
    for d in range(1, params.tol + 1):
        for p in range(1, min(d, ucode.size - 1) + 1):
            pair = ucode[p:] - ucode[:-p] == d
            total[:-p] += np.where(pair, uc[p:], 0)
            total[p:] += np.where(pair, uc[:-p], 0)
    udoc = ucode >> ob
    # per recording (a run of equal udoc) its highest total; the top recordings by it (ties in
    # key order), and only for those the first position in the run that holds it
    run = np.flatnonzero(np.r_[True, udoc[1:] != udoc[:-1]])
    best = np.maximum.reduceat(total, run)
    chosen = np.flatnonzero(best >= params.min_votes)
    chosen = chosen[np.argsort(-best[chosen], kind="stable")][: params.top_candidates]
    ends = np.r_[run[1:], udoc.size]
    first = np.array([run[r] + int(np.argmax(total[run[r]:ends[r]])) for r in chosen.tolist()], np.int64)
    lo = np.searchsorted(code, ucode[first] - params.tol, "left")
    hi = np.searchsorted(code, ucode[first] + params.tol, "right")
    out = []
    for f, a, b in zip(first.tolist(), lo.tolist(), hi.tolist()):
        vt = np.unique(frames_of(a, b))
        out.append((int(udoc[f]), int((ucode[f] & ((1 << ob) - 1)) + omin), int(vt.size), vt))
    return out


def _explains(m: LandmarkMatch, c: LandmarkMatch, params: LandmarkParams) -> bool:
    """Whether accepted match `m` may explain candidate `c` away: `c`'s segment overlaps `m`'s
    and is at least `explain_shorter_s` shorter. Another recording that shares a passage with
    the one playing (a quotation, a common cadence on the same instruments) agrees with the
    query only there, and only through maxima the playing recording put there; two songs of a
    mashup (or one recording registered twice) both last the whole overlap and are left alone."""
    overlap = min(m.query_end_s, c.query_end_s) - max(m.query_start_s, c.query_start_s)
    return overlap > 0 and c.duration_s <= m.duration_s - params.explain_shorter_s


def _hits(m: LandmarkMatch, offset: int, peaks, dmap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frames, bins) of the query where match `m`'s tonal peaks land on a maximum, over its segment."""
    q0, q1 = int(round(m.query_start_s / FRAME_SECONDS)), int(round(m.query_end_s / FRAME_SECONDS))
    t_ref, f = peaks.window(m.key, offset + q0, offset + q1)
    tq = t_ref - offset
    ok = (tq >= max(q0, 0)) & (tq < min(q1, dmap.shape[0]))
    tq, f = tq[ok], f[ok]
    hit = _present(dmap, tq, f)
    return tq[hit], f[hit]


def _clear(query_map: np.ndarray, t: np.ndarray, f: np.ndarray) -> None:
    """Remove the query maxima at bins f within ±1 frame of frames t (in place)."""
    n = query_map.shape[0]
    mask = ~(np.uint8(1) << (7 - (f & 7)).astype(np.uint8))
    for d in (-1, 0, 1):
        td = t + d
        ok = (td >= 0) & (td < n)
        np.bitwise_and.at(query_map, (td[ok], f[ok] >> 3), mask[ok])


def _dilate(query_map: np.ndarray) -> np.ndarray:
    """Spectral maxima within ±1 frame (the frame grids of query and reference differ)."""
    out = query_map.copy()
    out[1:] |= query_map[:-1]
    out[:-1] |= query_map[1:]
    return out


def _present(dmap: np.ndarray, t: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Whether the (dilated) query map has a spectral maximum at frame t, bin f (t in range)."""
    return ((dmap[t, f >> 3] >> (7 - (f & 7)).astype(np.uint8)) & 1).astype(bool)


def _reader(dmap: np.ndarray, lookups: int):
    """`present(t, f)` over the dilated map for about `lookups` lookups: bit arithmetic per
    lookup, or, when they outnumber the map's bytes, one unpacking of the map and a plain read
    per lookup (cheaper for a batch of many candidates, dearer for a few)."""
    if lookups <= dmap.size:
        return lambda t, f: _present(dmap, t, f)
    bits = np.unpackbits(dmap, axis=1).ravel()
    return lambda t, f: bits[t * N_BINS + f].astype(bool)


class _VerifyPeaks:
    """A recording's verification peaks over a span of frames, as (frames, bins) int64, read
    from its packed peaks (sorted by frame: the frame is their high bits) without unpacking the
    rest of the recording."""

    def __init__(self, peaks, tonal_only: bool = True):
        self.peaks = peaks
        self.select = _tonal_peaks if tonal_only else _verify_band

    def window(self, key: int, first: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames and bins of the verification peaks in frames first..end-1."""
        packed = self.peaks(key)
        lo, hi = np.searchsorted(packed, [max(first, 0) << PEAK_T_SHIFT, max(end, 0) << PEAK_T_SHIFT])
        packed = self.select(np.asarray(packed[lo:hi], np.uint32))
        return (packed >> PEAK_T_SHIFT).astype(np.int64), (packed & 0x1FF).astype(np.int64)


def _tonal_peaks(packed_peaks) -> np.ndarray:
    """The reference peaks verification counts: tonal, and at or above MIN_VERIFY_BIN."""
    packed = np.asarray(packed_peaks, np.uint32)
    return packed[((packed & PEAK_TONAL_BIT) != 0) & ((packed & 0x1FF) >= MIN_VERIFY_BIN)]


def _verify_band(packed_peaks) -> np.ndarray:
    """Every reference peak, tonal or not, at or above MIN_VERIFY_BIN."""
    packed = np.asarray(packed_peaks, np.uint32)
    return packed[(packed & 0x1FF) >= MIN_VERIFY_BIN]


def _verify(key, offset, votes, vtimes, peaks, dmap, params: LandmarkParams):
    """One candidate: `_verify_many` of one."""
    return _verify_many([(key, offset, votes, vtimes)], peaks, dmap, params)[0]


def _verify_many(cands, peaks, dmap, params: LandmarkParams) -> list[LandmarkMatch | None]:
    """Verify candidates (key, offset, votes, aligned query frames) on the constellation, all
    in one pass of array operations (a per-candidate loop cost ~0.4 ms of Python each, which is
    what bounded how many candidates a query could afford). `peaks` is a `_VerifyPeaks`; only
    the peaks that can land in the query at the offset or a chance shift are looked at (a
    window of a long query against a long recording needs a fraction of them). None for a
    candidate with fewer than 8 of them inside the query."""
    if not cands:
        return []
    n_frames = dmap.shape[0]
    parts = [peaks.window(int(key), offset + min(CHANCE_SHIFTS), offset + n_frames + max(CHANCE_SHIFTS))
             for key, offset, _, _ in cands]
    sizes = np.array([t.size for t, _ in parts], np.int64)
    n_c = len(cands)
    cid = np.repeat(np.arange(n_c), sizes)
    offsets = np.array([c[1] for c in cands], np.int64)
    t_all = np.concatenate([t for t, _ in parts])
    f_all = np.concatenate([f for _, f in parts])
    tq_all = t_all - offsets[cid]
    inside = (tq_all >= 0) & (tq_all < n_frames)
    n_inside = np.bincount(cid[inside], minlength=n_c)
    tq, ci = tq_all[inside], cid[inside]
    present = _reader(dmap, t_all.size * (1 + len(CHANCE_SHIFTS)))
    hit = present(tq, f_all[inside])
    # chance: the same peaks at shifted offsets
    chance_hits = np.zeros(n_c)
    chance_n = np.zeros(n_c, np.int64)
    for shift in CHANCE_SHIFTS:
        ts = tq_all - shift
        ok = (ts >= 0) & (ts < n_frames)
        chance_hits += np.bincount(cid[ok], weights=present(ts[ok], f_all[ok]), minlength=n_c)
        chance_n += np.bincount(cid[ok], minlength=n_c)
    chance = np.clip(np.divide(chance_hits, chance_n, out=np.zeros(n_c), where=chance_n > 0), 0.02, 0.98)
    # per candidate, the run of 2 s query segments with the largest excess over chance (Kadane,
    # all candidates at once; segments after a candidate's last peak do not exist for it)
    seg = max(1, int(round(params.segment_s / FRAME_SECONDS)))
    sidx = tq // seg
    n_seg = (n_frames - 1) // seg + 1
    last = np.full(n_c, -1, np.int64)
    np.maximum.at(last, ci, sidx)
    n_per = np.bincount(ci * n_seg + sidx, minlength=n_c * n_seg).reshape(n_c, n_seg).astype(np.float64)
    h_per = np.bincount(ci * n_seg + sidx, weights=hit, minlength=n_c * n_seg).reshape(n_c, n_seg)
    excess = h_per - chance[:, None] * n_per
    excess[np.arange(n_seg)[None, :] > last[:, None]] = -np.inf
    best = np.full(n_c, -np.inf)
    cur = np.zeros(n_c)
    a = np.zeros(n_c, np.int64)
    b = np.zeros(n_c, np.int64)
    start = np.zeros(n_c, np.int64)
    for i in range(n_seg):
        e = excess[:, i]
        fresh = cur <= 0
        cur = np.where(fresh, e, cur + e)
        start = np.where(fresh, i, start)
        better = cur > best
        best = np.where(better, cur, best)
        a = np.where(better, start, a)
        b = np.where(better, i, b)
    run = (np.arange(n_seg)[None, :] >= a[:, None]) & (np.arange(n_seg)[None, :] <= b[:, None])
    n = (n_per * run).sum(axis=1)
    h = (h_per * run).sum(axis=1)
    tq_min = np.full(n_c, n_frames, np.int64)
    np.minimum.at(tq_min, ci, tq)
    out: list[LandmarkMatch | None] = []
    for j, (key, offset, votes, vtimes) in enumerate(cands):
        if n_inside[j] < 8:
            out.append(None)
            continue
        nj, hj, cj = float(n[j]), float(h[j]), float(chance[j])
        z = (hj - cj * nj) / np.sqrt(nj * cj * (1 - cj)) if nj else 0.0
        q0 = max(int(a[j]) * seg, int(tq_min[j]))
        q1 = min((int(b[j]) + 1) * seg, n_frames)
        span = (int(vtimes.max()) - int(vtimes.min())) * FRAME_SECONDS if vtimes.size else 0.0
        out.append(LandmarkMatch(
            key=int(key), votes=votes, votes_per_s=votes / max(span, 1.0), vote_span_s=span,
            vote_seconds=int(np.unique((vtimes * FRAME_SECONDS).astype(np.int64)).size),
            query_start_s=q0 * FRAME_SECONDS, query_end_s=q1 * FRAME_SECONDS,
            ref_start_s=(q0 + offset) * FRAME_SECONDS, duration_s=(q1 - q0) * FRAME_SECONDS,
            presence=hj / nj if nj else 0.0, chance=cj, peaks=int(nj), z=float(z),
            score=float(1 - np.exp(-max(z, 0.0) / params.z_scale))))
    return out


def verify_alignment(key, packed_peaks, query_map: np.ndarray, *, query_start_s: float, ref_start_s: float,
                     duration_s: float, speed: float = 1.0,
                     params: LandmarkParams = LandmarkParams(), tonal_only: bool = True) -> LandmarkMatch | None:
    """Check an alignment found by another matcher (Chromaprint's: where in the query, where in
    the recording, at which speed) on the constellation: do the recording's sustained peaks,
    moved to the query's time *and frequency* at that speed, land on the query's spectral maxima
    over the segment more often than at shifted offsets? Works at any speed, because it needs no
    hashes; a speed change moves every partial by the same factor.

    Chromaprint's bit error rate cannot tell a recording from unrelated music with the same
    harmony and rhythm well enough on its own (wrong matches at 0.55–0.79 on long queries and
    speed variants); this check is what its matches must also pass when the query has a
    landmark print. Returns None when the segment holds too few reference peaks to judge.

    `tonal_only=False` counts every reference peak, transients included: a drum stem has few
    sustained partials but many hits, and its hits land on the copy's maxima only where the
    rhythm is the same (`fingerprint.stems`)."""
    packed = _tonal_peaks(packed_peaks) if tonal_only else _verify_band(packed_peaks)
    t_ref = (packed >> PEAK_T_SHIFT).astype(np.float64) * FRAME_SECONDS
    f_ref = (packed & 0x1FF).astype(np.float64)
    inside = (t_ref >= ref_start_s) & (t_ref < ref_start_s + duration_s * speed)
    t_ref, f_ref = t_ref[inside], f_ref[inside]
    if t_ref.size < 8:
        return None
    # only the frames the check can reach are unpacked (a 2-hour query's whole map would not fit)
    reach = ALIGN_SEARCH + max(abs(c) for c in CHANCE_SHIFTS) + 2
    first = max(int((query_start_s - 1.0) / FRAME_SECONDS) - reach, 0)
    last = int((query_start_s + duration_s + 1.0) / FRAME_SECONDS) + reach
    # the query's maxima stay packed (8 bins a byte, MSB first): unpacking, let alone transposing,
    # a long segment's map costs more than the whole search
    qmap = np.asarray(query_map[first:last], np.uint8)
    n_frames = qmap.shape[0]
    query_start_s -= first * FRAME_SECONDS
    pad = ALIGN_SEARCH + max(abs(c) for c in CHANCE_SHIFTS)
    # ±1 frame (frame grids differ) and, off speed, ±1 bin (rounding of f * speed); framed by
    # `pad` empty frames each side, so every offset searched reads inside the array
    near = np.zeros((n_frames + 2 * pad, MAP_BYTES), np.uint8)
    near[pad: pad + n_frames] = _dilate(qmap)
    if abs(speed - 1.0) > 1e-3:
        flat = near.view(">u8").reshape(-1)  # 64 bins a word (MAP_BYTES is 64), bin 0 the top bit
        up, down = flat << np.uint64(1), flat >> np.uint64(1)
        up[:-1] |= flat[1:] >> np.uint64(63)  # the next word's first bin, into this word's last
        down[1:] |= flat[:-1] << np.uint64(63)
        per = MAP_BYTES // 8  # no carry across frames: a frame's edge bins have no neighbour there
        up.reshape(-1, per)[:, -1] &= ~np.uint64(1)
        down.reshape(-1, per)[:, 0] &= ~np.uint64(1 << 63)
        flat |= up | down
    tq = np.rint((query_start_s + (t_ref - ref_start_s) / speed) / FRAME_SECONDS).astype(np.int64)
    fq = np.rint(f_ref * speed).astype(np.int64)
    ok = (tq >= 0) & (tq < n_frames) & (fq >= 0) & (fq < N_BINS)
    if ok.sum() < 8:
        return None
    tq, fq = tq[ok], fq[ok]
    flat_map = near.reshape(-1)
    shifts = np.arange(-ALIGN_SEARCH, ALIGN_SEARCH + 1)
    at = (tq[:, None] + (shifts + pad)) * MAP_BYTES + (fq >> 3)[:, None]  # [peaks, offsets] byte positions
    bit = (7 - (fq & 7)).astype(np.uint8)[:, None]
    t_sorted = np.sort(tq)

    def best_rate(base: int) -> tuple[float, int, int, int]:
        """(hit rate, fine offset, peaks, hits) of the best of the fine offsets base ±
        ALIGN_SEARCH frames (another matcher's offset is only as fine as its own frames:
        Chromaprint's are 11 of ours); rate -1 when no offset keeps 8 peaks in the query. The
        first offset wins a tie. Peaks moved outside the query count as neither hit nor miss."""
        hits = ((flat_map[at + base * MAP_BYTES] >> bit) & 1).sum(axis=0, dtype=np.int64)
        inside = (np.searchsorted(t_sorted, n_frames - base - shifts, "left")
                  - np.searchsorted(t_sorted, -base - shifts, "left"))
        valid = np.flatnonzero(inside >= 8)
        if valid.size == 0:
            return -1.0, 0, 0, 0
        rate = hits[valid] / inside[valid]
        j = valid[int(np.argmax(rate))]
        return float(hits[j] / inside[j]), int(shifts[j]), int(inside[j]), int(hits[j])

    _, fine, n, h = best_rate(0)
    if n < 8:
        return None
    # chance: the same search at shifted offsets, so searching costs the true alignment nothing
    rates = [best_rate(c)[0] for c in CHANCE_SHIFTS]
    rates = [r for r in rates if r >= 0]
    chance = min(max(float(np.mean(rates)) if rates else 0.0, 0.02), 0.98)
    tq = tq + fine
    n, h = float(n), float(h)
    z = (h - chance * n) / np.sqrt(n * chance * (1 - chance))
    q0, q1 = int(tq.min()) + first, int(tq.max()) + 1 + first
    return LandmarkMatch(
        key=key, votes=0, votes_per_s=0.0, vote_span_s=0.0, vote_seconds=0,
        query_start_s=q0 * FRAME_SECONDS, query_end_s=q1 * FRAME_SECONDS, ref_start_s=ref_start_s,
        duration_s=(q1 - q0) * FRAME_SECONDS, presence=h / n, chance=chance, peaks=int(n), z=float(z),
        score=float(1 - np.exp(-max(z, 0.0) / params.z_scale)), decided_by="landmarks-alignment")
