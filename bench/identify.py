"""Identification benchmark (issue 7's harness), run against the current matcher.

    .venv/bin/python -m bench.identify [--catalog 200] [--noncatalog 50] [--seconds 60] [--scale 10000]

Builds its own audio (clearstem.synth songs, no copyrighted material): a catalog indexed with
the product's scan (with speed variants) + index + matcher, and non-catalog songs. Queries per transform: full track
re-encoded to MP3 128 kbps; 30/15/8 s excerpts at random offsets; 15 s excerpt + white noise at
10 dB SNR; gain −12 dB; 22.05 kHz mono; ±3 % speed (30 s excerpt); a 20 s catalog sample inside a
2-minute non-catalog track; a mashup of two catalog songs (both must be found). Every transform
is also applied to non-catalog songs: any match there is a false positive. Latency = decode +
fingerprint + identify per query; index query time alone is reported apart. --scale indexes
synthetic fingerprints derived from real ones (segments shuffled, 10 % of bits flipped, so value
statistics stay realistic) and reports query p50/p95 and index bytes per item.
Writes bench/results/identify.json and prints a table.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_dir  # noqa: E402
from clearstem.synth import render_song  # noqa: E402
from fingerprint.index import IndexStore  # noqa: E402
from fingerprint.matcher import MatchParams, speed_indexes  # noqa: E402
from fingerprint.matcher import identify_speeds as match  # noqa: E402
from fingerprint.scan import QUERY_VARIANTS, REFERENCE_SPEEDS, scan_audio  # noqa: E402

SR = 44100


def mp3_bytes(audio: np.ndarray, rate: int = SR, bitrate: int = 128_000) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.bit_rate = bitrate
        for i in range(0, audio.shape[1], 1152 * 8):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, i:i + 1152 * 8], np.float32),
                                               format="fltp", layout="stereo")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def transforms(rng: np.random.Generator, mix: np.ndarray, other: np.ndarray, host: np.ndarray):
    """(name, audio or bytes, rate, expected-extra) for one song; `other` is a second song for
    the mashup, `host` a non-catalog 2-minute track for the sample case."""
    n = mix.shape[1]

    def excerpt(secs):
        start = int(rng.integers(0, max(1, n - int(secs * SR))))
        return mix[:, start:start + int(secs * SR)]

    def speed(x, factor):
        return resample_poly(x.T, 1000, int(round(1000 * factor)), axis=0).T.astype(np.float32)

    ex15 = excerpt(15)
    noise = rng.standard_normal(ex15.shape).astype(np.float32)
    noise *= np.sqrt(np.mean(ex15 ** 2) / np.mean(noise ** 2) / 10 ** (10 / 10))
    mono22 = resample_poly(mix.mean(axis=0), 1, 2).astype(np.float32)[None]
    pos = int(rng.integers(10 * SR, host.shape[1] - 30 * SR))
    sample = excerpt(20)
    inside = host.copy()
    inside[:, pos:pos + sample.shape[1]] = sample
    half = 15 * SR
    mash = np.concatenate([mix[:, :half], other[:, 10 * SR:10 * SR + half]], axis=1)
    return [
        ("mp3_full", mp3_bytes(mix), SR, None),
        ("excerpt_30s", excerpt(30), SR, None),
        ("excerpt_15s", ex15, SR, None),
        ("excerpt_8s", excerpt(8), SR, None),
        ("noise_10dB", ex15 + noise, SR, None),
        ("gain_-12dB", mix * 10 ** (-12 / 20), SR, None),
        ("mono_22k", mono22, SR // 2, None),
        ("speed_+3%", speed(excerpt(30), 1.03), SR, None),
        ("speed_-3%", speed(excerpt(30), 0.97), SR, None),
        ("sample_in_track", inside, SR, None),
        ("mashup", mash, SR, "other"),
    ]


def write_query(tmp: Path, name: str, audio, rate: int) -> Path:
    if isinstance(audio, bytes):
        path = tmp / f"{name}.mp3"
        path.write_bytes(audio)
    else:
        path = tmp / f"{name}.wav"
        sf.write(path, np.clip(audio, -1, 1).T, rate, subtype="PCM_16")
    return path


def pct(xs, q):
    xs = sorted(xs)
    return xs[int(q * (len(xs) - 1))] if xs else float("nan")


def derived_fingerprints(real: list[np.ndarray], n: int, rng: np.random.Generator, items: int):
    """`n` synthetic recordings of about `items` items each, built from real fingerprints: real
    runs of 8–30 s at random offsets, each with its 16 two-bit classifiers permuted (so runs
    reused by many recordings still differ, as different songs do), then every bit flipped
    with probability 1/8. Values keep Chromaprint's per-classifier statistics; no two
    recordings share long exact runs."""
    shifts = np.arange(0, 32, 2, dtype=np.uint32)
    for _ in range(n):
        parts, size = [], 0
        while size < items:
            src = real[int(rng.integers(0, len(real)))]
            length = int(rng.integers(64, 240))
            start = int(rng.integers(0, max(1, src.size - length)))
            seg = src[start:start + length].astype(np.uint32)
            perm = rng.permutation(16)
            groups = (seg[:, None] >> shifts[None, :]) & 3
            parts.append((groups[:, perm] << shifts[None, :]).sum(axis=1, dtype=np.uint64).astype(np.uint32))
            size += parts[-1].size
        fp = np.concatenate(parts)[:items]
        flips = (rng.integers(0, 2**32, fp.size, dtype=np.uint32) & rng.integers(0, 2**32, fp.size, dtype=np.uint32)
                 & rng.integers(0, 2**32, fp.size, dtype=np.uint32))
        yield fp ^ flips


def scale_test(real: list[np.ndarray], n: int, rng: np.random.Generator, items: int, queries: int = 200) -> dict:
    """Index `n` derived recordings on disk, then time memory-mapped queries of 15 s at the
    query's speed variants against the catalog at every reference speed. The derived prints
    stand in for every speed (one store, looked up once per reference speed: the same lookups
    as 1 + len(REFERENCE_SPEEDS) stores of `n`); `bytes_per_item` is per print, and the product
    keeps 1 + len(REFERENCE_SPEEDS) prints of each reference."""
    tmp = Path(tempfile.mkdtemp(prefix="clearstem-idscale-"))
    t0 = time.perf_counter()
    refs = list(enumerate(derived_fingerprints(real, n, rng, items)))
    store = IndexStore(tmp)
    with store.write_lock():
        store.apply(add=refs)
    build_s = time.perf_counter() - t0
    index = IndexStore(tmp).index()  # a fresh reader: memory-mapped, as a worker process sees it
    n_items = index.items_count()
    nbytes = sum(f.stat().st_size for f in tmp.rglob("*.npy"))
    lat, found = [], 0
    for _ in range(queries):
        key, fp = refs[int(rng.integers(0, n))]
        start = int(rng.integers(0, max(1, fp.size - 130)))
        q = fp[start:start + 121].copy()
        q ^= rng.integers(0, 2**32, q.size, dtype=np.uint32) & rng.integers(0, 2**32, q.size, dtype=np.uint32) \
            & rng.integers(0, 2**32, q.size, dtype=np.uint32) & rng.integers(0, 2**32, q.size, dtype=np.uint32)
        others = [refs[int(rng.integers(0, n))][1][:121] for _ in QUERY_VARIANTS]
        variants = [(1.0, q)] + list(zip(QUERY_VARIANTS, others))
        t1 = time.perf_counter()
        matches = match([(1.0, index)] + [(sp, index) for sp in REFERENCE_SPEEDS], variants)
        lat.append((time.perf_counter() - t1) * 1000)
        found += any(m.key == key for m in matches)
    del index, store, refs
    import shutil
    shutil.rmtree(tmp)
    return {"recordings": n, "items": n_items, "build_s": build_s, "bytes_per_item": nbytes / n_items,
            "prints_per_reference": 1 + len(REFERENCE_SPEEDS),
            "query_ms_p50": pct(lat, 0.5), "query_ms_p95": pct(lat, 0.95), "self_recall_15s": found / queries}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--catalog", type=int, default=200)
    p.add_argument("--noncatalog", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--scale", type=int, nargs="*", default=[10_000, 100_000])
    p.add_argument("--scale-items", type=int, default=1700, help="items per derived recording (~3.5 min)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "identify.json")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    tmp = scratch_dir("clearstem-idbench-")
    t0 = time.perf_counter()
    catalog = {i: render_song(10_000 + i, args.seconds).mixture for i in range(args.catalog)}
    non = {i: render_song(50_000 + i, max(args.seconds, 120)).mixture for i in range(args.noncatalog)}
    render_s = time.perf_counter() - t0
    scans = {}
    for i, mix in catalog.items():
        path = tmp / f"ref{i}.wav"
        sf.write(path, mix.T, SR, subtype="PCM_16")
        scans[i] = scan_audio(path, reference_speeds=REFERENCE_SPEEDS)
    indexes = speed_indexes(scans)
    params = MatchParams()
    margins = {"true_near_fraction": [], "false_near_fraction": []}

    def identify(path, truth=()):
        t = time.perf_counter()
        variants = scan_audio(path, speed_variants=QUERY_VARIANTS).variants
        tq = time.perf_counter()
        rejected = []
        matches = match(indexes, variants, params, candidates=rejected)
        elapsed = (time.perf_counter() - t) * 1000, (time.perf_counter() - tq) * 1000
        # how close the decision came: near-identical share of true matches vs. anything else
        for m in matches:
            margins["true_near_fraction" if m.key in truth else "false_near_fraction"].append(m.near_fraction)
        for c in rejected:
            if c.key not in truth:
                margins["false_near_fraction"].append(c.near_fraction)
        return matches, *elapsed

    recall: dict[str, list[int]] = {}
    unexpected: list[dict] = []
    latency, query_ms = [], []
    for i, mix in catalog.items():
        other_key = (i + 1) % args.catalog
        host = non[i % args.noncatalog][:, :120 * SR]
        for name, audio, rate, extra in transforms(rng, mix, catalog[other_key], host):
            path = write_query(tmp, f"q-{name}", audio, rate)
            truth = {i, other_key} if extra else {i}
            matches, ms, qms = identify(path, truth)
            keys = {m.key for m in matches}
            ok = truth <= keys
            for m in matches:
                if m.key not in truth:  # another catalog song: a false match unless the audio is shared
                    unexpected.append({"transform": name, "query_song": i, "found": m.key, **m.as_dict()})
            recall.setdefault(name, []).append(int(ok))
            latency.append(ms)
            query_ms.append(qms)
    false_pos, non_queries = 0, 0
    for i, mix in non.items():
        for name, audio, rate, _ in transforms(rng, mix[:, : int(args.seconds * SR)], non[(i + 1) % args.noncatalog],
                                               non[(i + 2) % args.noncatalog][:, :120 * SR]):
            # sample/mashup here mix only non-catalog songs: any match is a false positive too
            matches, _, _ = identify(write_query(tmp, f"n-{name}", audio, rate))
            false_pos += bool(matches)
            non_queries += 1
    # a 4-minute MP3: decode + fingerprint + identify
    long = np.concatenate([catalog[0]] * int(np.ceil(240 / args.seconds)), axis=1)[:, :240 * SR]
    mp3 = write_query(tmp, "four-minutes", mp3_bytes(long), SR)
    four = statistics.median(identify(mp3, {0})[1] for _ in range(3))
    results = {
        "set": {"catalog": args.catalog, "noncatalog": args.noncatalog, "seconds": args.seconds, "render_s": render_s},
        "matcher": f"chromaprint, {1 + len(QUERY_VARIANTS)} query variants x {1 + len(REFERENCE_SPEEDS)} reference "
                   "speeds, Hough lines, BER segments + near-identical share",
        "params": params.__dict__,
        "margins": {k: {"n": len(v), "min": min(v, default=None), "max": max(v, default=None),
                        "p01": pct(v, 0.01), "p99": pct(v, 0.99)} for k, v in margins.items()},
        "recall": {k: sum(v) / len(v) for k, v in recall.items()},
        "false_positives": {"matches": false_pos, "queries": non_queries},
        "unexpected_catalog_matches": unexpected,
        "latency_ms": {"p50": pct(latency, .5), "p95": pct(latency, .95)},
        "index_query_ms": {"p50": pct(query_ms, .5), "p95": pct(query_ms, .95)},
        "four_minute_mp3_ms": four,
        "scale": [scale_test([s.fingerprint for s in scans.values()], n, rng, args.scale_items) for n in args.scale],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"catalog {args.catalog} × {args.seconds:.0f} s, {args.noncatalog} non-catalog songs (generated); "
          f"matcher: {results['matcher']}")
    print(f"{'transform':<18}{'recall':>8}")
    for k, v in results["recall"].items():
        print(f"{k:<18}{v:8.0%}")
    mg = results["margins"]
    print(f"near-identical share: true matches min {mg['true_near_fraction']['min']}, p01 "
          f"{mg['true_near_fraction']['p01']}; best non-match max {mg['false_near_fraction']['max']} "
          f"(threshold {params.min_near_fraction})")
    fp = results["false_positives"]
    print(f"false positives: {fp['matches']} of {fp['queries']} non-catalog queries; "
          f"{len(unexpected)} matches of another catalog song in catalog queries")
    print(f"latency (decode+fingerprint+identify) p50 {results['latency_ms']['p50']:.0f} ms, "
          f"p95 {results['latency_ms']['p95']:.0f} ms; index query p50 {results['index_query_ms']['p50']:.2f} ms; "
          f"4-minute MP3 {four:.0f} ms")
    for s in results["scale"]:
        print(f"scale {s['recordings']} recordings ({s['items']} items): query p50 {s['query_ms_p50']:.1f} ms, "
              f"p95 {s['query_ms_p95']:.1f} ms, {s['bytes_per_item']:.1f} bytes/item, 15 s self-recall "
              f"{s['self_recall_15s']:.0%}")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
