"""Per-stage cost of the foundation pipeline on generated songs (no database needed).

    .venv/bin/python -m bench.pipeline [--songs 5] [--seconds 60] [--repeats 3]

Stages: decode + probe + Chromaprint of a FLAC upload (one pass), a catalog query, the `dsp`
separation end to end (streaming decode → stems written). Writes bench/results/pipeline.json and prints medians as × real time.
"""
from __future__ import annotations

import argparse
import json
import platform as std_platform
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import soundfile as sf
import torch

from clearstem.synth import render_song
from fingerprint.index import MultiIndex
from fingerprint.matcher import identify
from fingerprint.scan import scan_audio
from separation.registry import get_engine
from separation.run import separate_file


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--songs", type=int, default=5)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pipeline.json")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.songs):
            path = Path(tmp) / f"song{i}.flac"
            sf.write(path, render_song(500 + i, args.seconds).mixture.T, 44100, subtype="PCM_16")
            paths.append(path)
        scans = [scan_audio(p) for p in paths]
        index = MultiIndex.build([(i, s.fingerprint) for i, s in enumerate(scans)])
        engine = get_engine("dsp")
        for i, path in enumerate(paths):
            t_scan, scan = timed(partial(scan_audio, path), args.repeats)
            t_query, matches = timed(partial(identify, index, scan.variants), args.repeats)
            t_sep, _ = timed(partial(separate_file, engine, path, Path(tmp) / f"stems{i}"), args.repeats)
            rows.append({"song": i, "seconds": scan.duration_s, "scan_s": t_scan, "query_s": t_query,
                         "separate_dsp_s": t_sep, "self_match": bool(matches and matches[0].key == i)})
    summary = {
        "machine": {"python": std_platform.python_version(), "torch_threads": torch.get_num_threads(),
                    "cpu": std_platform.processor() or std_platform.machine()},
        "params": vars(args) | {"out": str(args.out)},
        "median": {
            "scan_x_realtime": statistics.median(r["seconds"] / r["scan_s"] for r in rows),
            "query_ms": statistics.median(r["query_s"] * 1000 for r in rows),
            "dsp_x_realtime": statistics.median(r["seconds"] / r["separate_dsp_s"] for r in rows),
        },
        "self_match_rate": sum(r["self_match"] for r in rows) / len(rows),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    m = summary["median"]
    print(f"{len(rows)} songs × {args.seconds:.0f} s, median of {args.repeats} runs each "
          f"({summary['machine']['torch_threads']} torch threads)")
    print(f"  decode+probe+fingerprint : {m['scan_x_realtime']:8.1f} × real time")
    print(f"  catalog query            : {m['query_ms']:8.2f} ms")
    print(f"  dsp separation           : {m['dsp_x_realtime']:8.1f} × real time")
    print(f"  full-song self-match     : {summary['self_match_rate']:.0%}")
    print(f"results: {args.out}")
    return summary


if __name__ == "__main__":
    main()
