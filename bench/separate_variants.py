"""Inference-time steps around a shipped separator, with no new weights: do any of them lift it?

    .venv/bin/python -m bench.separate_variants [--training-set DIR --split select [--composer arrange]
                                                 [--soundfont csound-gm]]
                                                [--songs N] [--variants base,mixcons,...]

Variants, each wrapped around the model's forward pass inside the product's engine (per-chunk
normalisation, chunked overlap-add, `separate_file`), scored by `bench.separate.evaluate` (MDX-style
SDR, medians over songs; bss_eval in the JSON) beside mixture/4, with each song's mean paired
against ``base``'s:

* ``base`` — the engine as shipped.
* ``mixcons`` — mixture consistency: each stem gets an equal share of what the stems together miss
  of the input, so they sum to it exactly (in the time domain; the STFT is linear).
* ``mixcons_w`` — mixture consistency with shares weighted by level: in each time-frequency bin and
  channel each stem gets |Y_s|² / Σ|Y|² of what the stems together miss of the input, so a quiet stem
  is not swamped by an equal share (stop 39's failure of ``mixcons`` on the default set's *other*).
* ``wiener1`` / ``wiener2`` — the stems' spectra re-masked on the mixture's by |Y_s| / Σ|Y| (or
  squared), a single Wiener-style step.
* ``tta_swap`` / ``tta_flip`` / ``tta_both`` — test-time averaging over a left/right swap, a
  polarity flip, or both (2-3 forward passes: a half or a third of the speed).
* ``seg4`` — 4-second chunks (the training examples' length) instead of 10.

`+` combines (``tta_both+mixcons``). Measured for stop 39's closing note and the README's
"Inference-time steps" paragraph: none is adopted (the rule and the figures are there). A
benchmark, not a product feature: the engine has none of these switches.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.multitrack import STEMS, build_set  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402
from bench.separate import baseline, evaluate, training_split  # noqa: E402
from separation.bandsplit import istft, stft  # noqa: E402
from separation.registry import default_model, get_engine  # noqa: E402

VARIANTS = ("base", "mixcons", "mixcons_w", "wiener1", "wiener2", "tta_swap", "tta_flip", "tta_both", "seg4")


class Variant(torch.nn.Module):
    """[B, 2, T] -> [B, S, 2, T] of `inner` with the steps named in `parts` around it."""

    def __init__(self, inner: torch.nn.Module, parts: set[str]):
        super().__init__()
        self.inner, self.parts = inner, parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.inner
        if "tta_both" in self.parts:
            y = (f(x) + f(x.flip(1)).flip(2) - f(-x)) / 3
        elif "tta_swap" in self.parts:
            y = (f(x) + f(x.flip(1)).flip(2)) / 2
        elif "tta_flip" in self.parts:
            y = (f(x) - f(-x)) / 2
        else:
            y = f(x)
        if "mixcons" in self.parts:
            y = y + (x.unsqueeze(1) - y.sum(1, keepdim=True)) / y.shape[1]
        elif "mixcons_w" in self.parts:
            z, ys = stft(x), stft(y.flatten(1, 2)).unflatten(1, y.shape[1:3])
            w = ys.abs() ** 2
            share = w / w.sum(1, keepdim=True).clamp_min(1e-10)
            y = istft(ys + share * (z - ys.sum(1)).unsqueeze(1), x.shape[-1])
        elif power := 1 if "wiener1" in self.parts else 2 if "wiener2" in self.parts else 0:
            z, ys = stft(x), stft(y.flatten(1, 2)).unflatten(1, y.shape[1:3])
            w = ys.abs() ** power
            y = istft(w / w.sum(1, keepdim=True).clamp_min(1e-10) * z.unsqueeze(1), x.shape[-1])
        return y


def parse_variants(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    for v in names:
        unknown = set(v.split("+")) - set(VARIANTS)
        if unknown:
            raise SystemExit(f"unknown variant part(s) {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    return names


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", help="default: the shipped separator")
    p.add_argument("--training-set", type=Path, help="score a separation.training.data set's split "
                                                     "(default: bench.separate's default set)")
    p.add_argument("--split", default="select")
    p.add_argument("--composer", choices=("compose", "arrange"))
    p.add_argument("--soundfont", help="with --training-set: only renders with this bank (e.g. csound-gm)")
    p.add_argument("--songs", type=int, help="default: 16 of a training split, the default set's 8")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "separate_variants.json")
    args = p.parse_args()
    variants = parse_variants(args.variants)
    torch.set_num_threads(os.cpu_count() or 1)
    tmp = scratch_dir("clearstem-variants-")
    if args.training_set:
        songs = training_split(args.training_set, args.split, args.songs or 16, args.seconds, args.composer,
                               args.soundfont)
        source = (f"{args.training_set} split {args.split}" + (f", {args.composer}'s songs" if args.composer else "")
                  + (f", {args.soundfont} renders" if args.soundfont else ""))
    else:
        songs = build_set(tmp / "set", args.songs or 8, args.seconds)
        source = "bench.separate's default set"
    name = args.model or default_model()
    engine = get_engine(name)
    if not hasattr(engine, "module"):
        raise SystemExit(f"{name} has no neural module to wrap")
    inner, segment = engine.module, engine.segment_s
    rows = {"mixture/4": baseline(songs)}
    try:
        for v in variants:
            parts = set(v.split("+"))
            engine.module, engine.segment_s = Variant(inner, parts).eval(), 4.0 if "seg4" in parts else segment
            rows[v] = evaluate(v, engine, songs, tmp, quality=True)
    finally:  # the engine is the process's cached one
        engine.module, engine.segment_s = inner, segment
    results = {"model": name, "set": {"songs": len(songs), "seconds": args.seconds, "source": source}, "variants": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"{name} on {len(songs)} songs × {args.seconds:.0f} s ({source}), {os.cpu_count()} CPU cores")
    print(f"{'variant':<22}{'vocals':>8}{'drums':>8}{'bass':>8}{'other':>8}{'mean':>8}{'× RT':>7}  per song vs base")
    base = np.array(rows["base"]["per_song_mean"]) if "base" in rows else None  # paired: the same songs
    for v, r in rows.items():
        cells = "".join(f"{r['sdr'][s]:8.2f}" for s in STEMS) + f"{r['sdr_mean']:8.2f}"
        speed = f"{r['x_realtime_median']:7.1f}" if "x_realtime_median" in r else f"{'—':>7}"
        diff = ""
        if base is not None and v not in ("base", "mixture/4"):
            d = np.array(r["per_song_mean"]) - base
            diff = f"  {d.mean():+.3f} dB, better on {(d > 0).sum()} of {d.size}"
        print(f"{v:<22}{cells}{speed}{diff}")
    print(f"(MDX-style SDR in dB, medians over songs) results: {args.out}")


if __name__ == "__main__":
    main()
