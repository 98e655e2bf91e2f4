"""Landmark index at catalog scale (issue 17): memory, bytes per reference second, query latency
and whether the true recording is still found, with derived references.

    .venv/bin/python -m bench.landmark_scale [--sizes 1000 10000] [--queries 40]

Base references are the bench.mixtures tracks already rendered under var/bench-cache/mixtures
(run `python -m bench.mixtures --quick` first). A *derived* reference is a base reference moved
up or down by k frequency bins (its hashes' f1 field and its peaks; Δf and Δt unchanged), so the
hash-value distribution stays that of real music, unlike random hashes — but derived references
are more alike than a real catalog's recordings, so collisions are if anything overstated.
Queries are 15 s excerpts of base tracks, two base tracks overlaid at equal level (both must be
found) and a base track 12 dB under another (the quiet one must be found), extracted as the
product does; matching time excludes extraction (measured by bench.mixtures). `--budgets`
repeats the matching with `landmarks.HIT_BUDGET` set (hits per lookup; the rarest hash values
kept first), to see what bounding a query's cost does to recall. Sizes that do not
fit in memory are extrapolated from the measured bytes per reference second, and say so.

Writes bench/results/landmark_scale.json and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fingerprint import landmarks as lm  # noqa: E402

CACHE = ROOT / "var" / "bench-cache" / "mixtures" / "audio"
F_SHIFT = lm.DF_BITS + lm.DT_BITS
F_MASK = (1 << lm.F_BITS) - 1


def mono11k(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, always_2d=True, dtype="float32")
    x = resample_poly(audio.mean(axis=1), 1, rate // 11025 if rate % 11025 == 0 else 4)
    return np.clip(x * 32768, -32768, 32767).astype(np.int16)


def derive(ref: tuple, k: int) -> tuple:
    """The reference moved by k bins: f1 of every hash and the bin of every peak (dropped where
    they leave the band)."""
    h, t, peaks = ref
    f = (h >> F_SHIFT).astype(np.int64) + k
    ok = (f >= 0) & (f <= F_MASK)
    h2 = (f[ok].astype(np.uint32) << F_SHIFT) | (h[ok] & ((1 << F_SHIFT) - 1))
    pb = (peaks & 0x1FF).astype(np.int64) + k
    pok = (pb >= 0) & (pb < lm.N_BINS)
    p2 = (peaks[pok] & ~np.uint32(0x1FF)) | pb[pok].astype(np.uint32)
    return h2, t[ok], p2


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--bases", type=int, default=60, help="rendered tracks used as base references")
    ap.add_argument("--max-entries", type=float, default=1.2e9, help="largest index built in memory (entries)")
    ap.add_argument("--budgets", type=int, nargs="*", default=[], help="HIT_BUDGET values to try besides none")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "landmark_scale.json")
    args = ap.parse_args(argv)
    files = sorted(CACHE.glob("*.flac"))[: args.bases]
    if len(files) < 4:
        raise SystemExit("no rendered tracks under var/bench-cache/mixtures: run `python -m bench.mixtures --quick` first")
    t0 = time.perf_counter()
    pcm = [mono11k(f) for f in files]
    refs = [lm.reference_print(x) for x in pcm]
    seconds = np.array([x.size / lm.RATE for x in pcm])
    print(f"{len(files)} base references, {seconds.sum():.0f} s, prints in {time.perf_counter() - t0:.1f} s")
    hashes_per_s = sum(r[0].size for r in refs) / seconds.sum()
    peaks_per_s = sum(r[2].size for r in refs) / seconds.sum()
    bytes_per_s = 12 * hashes_per_s + 4 * peaks_per_s
    rng = np.random.default_rng(5)
    n15 = 15 * lm.RATE

    def clip15(b):
        start = int(rng.uniform(0, max(1, pcm[b].size - n15)))
        x = pcm[b][start: start + n15].astype(np.float32)
        return x / (np.sqrt(np.mean(x ** 2)) + 1e-9)

    def as_pcm(x):
        return np.clip(x / np.abs(x).max() * 0.5 * 32767, -32768, 32767).astype(np.int16)

    queries = []  # (kind, truth, print)
    for _ in range(args.queries):
        a, b = (int(v) for v in rng.choice(len(pcm), 2, replace=False))
        xa, xb = clip15(a), clip15(b)
        queries.append(("excerpt_15s", [a], lm.query_print(as_pcm(xa))))
        queries.append(("mix_equal", [a, b], lm.query_print(as_pcm(xa + xb))))
        queries.append(("under_12", [a], lm.query_print(as_pcm(xa * 10 ** (-12 / 20) + xb))))
    summary = {"base_references": len(files), "base_seconds": round(float(seconds.sum()), 1),
               "ref_hashes_per_s": round(hashes_per_s, 1), "ref_peaks_per_s": round(peaks_per_s, 1),
               "bytes_per_reference_second": round(bytes_per_s, 1),
               "query_hashes_per_s": round(float(np.mean([q[2][0].size for q in queries])) / 15, 1),
               "max_postings": lm.MAX_POSTINGS, "sizes": {}}
    avg_s = float(seconds.mean())
    for n in args.sizes:
        entries = n * avg_s * hashes_per_s
        row = {"recordings": n, "reference_seconds": round(n * avg_s), "index_bytes_estimate": int(n * avg_s * bytes_per_s)}
        if entries > args.max_entries:
            row["built"] = False
            row["note"] = f"not built: {entries / 1e9:.1f} G entries exceed --max-entries; bytes extrapolated"
            summary["sizes"][str(n)] = row
            print(f"{n:>7} recordings: {row['note']}")
            continue
        t1 = time.perf_counter()
        members = [(j, *ref) for j, ref in enumerate(refs)]  # the true ones keep keys 0..bases-1
        k = len(refs)
        while len(members) < n:
            base = int(rng.integers(0, len(refs)))
            shift = int(rng.choice([s for s in range(-60, 61) if s]))
            members.append((k, *derive(refs[base], shift)))
            k += 1
        index = lm.LandmarkIndex.build(members)
        del members
        build_s = time.perf_counter() - t1
        _, counts = np.unique(np.asarray(index.values), return_counts=True)
        row.update(built=True, index_bytes=int(index.nbytes()), build_s=round(build_s, 1),
                   values_over_max_postings=int((counts > lm.MAX_POSTINGS).sum()),
                   entries_in_capped_values=round(float(counts[counts > lm.MAX_POSTINGS].sum() / counts.sum()), 3),
                   by_budget={})
        for budget in [None, *args.budgets]:
            lm.HIT_BUDGET = budget
            times, hits, found = [], [], {}
            for kind, truth, (h, t, pmap) in queries:
                t2 = time.perf_counter()
                keys, _, _ = index.lookup(h)
                matches, _ = lm.match_landmarks(index.lookup, h, t, peaks=index.peaks_of, query_map=pmap)
                times.append((time.perf_counter() - t2) * 1000)
                hits.append(int(keys.size))
                keys_found = {m.key for m in matches}
                found.setdefault(kind, []).append(set(truth) <= keys_found)
            res = {"match_ms_p50": round(float(np.percentile(times, 50)), 1),
                   "match_ms_p95": round(float(np.percentile(times, 95)), 1),
                   "hits_per_query_p50": int(np.median(hits)),
                   "recall": {k: round(float(np.mean(v)), 3) for k, v in found.items()}}
            row["by_budget"][str(budget)] = res
            print(f"{n:>7} recordings, hit budget {budget}: index {row['index_bytes'] / 2**30:.2f} GiB, match p50 "
                  f"{res['match_ms_p50']} ms p95 {res['match_ms_p95']} ms, {res['hits_per_query_p50']} hits/query, "
                  f"recall {res['recall']}")
        lm.HIT_BUDGET = None
        summary["sizes"][str(n)] = row
        del index
    print(f"bytes per reference second {bytes_per_s:.0f} ({hashes_per_s:.0f} hashes/s x 12 B + {peaks_per_s:.0f} peaks/s x 4 B)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"results: {args.out}")
    return summary


if __name__ == "__main__":
    main()
