"""End-to-end separation throughput: compressed files in, stems written to disk, many at once.

    .venv/bin/python -m bench.separate_throughput [--songs 50] [--minutes 3 5] [--engines null hdemucs htdemucs]
        [--precision auto] [--repeats 3] [--budget-s 150] [--baseline-songs 2] [--equal-songs 2] [--long-minutes 60]

What it measures, per engine (random weights of the real networks: speed and memory do not
depend on the weight values; quality is bench.separate's job):
- × real time of `separation.pipeline` over the whole set (half MP3 at 256 kb/s, half 16-bit
  FLAC, 3–5 minutes each, 44.1 kHz stereo, each built from sections of several generated songs
  so no two files are alike), median of the repeats after one warm-up run; the profile of
  where time went; CPU seconds per run (this process and its decoders) and the × real time
  they allow on all cores, which other work on the machine does not skew; peak host RSS
  (this process plus its decoder processes, sampled every 50 ms) and peak GPU memory;
- the same files one at a time through today's per-file path (`separation.run.separate_file`)
  on `--baseline-songs` of them, for the ratio;
- equality: the pipeline's stems against the per-file path's in fp32 (24-bit output, so the
  comparison sees the arithmetic, not 16-bit rounding), and bf16 against fp32, as SNR in dB;
- the arithmetic: model GFLOP per second of audio (torch's FLOP counter on one chunk) and the
  fraction of the device's dense bf16 rate that the end-to-end figure reaches;
- one long input (`--long-minutes`) to show host and GPU memory flat in length.

The `null` engine (every stem = the input) measures the pipeline without a model: it bounds
every engine. Writes bench/results/separate_throughput.json and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
import psutil
import soundfile as sf
import torch

from bench.scratch import scratch_dir
from clearstem.synth import render_song
from separation.engine import NullEngine
from separation.pipeline import PipelineConfig, Request, SeparationPipeline, separate_many
from separation.registry import get_engine, install_model
from separation.run import separate_file

SR = 44100
STEMS = ["drums", "bass", "other", "vocals"]
BF16_DENSE_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # vendor datasheets, dense


# -- inputs -------------------------------------------------------------------------------------------

def _base_song(args) -> str:
    seed, seconds, folder = args
    path = Path(folder) / f"base{seed}.npy"
    np.save(path, render_song(seed, seconds).mixture)
    return str(path)


def _compose(args) -> str:
    """A 3–5 minute song of 15 s sections from several base songs, each at its own gain."""
    index, bases, minutes, folder, fmt = args
    rng = random.Random(index)
    parts, total = [], int(minutes * 60 * SR)
    loaded = [np.load(b, mmap_mode="r") for b in bases]
    while sum(p.shape[1] for p in parts) < total:
        src = rng.choice(loaded)
        start = rng.randrange(0, src.shape[1] - 15 * SR)
        parts.append(np.asarray(src[:, start:start + 15 * SR]) * rng.uniform(0.5, 1.0))
    audio = np.concatenate(parts, axis=1)[:, :total].astype(np.float32)
    path = Path(folder) / f"song{index:03d}.{fmt}"
    if fmt == "flac":
        sf.write(path, audio.T, SR, subtype="PCM_16")
    else:
        encode_mp3(audio, path)
    return str(path)


def encode_mp3(audio: np.ndarray, path: Path, bitrate: int = 256_000) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libmp3lame", rate=SR, layout="stereo")
        stream.bit_rate = bitrate
        for i in range(0, audio.shape[1], 1152 * 64):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, i:i + 1152 * 64]), format="fltp",
                                               layout="stereo")
            frame.sample_rate = SR
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def make_inputs(folder: Path, songs: int, minutes: tuple[float, float], long_minutes: float, workers: int) -> dict:
    rng = random.Random(0)
    with ProcessPoolExecutor(workers) as pool:
        bases = list(pool.map(_base_song, [(900 + i, 60, str(folder)) for i in range(8)]))
        jobs = [(i, bases, rng.uniform(*minutes), str(folder), "mp3" if i % 2 == 0 else "flac") for i in range(songs)]
        paths = list(pool.map(_compose, jobs))
        long = [pool.submit(_compose, (1000 + k, bases, m, str(folder), "flac"))
                for k, m in enumerate((long_minutes / 10, long_minutes))] if long_minutes else []
        long = [f.result() for f in long]
        equal = list(pool.map(_compose, [(2000 + i, bases, 1.0, str(folder), "flac") for i in range(2)]))
    return {"songs": [Path(p) for p in paths], "long": [Path(p) for p in long], "equal": [Path(p) for p in equal]}


def duration_s(path: Path) -> float:
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        return float(s.duration * s.time_base) if s.duration else float(c.duration / av.time_base)


# -- engines ------------------------------------------------------------------------------------------

def random_engines(model_dir: Path, names: list[str]) -> list[str]:
    """Install the real networks with random weights (the registry pins their hashes)."""
    from separation.hdemucs import build

    torch.manual_seed(0)
    staging = model_dir.parent / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    meta = {"stems": STEMS, "sample_rate": SR, "weights_licence": "random init (benchmark)", "training_data": "none"}
    out = []
    if "hdemucs" in names:
        torch.save(build(STEMS).state_dict(), staging / "hdemucs_high_random.pt")
        install_model(staging / "hdemucs_high_random.pt", "hdemucs", model_dir, architecture="hdemucs", **meta)
        out.append("hdemucs")
    if "htdemucs" in names:
        try:
            from demucs.htdemucs import HTDemucs
            from demucs.states import get_state
        except ImportError:
            print("demucs not importable: htdemucs skipped")
            return out
        model = HTDemucs(STEMS)
        args, kwargs = model._init_args_kwargs
        torch.save({"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None, False)},
                   staging / "cafe0001.th")
        install_model(staging / "cafe0001.th", "htdemucs", model_dir, architecture="demucs", **meta)
        out.append("htdemucs")
    return out


def load(name: str, model_dir: Path, device: str, precision: str):
    if name == "null":
        return NullEngine(device=device)
    if name == "dsp":
        return get_engine("dsp")
    return get_engine(name, str(model_dir), device=device, precision=precision)


def sync(engine) -> None:
    if engine.device.type == "cuda":
        torch.cuda.synchronize(engine.device)


def modules(engine) -> list[torch.nn.Module]:
    return [engine.module] if hasattr(engine, "module") else list(getattr(engine, "models", []))


def set_channels_last(engine, on: bool) -> None:
    """NHWC weights for the 2-D (spectrogram) convolutions, where bf16 kernels often prefer it."""
    for m in modules(engine):
        m.to(memory_format=torch.channels_last if on else torch.contiguous_format)


def sweep_batches(engine, batches: list[int], iterations: int = 3) -> dict:
    """The model alone on device-resident random input, per batch size: its ceiling in × real
    time (no decoding, copying or writing), after two untimed passes that let cudnn tune."""
    torch.backends.cudnn.benchmark = True
    params = engine.chunking(SR)
    fn = engine.tensor_fn(SR)
    out = {}
    for b in batches:
        x = torch.randn(b, 2, params.segment, device=engine.device) * 0.1
        try:
            for _ in range(2):
                fn(x)
            sync(engine)
            t0 = time.perf_counter()
            for _ in range(iterations):
                fn(x)
            sync(engine)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            break
        out[b] = iterations * b * params.stride / SR / (time.perf_counter() - t0)
        print(f"  {engine.info.name} model alone, batch {b}: {out[b]:.0f}× real time", flush=True)
    return out


def gflop_per_audio_second(engine) -> float | None:
    """Model GFLOP per second of stereo audio (convolutions and matrix products, as torch's
    FLOP counter sees them on one chunk; the STFTs are not counted)."""
    if engine.info.name in ("null", "dsp"):
        return None
    from torch.utils.flop_counter import FlopCounterMode

    params = engine.chunking(SR, batch=1)
    x = torch.randn(1, 2, params.segment, device=engine.device) * 0.1
    counter = FlopCounterMode(display=False)
    with counter:
        engine.tensor_fn(SR)(x)
    return counter.get_total_flops() / 1e9 / (params.stride / SR)


# -- measuring ----------------------------------------------------------------------------------------

class RssSampler:
    """Peak RSS of this process plus its children, sampled every 50 ms."""

    def __init__(self):
        self.peak = {"total": 0, "main": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        me = psutil.Process()
        while not self._stop.wait(0.05):
            try:
                main = me.memory_info().rss
                kids = sum(c.memory_info().rss for c in me.children(recursive=True))
            except psutil.Error:
                continue
            self.peak["main"] = max(self.peak["main"], main)
            self.peak["total"] = max(self.peak["total"], main + kids)


def cpu_seconds() -> dict:
    """CPU seconds so far of this process (driver, writers) and of its children (the decoders,
    which live as long as the pipeline). With other work on the machine, wall time says little;
    this says what the pipeline costs."""
    kids = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.Error:
            continue
        kids += t.user + t.system
    return {"main": time.process_time(), "decoders": kids}


def run_set(pipeline: SeparationPipeline, paths: list[Path], out: Path, fmt="wav", bits=16) -> float:
    t0 = time.perf_counter()
    results = separate_many(pipeline.engine, [Request(p, out / p.stem, fmt=fmt, bits=bits) for p in paths],
                            pipeline=pipeline)
    elapsed = time.perf_counter() - t0
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise RuntimeError(f"{len(errors)} files failed: {errors[0]!r}")
    return elapsed


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    err = np.sum((ref.astype(np.float64) - est) ** 2)
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(err, 1e-30)))


def compare(a_dir: Path, b_dir: Path, stems) -> float:
    """Lowest SNR over stems of `b` against `a`."""
    return min(snr_db(sf.read(a_dir / f"{s}.wav")[0], sf.read(b_dir / f"{s}.wav")[0]) for s in stems)


def bench_engine(name, args, inputs, tmp, model_dir, cuda, results) -> None:
    device = "cuda" if cuda else "cpu"
    precision = args.precision if args.precision != "auto" else ("bf16" if cuda else "fp32")
    engine = load(name, model_dir, device, precision)
    row = {"engine": name, "precision": precision}
    batch = args.batch
    if cuda and name != "null" and batch is None:
        row["model_alone_x_realtime_by_batch"] = sweep = sweep_batches(engine, args.sweep)
        batch = max(sweep, key=sweep.get) if sweep else None
        if batch and modules(engine):
            set_channels_last(engine, True)
            nhwc = sweep_batches(engine, [batch]).get(batch, 0)
            row["model_alone_channels_last"] = nhwc
            row["channels_last"] = nhwc > 1.03 * sweep[batch]
            set_channels_last(engine, row["channels_last"])
    config = PipelineConfig(decoders=args.decoders, writers=args.writers, batch=batch)
    songs = inputs["songs"]
    audio_s = sum(duration_s(p) for p in songs)
    row.update({"files": len(songs), "audio_s": audio_s})
    pipeline = SeparationPipeline(engine, config)
    try:
        t0 = time.perf_counter()
        run_set(pipeline, songs[: max(2, len(songs) // 10)], tmp / "warm")  # cudnn tunes the shapes once
        row["warmup_s"] = time.perf_counter() - t0
        pipeline.profile = type(pipeline.profile)()  # the runs' profile, without the warm-up
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        speeds, spent, cpu = [], 0.0, []
        with RssSampler() as rss:
            while len(speeds) < args.repeats and (len(speeds) < 2 or spent < args.budget_s):
                before = cpu_seconds()
                elapsed = run_set(pipeline, songs, tmp / "out")
                cpu.append({k: v - before[k] for k, v in cpu_seconds().items()})
                spent += elapsed
                speeds.append(audio_s / elapsed)
                print(f"  {name} run {len(speeds)}: {speeds[-1]:.0f}× real time ({elapsed:.1f} s; CPU "
                      f"{cpu[-1]['main']:.2f} s here, {cpu[-1]['decoders']:.2f} s decoding)", flush=True)
        stats = pipeline.stats()
        row.update({"x_realtime": statistics.median(speeds), "x_realtime_runs": speeds,
                    "profile_s_per_run": {k: v / len(speeds) for k, v in stats["seconds"].items()},
                    "batches": stats["batches"], "padded_chunks": stats["padded_chunks"], "config": stats["config"],
                    "batch_used": stats["batch_used"], "peak_host_rss_mib": rss.peak["total"] / 2**20,
                    "cpu_s_per_run": {k: statistics.median(c[k] for c in cpu) for k in cpu[0]},
                    "peak_main_rss_mib": rss.peak["main"] / 2**20,
                    "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None})
    finally:
        pipeline.close()
    row["cpu_bound_x_realtime"] = audio_s / (sum(row["cpu_s_per_run"].values()) / (os.cpu_count() or 1))
    gflop = gflop_per_audio_second(engine)
    row["model_gflop_per_audio_s"] = gflop
    if cuda and gflop:
        peak = next((v for k, v in BF16_DENSE_TFLOPS.items() if k in torch.cuda.get_device_name(0)), None)
        row["achieved_tflops"] = row["x_realtime"] * gflop / 1e3
        row["fraction_of_bf16_dense_peak"] = row["achieved_tflops"] / peak if peak else None
    # today's path, one file at a time, on a few of the same files
    if args.baseline_songs:
        base = songs[: args.baseline_songs]
        t0 = time.perf_counter()
        for p in base:
            separate_file(engine, p, tmp / "base" / p.stem, bits=16)
        if cuda:
            torch.cuda.synchronize()
        row["per_file_path_x_realtime"] = sum(duration_s(p) for p in base) / (time.perf_counter() - t0)
        row["speedup_over_per_file_path"] = row["x_realtime"] / row["per_file_path_x_realtime"]
    if args.equal_songs and name != "null":
        row["equality"] = equality(name, args, inputs, tmp, model_dir, device, precision)
    if inputs["long"]:
        row["long"] = long_in_fresh_process(name, args, tmp, batch, row.get("channels_last", False))
    results["runs"].append(row)


def equality(name, args, inputs, tmp, model_dir, device, precision) -> dict:
    """The pipeline's stems against today's per-file path in fp32, and bf16 against fp32."""
    fp32 = load(name, model_dir, device, "fp32")
    out = {}
    lows = []
    for p in inputs["equal"][: args.equal_songs]:
        separate_file(fp32, p, tmp / "eq-old" / p.stem, bits=24)
        separate_many(fp32, [Request(p, tmp / "eq-new" / p.stem, bits=24)], PipelineConfig(decoders=1))
        lows.append(compare(tmp / "eq-old" / p.stem, tmp / "eq-new" / p.stem, fp32.info.stems))
    out["fp32_pipeline_vs_per_file_min_snr_db"] = min(lows)
    if precision != "fp32":
        low = load(name, model_dir, device, precision)
        lows = []
        for p in inputs["equal"][: args.equal_songs]:
            separate_many(low, [Request(p, tmp / "eq-low" / p.stem, bits=24)], PipelineConfig(decoders=1))
            lows.append(compare(tmp / "eq-new" / p.stem, tmp / "eq-low" / p.stem, fp32.info.stems))
        out[f"{precision}_vs_fp32_min_snr_db"] = min(lows)
    return out


def long_in_fresh_process(name, args, tmp, batch, channels_last) -> list[dict]:
    """The long inputs in a process that has run nothing else (its peak RSS is theirs alone),
    with two decoders: one file needs one."""
    out = tmp / f"long-{name}.json"
    cmd = [sys.executable, "-m", "bench.separate_throughput", "--long-only", name, "--tmp", str(tmp),
           "--out", str(out), "--precision", args.precision, "--device", args.device]
    if batch:
        cmd += ["--batch", str(batch)]
    if channels_last:
        cmd += ["--channels-last"]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def long_inputs(engine, config, paths, tmp, cuda) -> list[dict]:
    rows = []
    for p in paths:
        pipeline = SeparationPipeline(engine, config)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            with RssSampler() as rss:
                elapsed = run_set(pipeline, [p], tmp / "long")
        finally:
            pipeline.close()
        rows.append({"minutes": duration_s(p) / 60, "x_realtime": duration_s(p) / elapsed,
                     "peak_host_rss_mib": rss.peak["total"] / 2**20,
                     "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None})
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--songs", type=int, help="default 50 on CUDA, 6 on CPU")
    p.add_argument("--minutes", type=float, nargs=2, help="length range; default 3–5 on CUDA, 1–2 on CPU")
    p.add_argument("--engines", nargs="+", help="default null hdemucs htdemucs on CUDA, null dsp hdemucs on CPU")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget-s", type=float, default=150, help="stop repeating after this much (at least 2 runs)")
    p.add_argument("--decoders", type=int, default=0)
    p.add_argument("--writers", type=int, default=0)
    p.add_argument("--batch", type=int, help="chunks per forward pass (default on CUDA: the best of --sweep)")
    p.add_argument("--sweep", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--baseline-songs", type=int, default=2)
    p.add_argument("--equal-songs", type=int, default=2)
    p.add_argument("--long-minutes", type=float, help="default 60 on CUDA, 10 on CPU")
    p.add_argument("--long-only", metavar="ENGINE", help=argparse.SUPPRESS)
    p.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tmp", type=Path, help="where inputs and stems go (default: a new temporary folder)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "separate_throughput.json")
    args = p.parse_args(argv)
    cuda = torch.cuda.is_available() and args.device != "cpu"
    args.songs = args.songs or (50 if cuda else 6)
    args.minutes = args.minutes or ((3.0, 5.0) if cuda else (1.0, 2.0))
    args.engines = args.engines or (["null", "hdemucs", "htdemucs"] if cuda else ["null", "dsp", "hdemucs"])
    if args.long_minutes is None:
        args.long_minutes = 60.0 if cuda else 10.0
    tmp = args.tmp or scratch_dir("clearstem-throughput-")
    tmp.mkdir(parents=True, exist_ok=True)
    if args.long_only:
        return run_long_only(args, tmp, cuda)
    t0 = time.perf_counter()
    inputs = make_inputs(tmp, args.songs, tuple(args.minutes), args.long_minutes, max(1, (os.cpu_count() or 2)))
    results = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "cpus": os.cpu_count(),
               "torch": torch.__version__, "inputs_s": time.perf_counter() - t0,
               "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "runs": []}
    print(f"{results['device']}, {os.cpu_count()} CPUs, torch {torch.__version__}; {len(inputs['songs'])} songs "
          f"made in {results['inputs_s']:.0f} s", flush=True)
    names = [n for n in args.engines if n in ("null", "dsp")] + random_engines(tmp / "models", args.engines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        bench_engine(name, args, inputs, tmp, tmp / "models", cuda, results)
        args.out.write_text(json.dumps(results, indent=2))
        summarise(results["runs"][-1])
    print(f"results: {args.out}")
    return results


def run_long_only(args, tmp: Path, cuda: bool) -> list[dict]:
    device = "cuda" if cuda else "cpu"
    precision = args.precision if args.precision != "auto" else ("bf16" if cuda else "fp32")
    engine = load(args.long_only, tmp / "models", device, precision)
    set_channels_last(engine, args.channels_last)
    paths = [p for p in (tmp / "song1000.flac", tmp / "song1001.flac") if p.exists()]
    rows = long_inputs(engine, PipelineConfig(decoders=2, batch=args.batch), paths, tmp, cuda)
    args.out.write_text(json.dumps(rows))
    return rows


def summarise(r: dict) -> None:
    prof = r["profile_s_per_run"]
    line = (f"{r['engine']:<9} {r['precision']:<5} {r['files']} files, {r['audio_s'] / 60:.0f} min: "
            f"median {r['x_realtime']:.0f}× real time (runs {', '.join(f'{x:.0f}' for x in r['x_realtime_runs'])})")
    if "per_file_path_x_realtime" in r:
        line += f"; per-file path {r['per_file_path_x_realtime']:.0f}× ({r['speedup_over_per_file_path']:.1f}× faster)"
    print(line)
    print("          per run: " + ", ".join(f"{k} {v:.2f} s" for k, v in prof.items()))
    cpu = r["cpu_s_per_run"]
    print(f"          CPU per run: {cpu['main']:.2f} s in this process, {cpu['decoders']:.2f} s decoding = "
          f"{1000 * sum(cpu.values()) / r['audio_s']:.2f} ms per audio second; all cores on it: "
          f"{r['cpu_bound_x_realtime']:.0f}× real time")
    print(f"          peak host RSS {r['peak_host_rss_mib']:.0f} MiB (main {r['peak_main_rss_mib']:.0f}), "
          f"GPU {r['peak_gpu_mib'] or 0:.0f} MiB; batches {r['batches']}, padded chunks {r['padded_chunks']}")
    if r.get("model_gflop_per_audio_s"):
        frac = r.get("fraction_of_bf16_dense_peak")
        print(f"          model {r['model_gflop_per_audio_s']:.1f} GFLOP per audio second"
              + (f"; {r['achieved_tflops']:.1f} TFLOP/s achieved = {frac:.1%} of dense bf16 peak" if frac else ""))
    if "equality" in r:
        print("          equality: " + ", ".join(f"{k} {v:.1f}" for k, v in r["equality"].items()))
    for lr in r.get("long", []):
        print(f"          {lr['minutes']:.1f}-minute input: {lr['x_realtime']:.0f}× real time, peak host RSS "
              f"{lr['peak_host_rss_mib']:.0f} MiB, GPU {lr['peak_gpu_mib'] or 0:.0f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
