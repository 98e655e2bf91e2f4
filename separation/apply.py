"""Chunked, batched, streaming application of a separator — the part of Demucs' `apply`
that bounds memory. No Django.

The input arrives as blocks of any size; it is cut into segments of `segment` samples that
overlap by `overlap` samples, `batch` segments at a time go through the model, and the
outputs are blended with a transition window (weights normalised, so any window shape keeps
the blend exact) and emitted as soon as no later segment can touch them. Memory is
O(batch × segment), whatever the input length; chunk boundaries depend only on sample
positions, so streaming and whole-array processing give identical results.

The buffers are torch tensors on the model's device, so on a GPU the chunks are cut, blended
and normalised where the model runs and only finished output leaves the device
(`separation.pipeline` relies on it). The numpy functions at the bottom are the same algorithm
for callers that hold arrays.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

# [B, C, T] float32 at the model's rate -> [B, S, C, T]
BatchFn = Callable[[np.ndarray], np.ndarray]
# the same on tensors that stay on the model's device
TensorFn = Callable[[torch.Tensor], torch.Tensor]


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

    def with_batch(self, batch: int) -> ChunkParams:
        return ChunkParams(self.segment, self.overlap, batch, self.transition_power)

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


def numpy_fn(fn: BatchFn) -> TensorFn:
    """A numpy batch function as a tensor one (CPU tensors; no copies)."""
    return lambda x: torch.from_numpy(np.ascontiguousarray(fn(x.cpu().numpy()), dtype=np.float32))


class StreamingSeparator:
    """One input's chunking and blending on `device`. `push` queues the chunks that became
    complete, `take` hands queued chunks to whoever runs the model (possibly in a batch with
    other inputs' chunks), `absorb` blends results back, `ready` yields finished output
    [S, C, n] as tensors on the device. `push_and_run` / `finish` do all of it for one input."""

    def __init__(self, fn: TensorFn | None, params: ChunkParams, channels: int,
                 progress: Callable[[int], None] | None = None, device: torch.device | str = "cpu"):
        self.fn, self.p, self.channels, self.progress = fn, params, channels, progress
        self.device = torch.device(device)
        self.window = torch.from_numpy(transition_window(params).astype(np.float32)).to(self.device)
        self.inbuf = torch.zeros((channels, 0), device=self.device)  # input from `in_start` on
        self.in_start = 0
        self.next_chunk = 0  # start sample of the next chunk to queue
        self.covered = 0  # end of the last queued chunk
        self.out = None  # accumulated weighted output from `out_start`, [S, C, n]
        self.weight = torch.zeros(0, device=self.device)
        self.out_start = 0
        self.total = 0
        self.closed = False
        self.pending: list[tuple[int, torch.Tensor]] = []  # queued (start, chunk)
        self.running = 0  # chunks taken but not yet absorbed

    # -- the steps ---------------------------------------------------------------------------
    def push(self, block) -> None:
        block = torch.as_tensor(block, dtype=torch.float32).to(self.device)
        self.inbuf = torch.cat([self.inbuf, block], dim=1)
        self.total += block.shape[1]
        while self.next_chunk + self.p.segment <= self.total:
            self._queue_chunk()

    def close(self) -> None:
        """No more input: queue the zero-padded tail chunks."""
        self.closed = True
        while self.covered < self.total:
            self._queue_chunk()

    def take(self, n: int) -> list[tuple[int, torch.Tensor]]:
        items, self.pending = self.pending[:n], self.pending[n:]
        self.running += len(items)
        return items

    def absorb(self, starts: list[int], results: torch.Tensor) -> None:
        results = torch.as_tensor(results, dtype=torch.float32).to(self.device)
        end = max(starts) + self.p.segment if starts else 0
        if self.out is None and starts:
            self.out = torch.zeros((results.shape[1], self.channels, 0), device=self.device)
        grow = end - (self.out_start + (self.out.shape[2] if self.out is not None else 0))
        if grow > 0:
            self.out = torch.cat([self.out, self.out.new_zeros((*self.out.shape[:2], grow))], dim=2)
            self.weight = torch.cat([self.weight, self.weight.new_zeros(grow)])
        for start, est in zip(starts, results):
            a = start - self.out_start
            self.out[:, :, a:a + self.p.segment].addcmul_(est, self.window)  # one pass, no temporary
            self.weight[a:a + self.p.segment].add_(self.window)
        self.running -= len(starts)
        if self.progress:
            self.progress(min(self.next_chunk, self.total))

    def ready(self) -> Iterator[torch.Tensor]:
        """Output no queued, running or future chunk can still change."""
        if self.out is None:
            return
        limit = self.pending[0][0] if self.pending else (self.total if self.closed else self.next_chunk)
        n = min(limit, self.total) - self.out_start
        if n <= 0 or self.running:
            return
        block = self.out[:, :, :n].div_(self.weight[:n])  # in place: this part leaves `out` now
        self.out = self.out[:, :, n:]
        self.weight = self.weight[n:]
        self.out_start += n
        yield block

    def drop(self) -> None:
        """Forget everything queued and accumulated (a cancelled or failed input)."""
        self.pending, self.running, self.closed = [], 0, True
        self.out, self.inbuf = None, self.inbuf[:, :0]
        self.out_start = self.total

    @property
    def done(self) -> bool:
        return self.closed and not self.pending and not self.running and self.out_start >= self.total

    # -- one input on its own ------------------------------------------------------------------
    def push_and_run(self, block) -> Iterator[torch.Tensor]:
        self.push(block)
        while len(self.pending) >= self.p.batch:
            self._run(self.take(self.p.batch))
            yield from self.ready()

    def finish(self) -> Iterator[torch.Tensor]:
        self.close()
        while self.pending:
            self._run(self.take(self.p.batch))
        yield from self.ready()

    def _run(self, items) -> None:
        results = self.fn(torch.stack([c for _, c in items]))  # [B, S, C, T]
        self.absorb([s for s, _ in items], results)

    def _queue_chunk(self) -> None:
        start = self.next_chunk
        rel = start - self.in_start
        chunk = self.inbuf[:, rel:rel + self.p.segment]
        if chunk.shape[1] < self.p.segment:  # the tail: zero-padded, trimmed after
            chunk = torch.nn.functional.pad(chunk, (0, self.p.segment - chunk.shape[1]))
        self.pending.append((start, chunk))
        self.covered = start + self.p.segment
        self.next_chunk += self.p.stride
        drop = self.next_chunk - self.in_start  # no later chunk needs input before next_chunk
        if drop > 0:
            self.inbuf = self.inbuf[:, drop:]
            self.in_start += drop


# -- numpy in, numpy out ------------------------------------------------------------------------

def apply_chunked(fn: BatchFn, audio: np.ndarray, params: ChunkParams) -> np.ndarray:
    """The same algorithm on an in-memory array: [C, T] -> [S, C, T]."""
    if audio.shape[1] == 0:
        raise ValueError("no audio to separate")
    return np.concatenate(list(apply_stream(fn, [audio], params, audio.shape[0])), axis=2)


def apply_stream(fn: BatchFn, blocks: Iterable[np.ndarray], params: ChunkParams, channels: int,
                 progress: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
    stream = StreamingSeparator(numpy_fn(fn), params, channels, progress)
    for block in blocks:
        for out in stream.push_and_run(block):
            yield out.numpy()
    for out in stream.finish():
        yield out.numpy()
