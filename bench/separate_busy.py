"""Separation speed in the worker's path while other processes hold cores: what to set
`CLEARSTEM_SEPARATION_THREADS` to on a machine the worker shares.

    .venv/bin/python -m bench.separate_busy [--model NAME] [--model-dir D] [--songs 3] [--seconds 30]
        [--threads 0 1] [--busy 0 1] [--rounds 3]

One `SeparationPipeline` per `--threads` value, built as `separation.services.resident_pipeline`
builds the worker's (`PipelineConfig(threads=N)`; 0 is torch's default, every core), separates
the songs end to end (decoder process, model, stems written) with `--busy` processes spinning on
the side (`while True: pass`: a render, another job, the web process). Every condition runs once
per round, in turn, so the machine's drift hits them all; the summary is the median × real time
over `--rounds`. The songs are `clearstem.synth` renders: speed does not depend on the music.
Writes bench/results/separate_busy.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf
import torch

from bench.scratch import scratch_dir
from bench.separate_throughput import run_set
from clearstem.synth import render_song
from separation.pipeline import PipelineConfig, SeparationPipeline
from separation.registry import default_model, get_engine

ROOT = Path(__file__).resolve().parent.parent


class Busy:
    """`n` processes that spin on a core each until the block ends."""

    def __init__(self, n: int):
        self.n, self.procs = n, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        time.sleep(0.5 if self.n else 0)  # running before the clock starts
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.separate_busy")
    p.add_argument("--model", help="default: the shipped default separator")
    p.add_argument("--model-dir", default=os.environ.get("CLEARSTEM_MODEL_DIR"))
    p.add_argument("--songs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--threads", type=int, nargs="+", default=[0, 1],
                   help="torch thread counts to compare (0: torch's default, every core)")
    p.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="spinning processes beside the worker")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "separate_busy.json")
    args = p.parse_args(argv)
    if args.songs < 1 or args.seconds <= 0 or args.rounds < 1:
        p.error("--songs and --rounds must be at least 1 and --seconds above 0")
    if min(args.threads) < 0 or min(args.busy) < 0:
        p.error("--threads and --busy must be 0 or more")
    model = args.model or default_model(args.model_dir)
    engine = get_engine(model, args.model_dir, device="cpu")
    tmp = scratch_dir("clearstem-busy-")
    paths = []
    for i in range(args.songs):
        path = tmp / f"song{i}.flac"
        sf.write(path, render_song(700 + i, args.seconds).mixture.T, 44100, subtype="PCM_16")
        paths.append(path)
    audio_s = args.songs * args.seconds
    pipelines = {t: SeparationPipeline(engine, PipelineConfig(decoders=1, threads=t)) for t in args.threads}
    runs: dict[tuple[int, int], list[float]] = {(b, t): [] for b in args.busy for t in args.threads}
    try:
        for pipeline in pipelines.values():  # warm-up: first allocations, decoder start
            run_set(pipeline, paths[:1], tmp / "warm")
        for r in range(args.rounds):
            for busy in args.busy:
                with Busy(busy):
                    for t, pipeline in pipelines.items():
                        speed = audio_s / run_set(pipeline, paths, tmp / "out")
                        runs[(busy, t)].append(speed)
                        print(f"  round {r + 1}: {busy} busy, threads {t or 'default'} "
                              f"({pipeline.torch_threads}): {speed:.2f}x real time", flush=True)
        used = {t: pipeline.torch_threads for t, pipeline in pipelines.items()}
    finally:
        for pipeline in pipelines.values():
            pipeline.close()
    results = {
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__},
        "model": model, "set": {"songs": args.songs, "seconds": args.seconds, "source": "clearstem.synth renders"},
        "rounds": args.rounds,
        "conditions": [{"busy": b, "threads_setting": t, "torch_threads": used[t],
                        "x_realtime_median": statistics.median(v), "x_realtime_runs": v}
                       for (b, t), v in runs.items()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"{model}, {args.songs} songs x {args.seconds:.0f} s, {os.cpu_count()} cores, medians of {args.rounds} rounds "
          f"(x real time, worker path)")
    print("busy processes | " + " | ".join(f"threads {t or 'default'} ({used[t]})" for t in args.threads))
    for b in args.busy:
        print(f"{b:>14} | " + " | ".join(f"{statistics.median(runs[(b, t)]):>10.2f}" for t in args.threads))
    print(f"results: {args.out}")
    return results


if __name__ == "__main__":
    main()
