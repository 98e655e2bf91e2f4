"""Chunked, batched, streaming application of a separator — the part of Demucs' `apply`
that bounds memory. No Django.

The input arrives as blocks of any size; it is cut into segments of `segment` samples that
overlap by `overlap` samples, `batch` segments at a time go through the model, and the
outputs are blended with a transition window (weights normalised, so any window shape keeps
the blend exact) and emitted as soon as no later segment can touch them. Memory is
O(batch × segment), whatever the input length; chunk boundaries depend only on sample
positions, so streaming and whole-array processing give identical results.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

# [B, C, T] float32 at the model's rate -> [B, S, C, T]
BatchFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ChunkParams:
    segment: int  # samples per chunk
    overlap: int  # samples shared by neighbouring chunks
    batch: int = 1
    transition_power: float = 1.0  # window = triangle ** power; 1 = linear cross-fade

    def __post_init__(self):
        if self.segment <= 0 or not 0 <= self.overlap < self.segment or self.batch < 1:
            raise ValueError("need segment > overlap >= 0 and batch >= 1")

    @property
    def stride(self) -> int:
        return self.segment - self.overlap

    def as_dict(self) -> dict:
        return {"segment": self.segment, "overlap": self.overlap, "batch": self.batch,
                "transition_power": self.transition_power}


def transition_window(params: ChunkParams) -> np.ndarray:
    """Flat in the middle, ramps across the overlaps; never exactly zero, so the normalised
    blend is defined everywhere (also at the very first and last samples)."""
    n, o = params.segment, params.overlap
    w = np.ones(n, np.float64)
    if o:
        ramp = (np.arange(1, o + 1, dtype=np.float64) / (o + 1)) ** params.transition_power
        w[:o] = ramp
        w[n - o:] = ramp[::-1]
    return w


class StreamingSeparator:
    """Feed blocks with `push`, take finished output with the iterator it returns; `finish`
    flushes the tail. Outputs are [S, C, n] float32 blocks covering the input exactly once."""

    def __init__(self, fn: BatchFn, params: ChunkParams, channels: int, progress: Callable[[int], None] | None = None):
        self.fn, self.p, self.channels, self.progress = fn, params, channels, progress
        self.window = transition_window(params).astype(np.float32)
        self.inbuf = np.zeros((channels, 0), np.float32)  # input from `in_start` on
        self.in_start = 0
        self.next_chunk = 0  # start sample of the next chunk to run
        self.covered = 0  # end of the last queued chunk
        self.out = None  # accumulated weighted output from `out_start`, [S, C, n]
        self.weight = np.zeros(0, np.float32)
        self.out_start = 0
        self.total = 0
        self.pending: list[tuple[int, np.ndarray]] = []  # (start, chunk)

    def push(self, block: np.ndarray) -> Iterator[np.ndarray]:
        block = np.asarray(block, np.float32)
        self.inbuf = np.concatenate([self.inbuf, block], axis=1)
        self.total += block.shape[1]
        while self.next_chunk + self.p.segment <= self.total:
            self._queue_chunk(final=False)
            if len(self.pending) == self.p.batch:
                yield from self._run()

    def finish(self) -> Iterator[np.ndarray]:
        while self.covered < self.total:
            self._queue_chunk(final=True)
        if self.pending:
            yield from self._run()
        yield from self._emit(self.total)

    def _queue_chunk(self, final: bool) -> None:  # noqa: ARG002 - final only documents the call site
        start = self.next_chunk
        rel = start - self.in_start
        chunk = self.inbuf[:, rel:rel + self.p.segment]
        if chunk.shape[1] < self.p.segment:  # the tail: zero-padded, trimmed after
            chunk = np.pad(chunk, ((0, 0), (0, self.p.segment - chunk.shape[1])))
        self.pending.append((start, chunk))
        self.covered = start + self.p.segment
        self.next_chunk += self.p.stride
        drop = self.next_chunk - self.in_start  # no later chunk needs input before next_chunk
        if drop > 0:
            self.inbuf = self.inbuf[:, drop:]
            self.in_start += drop

    def _run(self) -> Iterator[np.ndarray]:
        starts = [s for s, _ in self.pending]
        result = np.asarray(self.fn(np.stack([c for _, c in self.pending])), np.float32)  # [B, S, C, T]
        self.pending = []
        for start, est in zip(starts, result):
            end = start + self.p.segment
            if self.out is None:
                self.out = np.zeros((est.shape[0], self.channels, 0), np.float32)
            grow = end - (self.out_start + self.out.shape[2])
            if grow > 0:
                self.out = np.concatenate([self.out, np.zeros((*self.out.shape[:2], grow), np.float32)], axis=2)
                self.weight = np.concatenate([self.weight, np.zeros(grow, np.float32)])
            a = start - self.out_start
            self.out[:, :, a:a + self.p.segment] += est * self.window
            self.weight[a:a + self.p.segment] += self.window
        if self.progress:
            self.progress(min(self.next_chunk, self.total))
        yield from self._emit(min(self.next_chunk, self.total))

    def _emit(self, upto: int) -> Iterator[np.ndarray]:
        """Everything before `upto` is final (no pending or future chunk starts before it)."""
        if self.out is None:
            return
        n = min(upto, self.total) - self.out_start
        if n <= 0:
            return
        block = self.out[:, :, :n] / self.weight[:n]
        self.out = self.out[:, :, n:]
        self.weight = self.weight[n:]
        self.out_start += n
        yield block


def apply_chunked(fn: BatchFn, audio: np.ndarray, params: ChunkParams) -> np.ndarray:
    """The same algorithm on an in-memory array: [C, T] -> [S, C, T]."""
    if audio.shape[1] == 0:
        raise ValueError("no audio to separate")
    stream = StreamingSeparator(fn, params, audio.shape[0])
    blocks = list(stream.push(audio)) + list(stream.finish())
    return np.concatenate(blocks, axis=2)


def apply_stream(fn: BatchFn, blocks: Iterable[np.ndarray], params: ChunkParams, channels: int,
                 progress: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
    stream = StreamingSeparator(fn, params, channels, progress)
    for block in blocks:
        yield from stream.push(block)
    yield from stream.finish()
