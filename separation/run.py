"""Separate one file, streaming: decode → chunked batched inference → one writer per stem.

Peak memory depends on the chunking (batch × segment), not on the input's length. Stems come
back at the source's rate, channel count (mono stays mono) and exact length. No Django.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .apply import ChunkParams, apply_many, apply_stream
from .audio_io import AudioStream, StemWriter, output_bits
from .engine import Engine


@dataclass
class StemOutput:
    name: str
    path: Path
    sample_rate: int
    channels: int
    bits: int
    samples: int

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate


def separate_file(engine: Engine, src: str | Path, out_dir: Path, stems: list[str] | None = None, fmt: str = "wav",
                  bits: int | None = None, source_bits: int | None = None, chunk: ChunkParams | None = None,
                  progress: Callable[[float], None] | None = None) -> tuple[list[StemOutput], dict]:
    """Returns the stems written and the inference parameters used (for provenance)."""
    info = engine.info
    stream = AudioStream(src, rate=info.sample_rate or None, channels=2 if info.channels == 2 else None)
    params = chunk or engine.chunking(stream.rate)
    bits = bits or output_bits(source_bits)
    wanted = stems or list(info.stems)
    unknown = sorted(set(wanted) - set(info.stems))
    if unknown:
        raise ValueError(f"model {info.name!r} has no stems {unknown}")
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {s: StemWriter(out_dir / f"{s}.{fmt}", stream.rate, stream.source_rate, stream.source_channels, fmt, bits)
               for s in wanted}
    index = {s: i for i, s in enumerate(info.stems)}
    duration = stream.stream.duration * stream.stream.time_base if stream.stream.duration else None
    expected = float(duration) * stream.rate if duration else None

    def on_chunk(done_samples: int) -> None:
        if progress and expected:
            progress(min(done_samples / expected, 0.99))

    for block in apply_stream(engine.batch_fn(stream.rate), stream, params, stream.channels, on_chunk):
        for name, writer in writers.items():
            writer.write(block[index[name]])
    for writer in writers.values():
        writer.close(stream.source_samples)
    if progress:
        progress(1.0)
    outputs = [StemOutput(s, out_dir / f"{s}.{fmt}", stream.source_rate, writers[s].channels, bits,
                          stream.source_samples) for s in wanted]
    used = {"model_rate": stream.rate, "source_rate": stream.source_rate, "output_format": fmt, "output_bits": bits,
            **params.as_dict()}
    return outputs, used


def separate_files(engine: Engine, sources: list, out_dirs: list[Path], stems: list[str] | None = None,
                   fmt: str = "wav", bits: int | None = None, source_bits: list[int | None] | None = None,
                   chunk: ChunkParams | None = None) -> list[list[StemOutput]]:
    """Several files at once, every batch filled from all of them (short files keep a GPU
    busy). The outputs are those of `separate_file` on each file."""
    info = engine.info
    source_bits = source_bits or [None] * len(sources)
    streams = [AudioStream(src, rate=info.sample_rate or None, channels=2 if info.channels == 2 else None)
               for src in sources]
    rates = {s.rate for s in streams}
    if len(rates) != 1:  # a rate-agnostic engine (dsp) batches only files of one rate together
        return [separate_file(engine, src, out, stems=stems, fmt=fmt, bits=bits, source_bits=sb, chunk=chunk)[0]
                for src, out, sb in zip(sources, out_dirs, source_bits)]
    rate = rates.pop()
    params = chunk or engine.chunking(rate)
    wanted = stems or list(info.stems)
    unknown = sorted(set(wanted) - set(info.stems))
    if unknown:
        raise ValueError(f"model {info.name!r} has no stems {unknown}")
    index = {s: i for i, s in enumerate(info.stems)}
    depths = [bits or output_bits(sb) for sb in source_bits]
    writers = []
    for stream, out, depth in zip(streams, out_dirs, depths):
        out.mkdir(parents=True, exist_ok=True)
        writers.append({s: StemWriter(out / f"{s}.{fmt}", rate, stream.source_rate, stream.source_channels, fmt, depth)
                        for s in wanted})
    for i, block in apply_many(engine.batch_fn(rate), streams, params, [s.channels for s in streams]):
        for name, writer in writers[i].items():
            writer.write(block[index[name]])
    results = []
    for stream, w, out, depth in zip(streams, writers, out_dirs, depths):
        for writer in w.values():
            writer.close(stream.source_samples)
        results.append([StemOutput(s, out / f"{s}.{fmt}", stream.source_rate, w[s].channels, depth,
                                   stream.source_samples) for s in wanted])
    return results


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def separate_file_adaptive(engine: Engine, src, out_dir: Path, chunk: ChunkParams | None = None, **kwargs):
    """`separate_file`, retried with half the batch after a CUDA out-of-memory error (down to
    one chunk at a time); the batch that worked is in the returned parameters."""
    params = chunk
    while True:
        try:
            return separate_file(engine, src, out_dir, chunk=params, **kwargs)
        except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            params = params or engine.chunking(engine.info.sample_rate or AudioStream(src).source_rate)
            if params.batch == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            params = ChunkParams(params.segment, params.overlap, params.batch // 2, params.transition_power)
