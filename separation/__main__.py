"""`python -m separation INPUT... --model NAME --out DIR [--stems ...] [--format wav|flac]`.

Writes DIR/<input stem>/<stem>.<format>. No database, no Django.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .audio_io import AudioReadError, read_audio, write_audio
from .registry import ModelUnavailable, get_engine


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m separation", description="Separate audio files into stems.")
    p.add_argument("inputs", nargs="+", type=Path)
    p.add_argument("--model", default="dsp")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stems", nargs="+", help="subset of the model's stems (default: all)")
    p.add_argument("--format", choices=["wav", "flac"], default="wav")
    p.add_argument("--bits", type=int, choices=[16, 24], default=16)
    args = p.parse_args(argv)
    try:
        engine = get_engine(args.model)
    except ModelUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    wanted = args.stems or list(engine.info.stems)
    unknown = sorted(set(wanted) - set(engine.info.stems))
    if unknown:
        print(f"error: model {args.model!r} has no stems {unknown}", file=sys.stderr)
        return 2
    failures = 0
    for path in args.inputs:
        t0 = time.perf_counter()
        try:
            audio, rate = read_audio(path)
        except (AudioReadError, OSError) as exc:
            print(f"error: {path}: cannot decode ({exc})", file=sys.stderr)
            failures += 1
            continue
        stems = engine.separate(audio, rate)
        out_dir = args.out / path.stem
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in wanted:
            write_audio(out_dir / f"{name}.{args.format}", stems[name], rate, args.format, args.bits)
        secs = audio.shape[1] / rate
        el = time.perf_counter() - t0
        print(f"{path}: {secs:.1f} s audio in {el:.2f} s ({secs / el:.1f}x real time) -> {out_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
