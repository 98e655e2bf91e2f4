"""Separate one file in the caller's thread, streaming: decode → chunked batched inference →
one writer per stem. The simple path (benchmarks compare against it; `separation.pipeline` is
what workers and the CLI use to keep a device busy with many files).

Peak memory depends on the chunking (batch × segment), not on the input's length. Stems come
back at the source's rate, channel count (mono stays mono) and exact length. No Django.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .apply import ChunkParams, apply_stream
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


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()
