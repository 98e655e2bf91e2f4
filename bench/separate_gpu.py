"""Separation speed and GPU memory of the neural engines on an accelerator.

    .venv/bin/python -m bench.separate_gpu [--device auto] [--seconds 60] [--songs 3] [--long-minutes 10]

Runs the product's streaming path (`separation.run.separate_file`: decode → chunked, batched
overlap-add inference → stem writers) on generated songs, for the real hdemucs_high and
HTDemucs (v4, default architecture) networks with *random* weights — speed and memory do not
depend on the weight values; quality is bench.separate's job and needs real checkpoints.
Per engine × precision × batch: median × real time over the songs (after one warm-up), peak
GPU memory (torch.cuda.max_memory_allocated), and one long input to show memory does not grow
with length. Writes bench/results/separate_gpu.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clearstem.synth import render_song  # noqa: E402
from separation.registry import get_engine, install_model  # noqa: E402
from separation.run import separate_file  # noqa: E402

STEMS = ["drums", "bass", "other", "vocals"]
SR = 44100


def random_models(model_dir: Path) -> list[str]:
    from separation.hdemucs import build

    torch.manual_seed(0)
    staging = model_dir.parent / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    meta = {"stems": STEMS, "sample_rate": SR, "weights_licence": "random init (benchmark)", "training_data": "none"}
    torch.save(build(STEMS).state_dict(), staging / "hdemucs_high_random.pt")
    install_model(staging / "hdemucs_high_random.pt", "hdemucs_high_random", model_dir, architecture="hdemucs", **meta)
    names = ["hdemucs_high_random"]
    try:
        from demucs.htdemucs import HTDemucs
        from demucs.states import get_state
    except ImportError:
        print("demucs not importable: HTDemucs skipped")
        return names
    model = HTDemucs(STEMS)
    args, kwargs = model._init_args_kwargs
    torch.save({"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None, False)},
               staging / "cafe0001.th")
    install_model(staging / "cafe0001.th", "htdemucs_random", model_dir, architecture="demucs", **meta)
    return names + ["htdemucs_random"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="auto")
    p.add_argument("--songs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--long-minutes", type=float, default=10)
    p.add_argument("--batches", type=int, nargs="*", default=[1, 4, 8, 16])
    p.add_argument("--precisions", nargs="*", default=["fp32", "bf16", "fp16"])
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "separate_gpu.json")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clearstem-sepgpu-"))
    songs = []
    for i in range(args.songs):
        path = tmp / f"song{i}.wav"
        sf.write(path, render_song(300 + i, args.seconds).mixture.T, SR, subtype="PCM_16")
        songs.append(path)
    long = tmp / "long.wav"
    base = render_song(399, 60).mixture
    reps = int(np.ceil(args.long_minutes))
    sf.write(long, np.concatenate([base] * reps, axis=1).T, SR, subtype="PCM_16")
    names = random_models(tmp / "models")
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    results = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
               "songs": args.songs, "seconds": args.seconds, "runs": []}
    print(f"device {results['device']}, torch {torch.__version__}; {args.songs} songs × {args.seconds:.0f} s "
          f"(median × real time, decode → stems written)")
    print(f"{'engine':<22}{'precision':<10}{'batch':>6}{'× real time':>13}{'peak GPU MiB':>14}")
    for name in names:
        for precision in (args.precisions if cuda else ["fp32"]):
            engine = get_engine(name, str(tmp / "models"), device="cuda" if cuda else "cpu", precision=precision)
            for batch in (args.batches if cuda else [1]):
                chunk = engine.chunking(SR, batch=batch)
                try:
                    separate_file(engine, songs[0], tmp / "warm", chunk=chunk)
                    if cuda:
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                    speeds = []
                    for song in songs:
                        t0 = time.perf_counter()
                        separate_file(engine, song, tmp / "out", chunk=chunk)
                        if cuda:
                            torch.cuda.synchronize()
                        speeds.append(args.seconds / (time.perf_counter() - t0))
                except torch.OutOfMemoryError:
                    print(f"{name:<22}{precision:<10}{batch:>6}{'OOM':>13}")
                    torch.cuda.empty_cache()
                    continue
                peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
                row = {"engine": name, "precision": precision, "batch": batch, "x_realtime": statistics.median(speeds),
                       "x_realtime_all": speeds, "peak_gpu_mib": peak}
                results["runs"].append(row)
                print(f"{name:<22}{precision:<10}{batch:>6}{row['x_realtime']:>13.1f}{peak or 0:>14.0f}")
    # the long input at the fastest setting per engine: memory must not grow with length
    results["long"] = []
    for name in names:
        runs = [r for r in results["runs"] if r["engine"] == name]
        if not runs:
            continue
        best = max(runs, key=lambda r: r["x_realtime"])
        engine = get_engine(name, str(tmp / "models"), device="cuda" if cuda else "cpu", precision=best["precision"])
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        separate_file(engine, long, tmp / "long-out", chunk=engine.chunking(SR, batch=best["batch"]))
        if cuda:
            torch.cuda.synchronize()
        row = {"engine": name, "minutes": reps, "precision": best["precision"], "batch": best["batch"],
               "x_realtime": reps * 60 / (time.perf_counter() - t0),
               "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}
        results["long"].append(row)
        print(f"{name}: {reps} min input at {row['precision']}/batch {row['batch']}: {row['x_realtime']:.1f}× real "
              f"time, peak GPU {row['peak_gpu_mib'] or 0:.0f} MiB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
