"""Landmark index at catalog scale (issue 17): memory, bytes per reference second, query latency
and whether the true recording is still found, with derived references.

    .venv/bin/python -m bench.landmark_scale [--sizes 1000 10000] [--queries 40]

Base references are the bench.mixtures tracks already rendered under var/bench-cache/mixtures
(run `python -m bench.mixtures --quick` first). A *derived* reference is a base reference moved
up or down by k frequency bins (its hashes' f1 field and its peaks; Δf unchanged) and played at
a tempo between 0.9 and 1.1 (Δt and times scaled), so the hash-value distribution stays that of
real music, unlike random hashes — but derived references are more alike than a real catalog's
recordings, so collisions are if anything overstated. The index is built by counting sort
(`build_index`, the same segment as `LandmarkIndex.build`; derived references are made twice
and never all held), so 100k recordings (billions of hashes) build in minutes. `--disk DIR`
writes each index as the product's segment files and memory-maps them, as a worker does: an
index larger than the machine's memory is then served through the page cache, and the bench
reports the first pass over the queries (cold pages) beside the second (a serving worker's
steady state) and the process's resident memory. `--save-inputs` writes the base and query
prints, `--inputs` reads them on another machine (it needs numpy and scipy, no audio).
Queries are 15 s excerpts of base tracks, two base tracks overlaid at equal level (both must be
found) and a base track 12 dB under another (the quiet one must be found), extracted as the
product does; a recording found that is in neither track of a query counts as wrong (a derived
reference of one of them — the same music shifted in pitch and tempo — is counted apart);
matching time excludes extraction (measured by bench.mixtures). Matching runs at the product's
hit bound (`landmarks.HITS_PER_HASH`: the rarest hash values of the query kept first, at most
that many hits per query hash on average, so a query's cost stops growing with the catalog);
`--hits-per-hash` and `--budgets` (`landmarks.HIT_BUDGET`, hits per lookup) repeat it at other
bounds (0 = none). Without `--disk`, sizes over `--max-entries` are not built but
extrapolated from the measured bytes per reference second, and say so.

Writes bench/results/landmark_scale.json and prints a summary.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fingerprint import landmarks as lm  # noqa: E402

CACHE = ROOT / "var" / "bench-cache" / "mixtures" / "audio"
F_SHIFT = lm.DF_BITS + lm.DT_BITS
F_MASK = (1 << lm.F_BITS) - 1
DT_MASK = (1 << lm.DT_BITS) - 1
DF_FIELD = ((1 << lm.DF_BITS) - 1) << lm.DT_BITS
#: Tempi of derived references (with 120 bin shifts and 60 bases: 151k distinct references,
#: so 100k derived ones are not copies of each other, whose identical postings would
#: overstate how common every value is).
TEMPI = tuple(round(0.9 + 0.01 * i, 2) for i in range(21))


def mono11k(path: Path) -> np.ndarray:
    import soundfile as sf  # only where audio is read (not on a machine given --inputs)
    from scipy.signal import resample_poly

    audio, rate = sf.read(path, always_2d=True, dtype="float32")
    x = resample_poly(audio.mean(axis=1), 1, rate // 11025 if rate % 11025 == 0 else 4)
    return np.clip(x * 32768, -32768, 32767).astype(np.int16)


def derive(ref: tuple, k: int, tempo: float = 1.0) -> tuple:
    """The reference moved by k bins (f1 of every hash and the bin of every peak) and played at
    `tempo` (Δt of every hash, times of hashes and peaks); entries that leave the band or the
    target zone are dropped."""
    h, t, peaks = ref
    f = (h >> F_SHIFT).astype(np.int64) + k
    dt = np.rint((h & DT_MASK) * tempo).astype(np.int64)
    ok = (f >= 0) & (f <= F_MASK) & (dt >= 1) & (dt <= DT_MASK)
    h2 = (f[ok].astype(np.uint32) << F_SHIFT) | (h[ok] & np.uint32(DF_FIELD)) | dt[ok].astype(np.uint32)
    t2 = np.rint(t[ok] * tempo).astype(np.uint32)
    pb = (peaks & 0x1FF).astype(np.int64) + k
    pok = (pb >= 0) & (pb < lm.N_BINS)
    frames = np.rint((peaks[pok] >> lm.PEAK_T_SHIFT) * tempo).astype(np.uint32)
    p2 = (frames << lm.PEAK_T_SHIFT) | (peaks[pok] & np.uint32(lm.PEAK_TONAL_BIT)) | pb[pok].astype(np.uint32)
    return h2, t2, p2

def make_inputs(bases: int, n_queries: int):
    """Base reference prints, their seconds, and the query prints, from the rendered tracks."""
    files = sorted(CACHE.glob("*.flac"))[:bases]
    if len(files) < 4:
        raise SystemExit("no rendered tracks under var/bench-cache/mixtures: run `python -m bench.mixtures --quick` first")
    pcm = [mono11k(f) for f in files]
    refs = [lm.reference_print(x) for x in pcm]
    seconds = np.array([x.size / lm.RATE for x in pcm])
    rng = np.random.default_rng(5)
    n15 = 15 * lm.RATE

    def clip15(b):
        start = int(rng.uniform(0, max(1, pcm[b].size - n15)))
        x = pcm[b][start: start + n15].astype(np.float32)
        return x / (np.sqrt(np.mean(x ** 2)) + 1e-9)

    def as_pcm(x):
        return np.clip(x / np.abs(x).max() * 0.5 * 32767, -32768, 32767).astype(np.int16)

    queries = []  # (kind, truth: must be found, sources: every base track in it, print)
    for _ in range(n_queries):
        a, b = (int(v) for v in rng.choice(len(pcm), 2, replace=False))
        xa, xb = clip15(a), clip15(b)
        queries.append(("excerpt_15s", [a], [a], lm.query_print(as_pcm(xa))))
        queries.append(("mix_equal", [a, b], [a, b], lm.query_print(as_pcm(xa + xb))))
        queries.append(("under_12", [a], [a, b], lm.query_print(as_pcm(xa * 10 ** (-12 / 20) + xb))))
    return refs, seconds, queries


def save_inputs(path: Path, refs, seconds, queries) -> None:
    arrays = {"seconds": seconds, "kinds": np.array([q[0] for q in queries]),
              "truths": np.array([q[1] + [-1] * (2 - len(q[1])) for q in queries]),
              "sources": np.array([q[2] + [-1] * (2 - len(q[2])) for q in queries])}
    for i, (h, t, p) in enumerate(refs):
        arrays |= {f"ref{i}_h": h, f"ref{i}_t": t, f"ref{i}_p": p}
    for i, (_, _, _, (h, t, m)) in enumerate(queries):
        arrays |= {f"q{i}_h": h, f"q{i}_t": t, f"q{i}_m": m}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_inputs(path: Path):
    z = np.load(path)
    seconds = z["seconds"]
    refs = [(z[f"ref{i}_h"], z[f"ref{i}_t"], z[f"ref{i}_p"]) for i in range(seconds.size)]
    sources = z["sources"] if "sources" in z else z["truths"]  # files saved before sources were
    queries = [(str(kind), [int(x) for x in truth if x >= 0], [int(x) for x in src if x >= 0],
                (z[f"q{i}_h"], z[f"q{i}_t"], z[f"q{i}_m"]))
               for i, (kind, truth, src) in enumerate(zip(z["kinds"], z["truths"], sources))]
    return refs, seconds, queries


def _radix_order(v: np.ndarray) -> np.ndarray:
    """Stable order of values below 2**28: two stable sorts of 16-bit keys (numpy sorts those
    by radix, in linear time), low 12 bits first."""
    o = np.argsort((v & 0xFFF).astype(np.uint16), kind="stable")
    return o[np.argsort((v[o] >> 12).astype(np.uint16), kind="stable")]


def build_index(n: int, member, out_dir: Path | None = None, batch: int = 2000,
                pass_bytes: int | None = None) -> lm.LandmarkIndex:
    """The same segment as `lm.LandmarkIndex.build([member(j) for j in range(n)])` (entries of one
    hash value in member order, then time order; `member(j)` -> (key, hashes, times, peaks),
    computed twice and never all held), by counting sort in batches of members: linear time.
    With `out_dir` the arrays are written there as the product stores a segment (.npy files,
    then memory-mapped by `LandmarkIndex.load`), so an index larger than the machine's memory
    is built and queried through the page cache as a worker would; without it, in memory.
    `pass_bytes` bounds the postings placed per pass over the members (a range of hash values
    whose postings fit in memory; the members are derived again for each pass), so
    the writes of a larger-than-memory index stay within pages that are resident."""
    nb = 1 << lm.HASH_BITS
    counts = np.zeros(nb, np.int64)
    peak_sizes, spans = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for i in range(0, n, batch):
        group = [member(j) for j in range(i, min(n, i + batch))]
        counts += np.bincount(np.concatenate([m[1] for m in group]), minlength=nb)
        peak_sizes[i:i + len(group)] = [m[3].size for m in group]
        spans[i:i + len(group)] = [lm.LandmarkIndex.spans(np.asarray(m[2])) for m in group]
    buckets = np.concatenate([np.zeros(1, np.int64), np.cumsum(counts)])
    peak_starts = np.concatenate([np.zeros(1, np.int64), np.cumsum(peak_sizes)])
    frame_starts = np.concatenate([np.zeros(1, np.int64), np.cumsum(spans)])
    if frame_starts[-1] > lm.LandmarkIndex.MAX_FRAMES:
        raise ValueError(f"{n} members span {frame_starts[-1]} frames, more than one segment holds")
    total = int(buckets[-1])
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

        def array(name, size, dtype):
            return np.lib.format.open_memmap(out_dir / f"{name}.npy", mode="w+", dtype=dtype, shape=(size,))
    else:
        def array(name, size, dtype):
            return np.empty(size, dtype)
    post = array("post", total, np.uint32)
    peaks, keys = array("peaks", int(peak_starts[-1]), np.uint32), array("keys", n, np.int64)
    cursor = buckets[:-1].copy()
    # value ranges [lo, hi) whose postings (4 bytes each) fit in pass_bytes
    edges = [0]
    if pass_bytes:
        while edges[-1] < nb:
            limit = buckets[edges[-1]] + max(pass_bytes // 4, 1)
            edges.append(max(int(np.searchsorted(buckets, limit, side="right")) - 1, edges[-1] + 1))
            edges[-1] = min(edges[-1], nb)
    else:
        edges.append(nb)
    for p, (vlo, vhi) in enumerate(zip(edges[:-1], edges[1:])):
        for i in range(0, n, batch):
            group = [member(j) for j in range(i, min(n, i + batch))]
            v = np.concatenate([m[1] for m in group])
            t = np.concatenate([np.asarray(m[2], np.int64) for m in group])
            t += np.repeat(frame_starts[i:i + len(group)], [m[1].size for m in group])
            if len(edges) > 2:
                sel = (v >= vlo) & (v < vhi)
                v, t = v[sel], t[sel]
            if v.size:
                o = _radix_order(v)
                sv = v[o]
                first = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]])
                run = np.diff(np.r_[first, sv.size])
                pos = cursor[sv] + (np.arange(sv.size) - np.repeat(first, run))
                post[pos] = t[o]
                cursor[sv[first]] += run
            if p == 0:
                keys[i:i + len(group)] = [m[0] for m in group]
                peaks[peak_starts[i]:peak_starts[i + len(group)]] = np.concatenate(
                    [np.asarray(m[3], np.uint32) for m in group])
        if out_dir is not None:
            post.flush()
    where = {"buckets": buckets} if total >= lm.BUCKET_MIN_HASHES else {"values": np.repeat(np.arange(nb, dtype=np.uint32), counts)}
    if out_dir is None:
        return lm.LandmarkIndex({**where, "post": post, "frame_starts": frame_starts, "keys": keys, "peaks": peaks,
                                 "peak_starts": peak_starts})
    for name, arr in (*where.items(), ("peak_starts", peak_starts), ("frame_starts", frame_starts)):
        np.save(out_dir / f"{name}.npy", arr)
    for arr in (post, peaks, keys):
        arr.flush()
    del post, peaks, keys
    return lm.LandmarkIndex.load(out_dir)


def _status_kib(field: str, path: str = "/proc/self/status") -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_bytes() -> int:
    """Resident memory of this process now (mapped index pages it has touched included)."""
    return 1024 * _status_kib("VmRSS")


def _memory_bytes() -> int:
    return 1024 * _status_kib("MemTotal", "/proc/meminfo")


@functools.lru_cache(maxsize=1)
def _base_chromaprints(bases: int) -> list[np.ndarray]:
    from fingerprint.scan import scan_audio

    return [scan_audio(str(f)).fingerprint for f in sorted(CACHE.glob("*.flac"))[:bases]]


def chromaprint_store(n: int, items: int, bases: int, rng: np.random.Generator, tmp: Path):
    """A Chromaprint index of `n` derived recordings of `items` items (bench.identify's
    `derived_fingerprints`, from the Chromaprint prints of the base tracks), written as the
    product's sync writes it (batches of 5,000, then `IndexStore.settle`) and memory-mapped, as
    a worker reads it."""
    from bench.identify import derived_fingerprints
    from fingerprint.index import IndexStore

    real = _base_chromaprints(bases)
    store = IndexStore(tmp)
    refs = []
    with store.write_lock():
        for start in range(0, n, 5000):  # in batches: memory stays that of one batch
            batch = list(zip(range(start, min(n, start + 5000)),
                             derived_fingerprints(real, min(n, start + 5000) - start, rng, items)))
            store.apply(add=batch)
            refs += [fp[:200].copy() for _, fp in batch[:50]]  # query material
        store.settle()  # as fingerprint.services does after a bulk load
    return IndexStore(tmp).index(), refs


def time_side_by_side(index, speeds, cp_refs, queries, rng: np.random.Generator) -> dict:
    """Per landmark query, the product's two lookups — Chromaprint (`speeds`: [(reference speed,
    Chromaprint index)], as `fingerprint.matcher.identify_speeds` takes them) at every reference speed for
    the query's two variants (a 15 s excerpt of a derived print: the timing, not the music,
    matters here) and the landmark match — alone, one after the other, and side by side
    (`fingerprint.fusion.side_by_side`, as `fingerprint.services.identify_query` runs them);
    the order of the last two alternates per query."""
    from functools import partial

    from fingerprint.fusion import side_by_side
    from fingerprint.matcher import identify_speeds
    from fingerprint.scan import QUERY_VARIANTS

    t: dict = {"chromaprint": [], "landmarks": [], "one_after_the_other": [], "side_by_side": []}
    for i, (_, _, _, (h, tm, pmap)) in enumerate(queries * 2):  # two passes: the second is steady state
        a, b = (cp_refs[int(rng.integers(0, len(cp_refs)))] for _ in range(2))
        variants = [(1.0, a[:121]), *zip(QUERY_VARIANTS, [b[:121]])]
        cp = partial(identify_speeds, speeds, variants)
        lmk = partial(lm.match_landmarks, index.lookup, h, tm, peaks=index.peaks_of, query_map=pmap)
        row = {}
        for name, call in (("chromaprint", cp), ("landmarks", lmk)):
            t0 = time.perf_counter()
            call()
            row[name] = time.perf_counter() - t0
        order = [("one_after_the_other", lambda cp=cp, lmk=lmk: (cp(), lmk())),
                 ("side_by_side", partial(side_by_side, cp, lmk))]
        for name, call in (order if i % 2 else order[::-1]):
            t0 = time.perf_counter()
            call()
            row[name] = time.perf_counter() - t0
        if i >= len(queries):
            for k, v in row.items():
                t[k].append(v * 1000)
    return {k: {"p50": round(float(np.percentile(v, 50)), 1), "p95": round(float(np.percentile(v, 95)), 1)}
            for k, v in t.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--bases", type=int, default=60, help="rendered tracks used as base references")
    ap.add_argument("--max-entries", type=float, default=1.2e9, help="largest index built in memory (entries)")
    ap.add_argument("--budgets", type=int, nargs="*", default=[], help="HIT_BUDGET values to try besides none")
    ap.add_argument("--hits-per-hash", type=float, nargs="*", default=[lm.HITS_PER_HASH or 0],
                    help="HITS_PER_HASH values to try (0 = no bound); the product's default first")
    ap.add_argument("--save-inputs", type=Path, help="also write the base prints and query prints here (.npz)")
    ap.add_argument("--inputs", type=Path, help="read them from here instead of decoding audio (another machine)")
    ap.add_argument("--disk", type=Path, help="build each index as segment files here and memory-map them, as a worker "
                    "does (sizes larger than memory; needs the index's size free on disk)")
    ap.add_argument("--keep", action="store_true", help="keep the segment files built under --disk")
    ap.add_argument("--reuse", action="store_true", help="with --disk: use a segment a run with the same inputs, "
                    "size and --bases left there (--keep) instead of building it again")
    ap.add_argument("--pass-bytes", type=int, help="postings placed per pass with --disk (default: a third of the "
                    "available memory)")
    ap.add_argument("--side-by-side", action="store_true",
                    help="also build a Chromaprint index of as many derived recordings (memory-mapped, under a "
                    "temporary folder) and time both matchers alone, one after the other and side by side")
    ap.add_argument("--chromaprint-stores", type=int, default=0,
                    help="with --side-by-side: Chromaprint stores of n recordings each, one per reference speed as "
                    "the product keeps them (default: 1 + len(REFERENCE_SPEEDS)); 1 looks one store up at every speed")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "landmark_scale.json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.inputs:
        refs, seconds, queries = load_inputs(args.inputs)
    else:
        refs, seconds, queries = make_inputs(args.bases, args.queries)
    print(f"{len(refs)} base references, {seconds.sum():.0f} s, {len(queries)} queries, "
          f"prints in {time.perf_counter() - t0:.1f} s")
    if args.save_inputs:
        save_inputs(args.save_inputs, refs, seconds, queries)
    hashes_per_s = sum(r[0].size for r in refs) / seconds.sum()
    peaks_per_s = sum(r[2].size for r in refs) / seconds.sum()
    bytes_per_s = 4 * hashes_per_s + 4 * peaks_per_s  # a bucketed (large) segment: one uint32 per posting and peak
    rng = np.random.default_rng(5)
    summary = {"base_references": len(refs), "base_seconds": round(float(seconds.sum()), 1),
               "ref_hashes_per_s": round(hashes_per_s, 1), "ref_peaks_per_s": round(peaks_per_s, 1),
               "bytes_per_reference_second": round(bytes_per_s, 1),
               "query_hashes_per_s": round(float(np.mean([q[3][0].size for q in queries])) / 15, 1),
               "max_postings": lm.MAX_POSTINGS, "product_hits_per_hash": lm.HITS_PER_HASH, "sizes": {}}
    avg_s = float(seconds.mean())
    for n in args.sizes:
        entries = n * avg_s * hashes_per_s
        row = {"recordings": n, "reference_seconds": round(n * avg_s), "index_bytes_estimate": int(n * avg_s * bytes_per_s)}
        if entries > args.max_entries and args.disk is None:
            row["built"] = False
            row["note"] = f"not built: {entries / 1e9:.1f} G entries exceed --max-entries; bytes extrapolated"
            summary["sizes"][str(n)] = row
            print(f"{n:>7} recordings: {row['note']}")
            continue
        t1 = time.perf_counter()
        # members 0..bases-1 are the base references, the rest (base, bin shift, tempo), derived
        # when built; keys are a random permutation, so the base references' keys are spread
        # among the derived ones (candidates tied on votes are taken in key order: base
        # references on the lowest keys would win every tie and overstate recall)
        specs = [(int(rng.integers(0, len(refs))), int(rng.choice([s for s in range(-60, 61) if s])),
                  float(rng.choice(TEMPI))) for _ in range(n - len(refs))]
        key_of = np.random.default_rng(n).permutation(n)
        base_of = np.r_[np.arange(len(refs)), [sp[0] for sp in specs]].astype(np.int64)[np.argsort(key_of)]

        def member(j, refs=refs, specs=specs, key_of=key_of):
            base = refs[j] if j < len(refs) else derive(refs[specs[j - len(refs)][0]], *specs[j - len(refs)][1:])
            return (int(key_of[j]), *base)

        seg_dir, built_with, reused = None, None, False
        if args.disk is not None:
            seg_dir = args.disk / f"seg-{n}"
            # what the segment was derived from: the same inputs, size and bases give the same members
            built_with = {"recordings": n, "bases": len(refs), "format": list(lm.LandmarkIndex.FILES),
                          "inputs_sha256": hashlib.sha256(b"".join(r[0].tobytes() for r in refs)).hexdigest()}
            stamp = seg_dir / "built_with.json"
            reused = args.reuse and stamp.exists() and json.loads(stamp.read_text()) == built_with
            if not reused:
                shutil.rmtree(seg_dir, ignore_errors=True)
        # on disk: postings placed a third of the available memory at a time
        pass_bytes = args.pass_bytes or (1024 * _status_kib("MemAvailable", "/proc/meminfo") // 3 if seg_dir else None)
        if reused:
            index = lm.LandmarkIndex.load(seg_dir)
            print(f"{n:>7} recordings: reusing the segment in {seg_dir}", flush=True)
        else:
            index = build_index(n, member, seg_dir, pass_bytes=pass_bytes)
            if seg_dir is not None:
                (seg_dir / "built_with.json").write_text(json.dumps(built_with))
        build_s = time.perf_counter() - t1
        counts = index.value_counts()
        print(f"{n:>7} recordings: built in {build_s:.0f} s, {index.entries / 1e9:.2f} G hashes"
              + (f", memory-mapped from {seg_dir}" if seg_dir else ""), flush=True)
        row.update(built=True, reused=bool(reused), index_bytes=int(index.nbytes()), build_s=round(build_s, 1),
                   memory_mapped=seg_dir is not None, machine_memory_bytes=_memory_bytes(),
                   values_over_max_postings=int((counts > lm.MAX_POSTINGS).sum()),
                   entries_in_capped_values=round(float(counts[counts > lm.MAX_POSTINGS].sum() / counts.sum()), 3),
                   by_budget={})
        default_hph = lm.HITS_PER_HASH
        trials = [("hits_per_hash", h or None) for h in args.hits_per_hash] + [("hit_budget", b) for b in args.budgets]
        for what, bound in trials:
            lm.HITS_PER_HASH = bound if what == "hits_per_hash" else None
            lm.HIT_BUDGET = bound if what == "hit_budget" else None
            # two passes: the first meets pages the build left cold (a worker just started),
            # the second is a serving worker's steady state; both are reported
            passes = []
            for _ in range(2):
                times, hits, found, wrong, copies = [], [], {}, [], []
                for kind, truth, sources, (h, t, pmap) in queries:
                    keys, _, _ = index.lookup(h)
                    t2 = time.perf_counter()
                    matches, _ = lm.match_landmarks(index.lookup, h, t, peaks=index.peaks_of, query_map=pmap)
                    times.append((time.perf_counter() - t2) * 1000)
                    hits.append(int(keys.size))
                    keys_found = {m.key for m in matches}
                    found.setdefault(kind, []).append({int(key_of[x]) for x in truth} <= keys_found)
                    # a recording found that is not in the query: a wrong recording, or (a
                    # derived reference of a base track that is in it) a pitch- and tempo-
                    # shifted copy of the music playing, reported apart
                    others = {k for k in keys_found if k not in {int(key_of[x]) for x in sources}}
                    copies.append(sum(int(base_of[k]) in sources for k in others))
                    wrong.append(len(others) - copies[-1])
                passes.append(times)
            cold = passes[0]
            res = {"match_ms_p50": round(float(np.percentile(times, 50)), 1),
                   "match_ms_p95": round(float(np.percentile(times, 95)), 1),
                   "first_pass_ms_p50": round(float(np.percentile(cold, 50)), 1),
                   "first_pass_ms_p95": round(float(np.percentile(cold, 95)), 1),
                   "process_rss_bytes": _rss_bytes(),
                   "hits_per_query_p50": int(np.median(hits)), "hits_per_query_p95": int(np.percentile(hits, 95)),
                   "recall": {k: round(float(np.mean(v)), 3) for k, v in found.items()},
                   "queries_with_wrong_recordings": int(np.count_nonzero(wrong)),
                   "queries_with_shifted_copies_of_a_source": int(np.count_nonzero(copies))}
            row["by_budget"][f"{what}={bound}"] = res
            print(f"{n:>7} recordings, {what} {bound}: index {row['index_bytes'] / 2**30:.2f} GiB, match p50 "
                  f"{res['match_ms_p50']} ms p95 {res['match_ms_p95']} ms (first pass p95 {res['first_pass_ms_p95']} ms), "
                  f"{res['hits_per_query_p50']} hits/query, recall {res['recall']}, wrong in "
                  f"{res['queries_with_wrong_recordings']} queries (shifted copies of a source in "
                  f"{res['queries_with_shifted_copies_of_a_source']}), RSS {res['process_rss_bytes'] / 2**30:.1f} GiB")
        lm.HITS_PER_HASH = default_hph
        lm.HIT_BUDGET = None
        if args.side_by_side:
            from fingerprint.scan import ITEM_SECONDS, REFERENCE_SPEEDS

            tmp = Path(tempfile.mkdtemp(prefix="clearstem-cpscale-"))
            t1 = time.perf_counter()
            all_speeds = (1.0, *REFERENCE_SPEEDS)
            n_stores = min(args.chromaprint_stores or len(all_speeds), len(all_speeds))
            stores = [chromaprint_store(n, int(avg_s / ITEM_SECONDS), args.bases, rng, tmp / str(i)) for i in range(n_stores)]
            speeds = [(sp, stores[i if n_stores > 1 else 0][0]) for i, sp in enumerate(all_speeds)]
            cp_refs = stores[0][1]
            row.update(chromaprint_build_s=round(time.perf_counter() - t1, 1), chromaprint_stores=n_stores,
                       chromaprint_bytes=sum(f.stat().st_size for f in tmp.rglob("*.npy")))
            print(f"{n:>7} recordings: {n_stores} Chromaprint store(s), {row['chromaprint_bytes'] / 2**30:.2f} GiB, "
                  f"built in {row['chromaprint_build_s']:.0f} s", flush=True)
            row["matchers_ms"] = time_side_by_side(index, speeds, cp_refs, queries, rng)
            print(f"{n:>7} recordings, both matchers (ms, p50/p95): "
                  + ", ".join(f"{k} {v['p50']}/{v['p95']}" for k, v in row["matchers_ms"].items()), flush=True)
            del stores, speeds
            shutil.rmtree(tmp)
        summary["sizes"][str(n)] = row
        del index
        if seg_dir is not None and not args.keep:
            shutil.rmtree(seg_dir)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))  # after each size: a long run keeps what it measured
    print(f"bytes per reference second {bytes_per_s:.0f} ({hashes_per_s:.0f} hashes/s x 4 B + {peaks_per_s:.0f} peaks/s x 4 B)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"results: {args.out}")
    return summary


if __name__ == "__main__":
    main()
