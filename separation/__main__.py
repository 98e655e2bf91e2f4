"""`python -m separation INPUT... --model NAME --out DIR [--stems ...] [--device ...]
[--segment S --overlap F --batch N] [--passes 1|2|4] [--format wav|flac] [--bits 16|24] [--precision ...]
[--threads N]`.

Writes DIR/<input stem>/<stem>.<format>, streaming (bounded memory). No database, no Django.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import soundfile as sf
import torch

from .apply import ChunkParams
from .audio_io import AudioReadError, AudioStream
from .engine import Cancelled
from .pipeline import PipelineConfig, Request, separate_many
from .registry import PASS_COUNTS, ModelUnavailable, default_model, get_engine, list_models
from .run import separate_file


def bar(name: str):
    if not sys.stderr.isatty():
        return None

    def show(fraction: float) -> None:
        filled = int(fraction * 30)
        sys.stderr.write(f"\r{name[:30]:<30} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}")
        if fraction >= 1:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m separation", description="Separate audio files into stems.")
    p.add_argument("inputs", nargs="*", type=Path)
    p.add_argument("--model", help="default: the shipped separator when its weights verify, else dsp")
    p.add_argument("--model-dir", default=os.environ.get("CLEARSTEM_MODEL_DIR"))
    p.add_argument("--out", type=Path)
    p.add_argument("--stems", nargs="+", help="subset of the model's stems (default: all)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--segment", type=float, help="seconds per chunk")
    p.add_argument("--overlap", type=float, help="fraction of a chunk shared with the next (0-0.9)")
    p.add_argument("--batch", type=int, help="chunks per forward pass")
    p.add_argument("--passes", type=int, choices=PASS_COUNTS, default=1,
                   help="band-split models: average this many transformed passes (slower, cleaner stems)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default 0: every core, or OMP_NUM_THREADS); fewer when other work "
                        "holds cores, whose waits slow the network several times over")
    p.add_argument("--format", choices=["wav", "flac"], default="wav")
    p.add_argument("--bits", type=int, choices=[16, 24], help="default: the source's depth (24 if ≥24, else 16)")
    p.add_argument("--list", action="store_true", help="list models and whether each can run here")
    args = p.parse_args(argv)
    if args.list:
        for status in list_models(args.model_dir):
            print(f"{status.name:<28} {'available' if status.available else 'UNAVAILABLE: ' + status.reason}")
        return 0
    if not args.inputs or not args.out:
        p.error("give INPUT files and --out DIR (or --list)")
    if args.overlap is not None and not 0 <= args.overlap < 1:
        p.error("--overlap is a fraction in [0, 1)")
    if args.threads < 0:
        p.error(f"--threads must be 0 (every core) or more, not {args.threads}")
    if args.threads:  # before any thread runs torch: the pipeline's driver takes it too
        torch.set_num_threads(args.threads)
    args.model = args.model or default_model(args.model_dir)
    try:
        engine = get_engine(args.model, args.model_dir, device=args.device, precision=args.precision,
                            passes=args.passes)
    except (ModelUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    readable, source_bits = [], []
    failures = 0
    for path in args.inputs:
        try:  # a file FFmpeg cannot open is reported and skipped; the others still run
            AudioStream(path).container.close()
        except AudioReadError as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            failures += 1
            continue
        try:
            info = sf.info(str(path))
            source_bits.append({"PCM_24": 24, "PCM_32": 32, "FLOAT": 32}.get(info.subtype, 16))
        except (RuntimeError, sf.LibsndfileError):
            source_bits.append(None)  # not a libsndfile format (MP3, M4A...): PyAV decodes it
        readable.append(path)
    chunk = None
    if args.segment or args.overlap is not None or args.batch:
        rate = engine.info.sample_rate or AudioStream(readable[0]).source_rate
        base = engine.chunking(rate, args.batch)
        segment = int(args.segment * rate) if args.segment else base.segment
        overlap = int(segment * args.overlap) if args.overlap is not None else min(base.overlap, segment - 1)
        chunk = ChunkParams(segment, overlap, args.batch or base.batch)
    if not readable:
        print(f"error: none of the {failures} files could be read", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    if len(readable) > 1:  # one resident model for all files: batches mix chunks of several files
        try:
            results = separate_many(engine, [Request(p, args.out / p.stem, stems=args.stems, fmt=args.format,
                                                     bits=args.bits, source_bits=b)
                                             for p, b in zip(readable, source_bits)],
                                    PipelineConfig(chunk=chunk))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        total = 0.0
        for path, result in zip(readable, results):
            if isinstance(result, BaseException):  # this file failed; the others are written
                reason = "cancelled" if isinstance(result, Cancelled) else str(result)
                print(f"error: {path}: cannot separate ({reason})", file=sys.stderr)
                failures += 1
            else:
                total += result[0][0].duration_s
        el = time.perf_counter() - t0
        done = len(readable) - sum(isinstance(r, BaseException) for r in results)
        print(f"{done} files, {total:.1f} s of audio in {el:.2f} s ({total / el:.1f}x real time) -> {args.out}")
        return 1 if failures else 0
    path = readable[0]
    try:
        outputs, _ = separate_file(engine, path, args.out / path.stem, stems=args.stems, fmt=args.format,
                                   bits=args.bits, source_bits=source_bits[0], chunk=chunk, progress=bar(path.name))
    except (AudioReadError, OSError, RuntimeError) as exc:
        print(f"error: {path}: cannot separate ({exc})", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    secs = outputs[0].duration_s
    el = time.perf_counter() - t0
    print(f"{path}: {secs:.1f} s of audio in {el:.2f} s ({secs / el:.1f}x real time) -> {args.out / path.stem}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
