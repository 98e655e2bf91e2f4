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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

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
    """One input's chunking and blending. `push` queues the chunks that became complete,
    `take` hands queued chunks to whoever runs the model (possibly in a batch with other
    inputs' chunks), `absorb` blends results back, `ready` yields finished output [S, C, n].
    `push_and_run` / `finish` do all of it for a single input."""

    def __init__(self, fn: BatchFn | None, params: ChunkParams, channels: int,
                 progress: Callable[[int], None] | None = None):
        self.fn, self.p, self.channels, self.progress = fn, params, channels, progress
        self.window = transition_window(params).astype(np.float32)
        self.inbuf = np.zeros((channels, 0), np.float32)  # input from `in_start` on
        self.in_start = 0
        self.next_chunk = 0  # start sample of the next chunk to queue
        self.covered = 0  # end of the last queued chunk
        self.out = None  # accumulated weighted output from `out_start`, [S, C, n]
        self.weight = np.zeros(0, np.float32)
        self.out_start = 0
        self.total = 0
        self.closed = False
        self.pending: list[tuple[int, np.ndarray]] = []  # queued (start, chunk)
        self.running = 0  # chunks taken but not yet absorbed

    # -- the steps ---------------------------------------------------------------------------
    def push(self, block: np.ndarray) -> None:
        block = np.asarray(block, np.float32)
        self.inbuf = np.concatenate([self.inbuf, block], axis=1)
        self.total += block.shape[1]
        while self.next_chunk + self.p.segment <= self.total:
            self._queue_chunk()

    def close(self) -> None:
        """No more input: queue the zero-padded tail chunks."""
        self.closed = True
        while self.covered < self.total:
            self._queue_chunk()

    def take(self, n: int) -> list[tuple[int, np.ndarray]]:
        items, self.pending = self.pending[:n], self.pending[n:]
        self.running += len(items)
        return items

    def absorb(self, starts: list[int], results: np.ndarray) -> None:
        for start, est in zip(starts, results):
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
        self.running -= len(starts)
        if self.progress:
            self.progress(min(self.next_chunk, self.total))

    def ready(self) -> Iterator[np.ndarray]:
        """Output no queued, running or future chunk can still change."""
        if self.out is None:
            return
        limit = self.pending[0][0] if self.pending else (self.total if self.closed else self.next_chunk)
        n = min(limit, self.total) - self.out_start
        if n <= 0 or self.running:
            return
        block = self.out[:, :, :n] / self.weight[:n]
        self.out = self.out[:, :, n:]
        self.weight = self.weight[n:]
        self.out_start += n
        yield block

    @property
    def done(self) -> bool:
        return self.closed and not self.pending and not self.running and self.out_start >= self.total

    # -- one input on its own ------------------------------------------------------------------
    def push_and_run(self, block: np.ndarray) -> Iterator[np.ndarray]:
        self.push(block)
        while len(self.pending) >= self.p.batch:
            self._run(self.take(self.p.batch))
            yield from self.ready()

    def finish(self) -> Iterator[np.ndarray]:
        self.close()
        while self.pending:
            self._run(self.take(self.p.batch))
        yield from self.ready()

    def _run(self, items) -> None:
        results = np.asarray(self.fn(np.stack([c for _, c in items])), np.float32)  # [B, S, C, T]
        self.absorb([s for s, _ in items], results)

    def _queue_chunk(self) -> None:
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


def apply_many(fn: BatchFn, inputs: list[Iterable[np.ndarray]], params: ChunkParams, channels: list[int],
               progress: list | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Several inputs through one model, batches filled from all of them (short files keep a
    GPU busy). Yields (input index, finished output block) in each input's order."""
    streams = [StreamingSeparator(None, params, c, (progress or [None] * len(inputs))[i]) for i, c in enumerate(channels)]
    iters = [iter(x) for x in inputs]
    while not all(s.done for s in streams):
        for stream, it in zip(streams, iters):  # read until a batch is queued overall
            if stream.closed or sum(len(s.pending) for s in streams) >= params.batch:
                continue
            block = next(it, None)
            if block is None:
                stream.close()
            else:
                stream.push(block)
        queued = sum(len(s.pending) for s in streams)
        if queued >= params.batch or (queued and all(s.closed for s in streams)):  # full, or the last
            taken = []
            for i, s in enumerate(streams):
                room = params.batch - len(taken)
                if room <= 0:
                    break
                taken += [(i, start, chunk) for start, chunk in s.take(room)]
            results = np.asarray(fn(np.stack([c for _, _, c in taken])), np.float32)
            for i, s in enumerate(streams):
                mine = [k for k, (j, _, _) in enumerate(taken) if j == i]
                if mine:
                    s.absorb([taken[k][1] for k in mine], results[mine])
        for i, s in enumerate(streams):
            for block in s.ready():
                yield i, block


def apply_chunked(fn: BatchFn, audio: np.ndarray, params: ChunkParams) -> np.ndarray:
    """The same algorithm on an in-memory array: [C, T] -> [S, C, T]."""
    if audio.shape[1] == 0:
        raise ValueError("no audio to separate")
    stream = StreamingSeparator(fn, params, audio.shape[0])
    blocks = list(stream.push_and_run(audio)) + list(stream.finish())
    return np.concatenate(blocks, axis=2)


def apply_stream(fn: BatchFn, blocks: Iterable[np.ndarray], params: ChunkParams, channels: int,
                 progress: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
    stream = StreamingSeparator(fn, params, channels, progress)
    for block in blocks:
        yield from stream.push_and_run(block)
    yield from stream.finish()
