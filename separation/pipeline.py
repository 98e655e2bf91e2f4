"""Many files through one resident model with the device kept fed. No Django.

One file at a time in one thread leaves a GPU idle most of the time: decoding, resampling,
overlap-add and stem writing on the CPU bound it (`bench.separate_gpu` measured 57–98× real
time with the batch size barely mattering). Here each stage runs beside the others, bounded:

- **decoders**: child processes (`separation.decoder`) decode and resample each file to the
  model's rate and send float32 blocks over pipes; one reader thread per child puts them on a
  bounded queue, so a fast decoder waits instead of filling memory;
- **device** (one driver thread): blocks are copied to the device from pinned memory on a copy
  stream; chunks are cut, batched across every file in flight, run (bf16/fp16 autocast on
  CUDA, batches padded to one shape for `cudnn.benchmark`), blended with the transition window
  and normalised on the device (`apply.StreamingSeparator`), converted to 16/24-bit integers on
  the device and copied back on a second stream. On CPU, `HostBlend` and `pcm_into` do the same
  in numpy, summing only where chunks overlap, straight into the writers' buffers: there the
  blend's memory passes and torch's thread hand-offs cost more than a light model;
- **writers**: a thread pool (libsndfile encodes with the GIL released) writes each file's
  stems in order into `.partial` files, renamed into place only when the file is complete, so
  a failed or cancelled file leaves no stem behind.

`SeparationPipeline.submit` returns a `Handle` (progress, cancel, result) per file;
`separate_many` runs a list of files and waits. A worker keeps one pipeline per model resident
and submits each job to it, so concurrent jobs share batches. `profile()` says where time went.
"""
from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .apply import ChunkParams, StreamingSeparator
from .audio_io import SUBTYPES, AudioReadError, StemWriter, output_bits
from .decoder import read_frame
from .engine import Cancelled, Engine
from .run import StemOutput, is_out_of_memory


@dataclass(frozen=True)
class PipelineConfig:
    decoders: int = 0  # decoding processes; 0: one per spare CPU core (at most 12)
    writers: int = 0  # writer threads; 0: 2 per device batch lane, at least 2
    block_seconds: float = 10.0  # decoded block size sent from a decoder
    queued_blocks: int = 0  # bound of the decoded-block queue; 0: 2 per decoder, at least 4
    batch: int | None = None  # chunks per forward pass; None: the engine's default
    chunk: ChunkParams | None = None  # segment/overlap/batch in samples, instead of the engine's
    write_backlog_mb: int = 256  # converted output waiting for the writers, at most
    stage_kib: int = 8192  # one host staging buffer; output is copied back in pieces of this size
    pad_batches: bool | None = None  # None: on CUDA (one shape, so cudnn tunes once)
    # torch's CPU threads for the model, set on the driver thread; 0: the creating thread's count
    # (torch's default: every core, or OMP_NUM_THREADS). Fewer where other work holds cores:
    # OpenMP threads waiting on a busy core slow the network's small steps 2-10x (README).
    threads: int = 0

    def resolved(self, device: torch.device) -> PipelineConfig:
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (torch's default) or more, not {self.threads}")
        spare = max(1, (os.cpu_count() or 2) - 2)
        decoders = self.decoders or (min(12, spare) if device.type == "cuda" else 1)
        return PipelineConfig(
            decoders=decoders, writers=self.writers or max(2, min(8, spare)), block_seconds=self.block_seconds,
            queued_blocks=self.queued_blocks or max(4, 2 * decoders), batch=self.batch, chunk=self.chunk,
            write_backlog_mb=self.write_backlog_mb, stage_kib=self.stage_kib,
            pad_batches=device.type == "cuda" if self.pad_batches is None else self.pad_batches,
            threads=self.threads or torch.get_num_threads())


@dataclass
class Request:
    src: str | Path
    out_dir: Path
    stems: list[str] | None = None
    fmt: str = "wav"
    bits: int | None = None
    source_bits: int | None = None


class Handle:
    """One submitted file. `result(progress)` waits, calling `progress(fraction)` from the
    caller's own thread (a slow progress callback never stalls the device); if the callback
    raises (Cancelled, say), the file is cancelled, its partial stems removed, and the
    exception re-raised."""

    def __init__(self, fid: int, request: Request):
        self.fid, self.request = fid, request
        self.fraction = 0.0
        self.cancel_requested = False
        self._done = threading.Event()
        self._result: tuple[list[StemOutput], dict] | None = None
        self._error: BaseException | None = None

    def cancel(self) -> None:
        self.cancel_requested = True

    def result(self, progress: Callable[[float], None] | None = None, poll_s: float = 0.5):
        while not self._done.wait(poll_s if progress else None):
            try:
                progress(min(self.fraction, 0.99))
            except BaseException:
                self.cancel()
                self._done.wait()
                raise
        if self._error is not None:
            raise self._error
        if progress:
            progress(1.0)
        return self._result

    def _finish(self, result=None, error: BaseException | None = None) -> None:
        if not self._done.is_set():
            self._result, self._error = result, error
            self._done.set()


# -- decoding processes ---------------------------------------------------------------------------

class DecoderPool:
    """Up to `size` decoder processes, started as files need them (one long file starts one);
    files go to whichever is idle, in submission order. Every message ends up on `messages`
    as (fid, header, payload)."""

    def __init__(self, size: int, queued_blocks: int):
        self.size = size
        self.messages: queue.Queue = queue.Queue(maxsize=queued_blocks)
        self._waiting: collections.deque = collections.deque()
        self._idle: list[subprocess.Popen] = []
        self._owner: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self.procs: list[subprocess.Popen] = []

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "separation.decoder"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, cwd=str(Path(__file__).resolve().parent.parent),
                                env={**os.environ, "OMP_NUM_THREADS": "1"}, bufsize=0)
        self.procs.append(proc)
        threading.Thread(target=self._read, args=(proc,), daemon=True, name="decoder-reader").start()
        return proc

    def submit(self, task: dict) -> None:
        with self._lock:
            self._waiting.append(task)
            self._dispatch()

    def cancel(self, fid: int) -> None:
        with self._lock:
            self._waiting = collections.deque(t for t in self._waiting if t["fid"] != fid)
            proc = self._owner.get(fid)
            if proc is not None:
                self._send(proc, {"op": "cancel", "fid": fid})

    def _send(self, proc, msg: dict) -> None:
        try:
            proc.stdin.write((json.dumps(msg) + "\n").encode())
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def _dispatch(self) -> None:
        while self._waiting and not self._idle and len(self.procs) < self.size:
            self._idle.append(self._start())
        while self._idle and self._waiting:
            proc, task = self._idle.pop(), self._waiting.popleft()
            self._owner[task["fid"]] = proc
            self._send(proc, task)

    def _read(self, proc) -> None:
        while True:
            frame = read_frame(proc.stdout)
            if frame is None:
                break
            header, payload = frame
            self.messages.put((header["fid"], header, payload))
            if header["kind"] in ("end", "error"):
                with self._lock:
                    self._owner.pop(header["fid"], None)
                    self._idle.append(proc)
                    self._dispatch()
        with self._lock:  # the child died: its file fails, the others go on without it
            lost = [fid for fid, p in self._owner.items() if p is proc]
            for fid in lost:
                del self._owner[fid]
            if proc in self._idle:
                self._idle.remove(proc)
            self.procs.remove(proc)  # a new one starts when a file needs it
        for fid in lost:
            self.messages.put((fid, {"kind": "error", "message": "the decoder process stopped"}, b""))

    def close(self) -> None:
        with self._lock:
            procs = list(self.procs)
        for proc in procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


class StagingRing:
    """Fixed host buffers for output on its way to the writers, reused. On CUDA they are
    pinned once, up front: a pinned allocation inside the loop (what `pin_memory()` does for a
    size it has not cached) can stall the device, and cached blocks of many sizes pile up in
    the process's memory. On CPU the integers are made straight into them: a fresh tensor per
    block is fresh pages, faulted in each time. `get` waits for a free buffer, which bounds
    what waits for the writers; the last one returned goes out first (its pages are warm)."""

    def __init__(self, count: int, nbytes: int, pin: bool):
        self.nbytes = nbytes
        self._free: queue.Queue = queue.LifoQueue()
        for _ in range(count):
            self._free.put(torch.empty(nbytes, dtype=torch.uint8, pin_memory=pin))

    def get(self) -> torch.Tensor:
        return self._free.get()

    def try_get(self) -> torch.Tensor | None:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return None

    def put(self, buf: torch.Tensor) -> None:
        self._free.put(buf)


def staged(buf: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A view of `buf` with `like`'s dtype and shape."""
    return buf[: like.numel() * like.element_size()].view(like.dtype).view(like.shape)


# -- writing ----------------------------------------------------------------------------------------

class SerialLanes:
    """A thread pool where each key's tasks run one after another, in submission order."""

    def __init__(self, workers: int):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stem-writer")
        self._queues: dict = {}
        self._lock = threading.Lock()

    def submit(self, key, fn: Callable[[], None]) -> None:
        with self._lock:
            q = self._queues.get(key)
            if q is not None:
                q.append(fn)
                return
            self._queues[key] = collections.deque([fn])
        self.pool.submit(self._drain, key)

    def _drain(self, key) -> None:
        while True:
            with self._lock:
                q = self._queues[key]
                if not q:
                    del self._queues[key]
                    return
                fn = q.popleft()
            fn()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class FileWriter:
    """One file's stems. Integer blocks (converted on the device) are written as they are;
    when the model rate differs from the source's, float blocks go through `StemWriter`'s
    resampler. Files are `.partial` until `close` renames them."""

    def __init__(self, request: Request, stems: list[str], model_rate: int, meta: dict, bits: int):
        self.request, self.stems, self.bits = request, stems, bits
        self.source_rate, self.source_channels = int(meta["source_rate"]), int(meta["source_channels"])
        self.channels = 1 if self.source_channels == 1 else 2
        self.resampled = model_rate != self.source_rate
        request.out_dir.mkdir(parents=True, exist_ok=True)
        self.final = [request.out_dir / f"{s}.{request.fmt}" for s in stems]
        self.partial = [p.with_name(f".{p.name}.partial") for p in self.final]
        self.failed: BaseException | None = None
        self.written = 0
        if self.resampled:
            self.float_writers = [StemWriter(p, model_rate, self.source_rate, self.source_channels, request.fmt, bits)
                                  for p in self.partial]
        else:
            subtype = SUBTYPES[(request.fmt, bits)]
            self.files = [sf.SoundFile(str(p), "w", samplerate=self.source_rate, channels=self.channels,
                                       subtype=subtype, format=request.fmt.upper()) for p in self.partial]

    def write(self, host: np.ndarray) -> None:
        """`host`: [stems, n, channels] integers, or [stems, channels, n] float32 (resampled)."""
        if self.failed:
            return
        try:
            if self.resampled:
                for w, block in zip(self.float_writers, host):
                    w.write(block)
            else:
                for f, block in zip(self.files, host):
                    f.write(block)
                self.written += host.shape[1]
        except (OSError, RuntimeError, sf.LibsndfileError) as exc:
            self.failed = exc

    def close(self, source_samples: int) -> list[StemOutput]:
        if self.failed:
            raise self.failed
        if self.resampled:
            for w in self.float_writers:
                w.close(source_samples)
        else:
            short = source_samples - self.written
            for f in self.files:
                if short > 0:
                    f.write(np.zeros((short, self.channels), np.int16 if self.bits == 16 else np.int32))
                f.close()
            if short < 0:
                raise RuntimeError(f"stem ran {-short} samples past the source length")
        for partial, final in zip(self.partial, self.final):
            os.replace(partial, final)
        return [StemOutput(s, p, self.source_rate, self.channels, self.bits, source_samples)
                for s, p in zip(self.stems, self.final)]

    def abandon(self) -> None:
        for f in getattr(self, "files", []):
            if not f.closed:
                f.close()
        for w in getattr(self, "float_writers", []):
            if not w.file.closed:
                w.file.close()
        for p in self.partial:
            p.unlink(missing_ok=True)


def to_pcm(block: torch.Tensor, bits: int) -> torch.Tensor:
    """float [..., C, n] (overwritten) -> integers [..., n, C], bit for bit as libsndfile converts floats, so
    stems match the per-file path's: 16-bit = x·2^15 rounded half to even, clipped, as int16;
    24-bit = x·2^31 rounded, then its top 24 bits (a floor), clipped, in int32's top 24 bits.
    The arithmetic runs in place (`block` is consumed) on the contiguous layout; only the
    integers are transposed."""
    if bits == 16:
        x = block.mul_(32768.0).round_().clamp_(-32768, 32767).to(torch.int16)
    else:
        x = block.mul_(2.0**31).round_().div_(256.0).floor_().clamp_(-(2**23), 2**23 - 1).to(torch.int32).mul_(256)
    return x.transpose(-1, -2).contiguous()


class HostBlend(StreamingSeparator):
    """`StreamingSeparator`'s blend for CPU, with its arithmetic in its order (so the same
    values) but none of its whole-output passes: a sample that one chunk alone covers at window
    weight 1 is that chunk's output as it is (a -0 stays -0: no integer or resampled stem shows
    it), so only the overlaps are summed and normalised; the rest goes on as views of the
    model's output. `ready` yields pieces [S, C, m] in order.
    Input and overlaps go through numpy, or torch calls below its parallel grain: torch would
    split them over the cores, and its OpenMP workers spin-wait after each call (as much CPU
    again as the work, measured), on cores the decoders and writers need. Needs overlap <=
    segment / 2."""

    GRAIN = 32768  # elements: at::internal::GRAIN_SIZE, below which a torch CPU op runs on its caller's thread

    def __init__(self, params: ChunkParams, channels: int):
        super().__init__(None, params, channels)
        if 2 * params.overlap > params.segment:
            raise ValueError("HostBlend needs overlap <= segment / 2")
        o, w = params.overlap, self.window
        self.fade_in, self.fade_out = w[:o], w[params.segment - o:]
        # an overlap's weights, summed as the whole-buffer blend sums them (0 + fade-out + fade-in)
        self.both = torch.from_numpy(self.fade_out.numpy() + self.fade_in.numpy())
        self.parts: collections.deque = collections.deque()  # [start, values, weights or None (all 1)]

    def push(self, block) -> None:
        block = torch.as_tensor(block, dtype=torch.float32)
        self.inbuf = torch.from_numpy(np.concatenate([self.inbuf.numpy(), block.numpy()], axis=1))
        self.total += block.shape[1]
        while self.next_chunk + self.p.segment <= self.total:
            self._queue_chunk()

    def close(self) -> None:
        """The tail's zero padding, added here so that no chunk needs torch's."""
        if not self.closed:
            self.inbuf = torch.from_numpy(np.pad(self.inbuf.numpy(), ((0, 0), (0, self.p.segment))))
        super().close()

    def absorb(self, starts: list[int], results: torch.Tensor) -> None:
        results = torch.as_tensor(results, dtype=torch.float32)
        o, seg = self.p.overlap, self.p.segment
        for start, est in zip(starts, results):
            if o:
                last = self.parts[-1] if self.parts else None
                if last is not None and last[2] is not None and last[0] == start:  # the previous chunk's fade-out
                    self._addcmul(last[1], est[:, :, :o], self.fade_in)
                    last[2] = self.both
                else:  # the input's first chunk
                    self.parts.append([start, self._addcmul(None, est[:, :, :o], self.fade_in), self.fade_in])
            if seg > 2 * o:
                self.parts.append([start + o, est[:, :, o:seg - o], None])
            if o:
                self.parts.append([start + seg - o, self._addcmul(None, est[:, :, seg - o:], self.fade_out),
                                   self.fade_out])
        self.running -= len(starts)
        if self.progress:
            self.progress(min(self.next_chunk, self.total))

    def _addcmul(self, acc: torch.Tensor | None, est: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """acc (None: zeros) += est · w, fused as `addcmul_` is, in serial pieces."""
        if acc is None:
            acc = torch.from_numpy(np.zeros(est.shape, np.float32))
        step = max(1, (self.GRAIN - 1) // (est.shape[0] * est.shape[1]))
        for a in range(0, est.shape[2], step):
            acc[:, :, a:a + step].addcmul_(est[:, :, a:a + step], w[a:a + step])
        return acc

    def ready(self) -> Iterator[torch.Tensor]:
        limit = self.pending[0][0] if self.pending else (self.total if self.closed else self.next_chunk)
        end = min(limit, self.total)
        if self.running:
            return
        while self.parts and self.out_start < end:
            start, values, weights = part = self.parts[0]
            m = min(values.shape[2], end - start)
            if m == values.shape[2]:
                self.parts.popleft()
            else:  # the rest is past the end of the input, or (never expected) later than `end`
                part[0], part[1] = start + m, values[:, :, m:]
                if weights is not None:
                    part[2] = weights[m:]
                values = values[:, :, :m]
                weights = None if weights is None else weights[:m]
            self.out_start = start + m
            if weights is not None:
                np.divide(values.numpy(), weights.numpy(), out=values.numpy())
            yield values
        if self.closed and self.out_start >= self.total:
            self.parts.clear()  # past the input's end: it would hold the model's output

    def drop(self) -> None:
        super().drop()
        self.parts.clear()


def pcm_into(src: np.ndarray, dst: np.ndarray, bits: int, mono: bool, scratch: np.ndarray) -> None:
    """`to_pcm` on the host: float [C, n] -> integers `dst` [n, C'] (C' = 1 with `mono`: the
    channels' mean), bit for bit the same. In numpy, piece by piece through `scratch` [C, k]
    float32, so each step runs in cache and on this thread only (torch would spread it over
    the cores, which here are the decoders' and writers')."""
    step = scratch.shape[1]
    with np.errstate(invalid="ignore"):  # NaN becomes 0, as in torch
        for a in range(0, src.shape[1], step):
            b = min(src.shape[1], a + step)
            s = scratch[:dst.shape[1], :b - a]
            if mono:  # the mean (L + R) / 2 and the scaling below, both exact powers of two, in one
                np.add(src[:1, a:b], src[1:2, a:b], out=s)
                np.multiply(s, np.float32(2.0**14 if bits == 16 else 2.0**30), out=s)
            else:
                np.multiply(src[:, a:b], np.float32(2.0**15 if bits == 16 else 2.0**31), out=s)
            np.rint(s, out=s)
            if bits == 16:
                np.clip(s, np.float32(-32768), np.float32(32767), out=s)
            else:
                np.multiply(s, np.float32(1 / 256), out=s)
                np.floor(s, out=s)
                np.clip(s, np.float32(-(2**23)), np.float32(2**23 - 1), out=s)
                np.multiply(s, np.float32(256), out=s)
            for c, row in enumerate(s):  # interleaved: one strided store per channel
                dst[a:b, c] = row


# -- the pipeline -----------------------------------------------------------------------------------

@dataclass
class _File:
    handle: Handle
    stems: list[str]
    bits: int
    stream: StreamingSeparator | None = None
    writer: FileWriter | None = None
    meta: dict | None = None
    expected: float | None = None
    source_samples: int | None = None
    ended: bool = False
    rate: int = 0
    index: list[int] = field(default_factory=list)
    index_t: torch.Tensor | None = None  # the wanted stems on the device; None: all, in order
    mono_out: bool = False


class Profile:
    """Seconds per stage, summed: device stages by CUDA events (on CPU, wall time), decoding as
    the children report it (their CPU time), writing as the writer threads spend it."""

    STAGES = ("decode", "wait_input", "pin", "h2d", "model", "overlap_add", "d2h", "wait_writers", "write")

    def __init__(self):
        self.seconds = dict.fromkeys(self.STAGES, 0.0)
        self.events: collections.deque = collections.deque()  # (stage, start, end) CUDA events
        self.batches = 0
        self.padded_chunks = 0
        self.chunks = 0
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def timed(self, stage: str, device: torch.device):
        return _Timer(self, stage, device)

    def fold(self, wait: bool = False) -> None:
        """Turn finished event pairs into seconds (a resident pipeline must not keep them all)."""
        while self.events:
            stage, start, end = self.events[0]
            if wait:
                end.synchronize()
            elif not end.query():
                return
            self.seconds[stage] += start.elapsed_time(end) / 1000.0
            self.events.popleft()

    def summary(self) -> dict:
        self.fold(wait=True)
        return {"seconds": dict(self.seconds), "batches": self.batches, "chunks": self.chunks,
                "padded_chunks": self.padded_chunks}


class _Timer:
    """Events on the current stream (enter it first to time another stream's work)."""

    def __init__(self, profile: Profile, stage: str, device: torch.device):
        self.profile, self.stage, self.cuda = profile, stage, device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            self.start = torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self.profile.events.append((self.stage, self.start, end))
        else:
            self.profile.add(self.stage, time.perf_counter() - self.t0)


class SeparationPipeline:
    def __init__(self, engine: Engine, config: PipelineConfig | None = None):
        self.engine = engine
        self.device = torch.device(getattr(engine, "device", "cpu"))
        self.config = (config or PipelineConfig()).resolved(self.device)
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            self.h2d_stream = torch.cuda.Stream(self.device)
            self.d2h_stream = torch.cuda.Stream(self.device)
        self.profile = Profile()
        self.decoders = DecoderPool(self.config.decoders, self.config.queued_blocks)
        self.lanes = SerialLanes(self.config.writers)
        stage = self.config.stage_kib << 10
        self._d2h_ring = StagingRing(max(2, (self.config.write_backlog_mb << 20) // stage), stage, pin=self.cuda)
        self._scratch = np.empty((2, 32768), np.float32)  # `pcm_into`'s, on the driver thread
        if self.cuda:  # a decoded block is at most `block` + one decoder read (65536 samples), stereo float32
            block_bytes = (int(self.config.block_seconds * (engine.info.sample_rate or 48000)) + 2 * 65536) * 2 * 4
            self._h2d_ring = StagingRing(max(4, self.config.queued_blocks), block_bytes, pin=True)
        self._starved_since: float | None = None
        self._files: dict[int, _File] = {}
        self._next_fid = 0
        self._lock = threading.Lock()
        self._closing = False
        self._fns: dict[int, object] = {}
        self._params: dict[int, ChunkParams] = {}
        self.batch_used: dict[int, int] = {}
        self._inflight_h2d: collections.deque = collections.deque()
        self.broken: BaseException | None = None
        self.torch_threads: int | None = None  # what the driver thread runs the model with
        self._driver = threading.Thread(target=self._drive, name="separation-driver", daemon=True)
        self._driver.start()

    # -- public ---------------------------------------------------------------------------------
    def submit(self, request: Request) -> Handle:
        info = self.engine.info
        stems = request.stems or list(info.stems)
        unknown = sorted(set(stems) - set(info.stems))
        if unknown:
            raise ValueError(f"model {info.name!r} has no stems {unknown}")
        with self._lock:
            if self._closing or self.broken is not None:
                raise RuntimeError("the separation pipeline is closed")
            fid = self._next_fid
            self._next_fid += 1
            handle = Handle(fid, request)
            self._files[fid] = _File(handle, stems, request.bits or output_bits(request.source_bits),
                                     index=[info.stems.index(s) for s in stems])
        block = int(self.config.block_seconds * (info.sample_rate or 44100))
        self.decoders.submit({"op": "decode", "fid": fid, "path": str(request.src), "rate": info.sample_rate or None,
                              "channels": 2 if info.channels == 2 else None, "block": block})
        return handle

    def close(self) -> None:
        with self._lock:
            self._closing = True
        self.decoders.messages.put((None, {"kind": "wake"}, b""))
        self._driver.join()
        self.decoders.close()
        self.lanes.close()

    def stats(self) -> dict:
        return {**self.profile.summary(), "config": asdict(self.config), "batch_used": dict(self.batch_used),
                "torch_threads": self.torch_threads}

    # -- the driver thread ----------------------------------------------------------------------
    def _drive(self) -> None:
        # torch keeps a thread count per thread, taken from a process default when the thread
        # first runs an op: set it here, where the model runs, whatever thread built the pipeline.
        # It also becomes the default of threads that have not yet run torch (torch's own rule).
        torch.set_num_threads(self.config.threads)
        self.torch_threads = torch.get_num_threads()
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - a broken driver fails every file, loudly
            self.broken = exc
            for f in list(self._files.values()):
                self._fail(f, RuntimeError(f"the separation pipeline stopped: {exc!r}"))
            raise

    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self._lock:
                    if self._closing and not self._files:
                        return
                if len(self.profile.events) > 64:
                    self.profile.fold()
                self._cancel_requested()
                pending = sum(len(f.stream.pending) for f in self._active())
                got = 0
                if pending < 2 * self._max_batch():  # room for more input: read what has arrived
                    got = self._take_messages(block=pending == 0, wait_s=0.002)
                self._run_ready_batch(force=self._starved(got))

    def _starved(self, got: int) -> bool:
        """Run a partial batch only when input has stopped coming: every file in flight has
        been read to its end, or nothing arrived for 50 ms (a padded batch wastes the device)."""
        if got:
            self._starved_since = None
            return False
        active = self._active()
        if active and all(f.ended for f in active):
            return True
        now = time.perf_counter()
        if self._starved_since is None:
            self._starved_since = now
        return now - self._starved_since > 0.05

    def _max_batch(self) -> int:
        return max((p.batch for p in self._params.values()), default=self.config.batch or 8)

    def _active(self) -> list[_File]:
        return [f for f in self._files.values() if f.stream is not None]

    def _take_messages(self, block: bool, wait_s: float) -> int:
        got = 0
        t0 = time.perf_counter()
        while True:
            try:
                if not got:
                    fid, header, payload = self.decoders.messages.get(timeout=0.5 if block else wait_s)
                else:
                    fid, header, payload = self.decoders.messages.get_nowait()
            except queue.Empty:
                break
            got += 1
            self._on_message(fid, header, payload)
            if got >= self.config.decoders * 2:
                break
        if block:
            self.profile.add("wait_input", time.perf_counter() - t0)
        return got

    def _on_message(self, fid, header: dict, payload: bytes) -> None:
        f = self._files.get(fid)
        if f is None:
            return  # a wake-up, or a file already failed or cancelled
        kind = header["kind"]
        if kind == "meta":
            self._start_file(f, header)
        elif kind == "block":
            block = np.frombuffer(payload, np.float32).reshape(header["channels"], header["samples"])
            f.stream.push(self._to_device(block))
        elif kind == "end":
            self.profile.add("decode", header.get("decode_s", 0.0))
            f.source_samples = int(header["source_samples"])
            f.stream.close()
            f.ended = True
            self._emit(f)
        elif kind == "error":
            message = header.get("message", "decoding failed")
            self._fail(f, Cancelled() if message == "cancelled" else AudioReadError(message))

    def _start_file(self, f: _File, meta: dict) -> None:
        rate = int(meta["rate"])
        if rate not in self._params:
            base = self.config.chunk or self.engine.chunking(rate)
            self._params[rate] = base.with_batch(self.config.batch or base.batch)
            self._fns[rate] = self.engine.tensor_fn(rate)
        f.meta, f.rate = meta, rate
        if f.index != list(range(len(self.engine.info.stems))):
            f.index_t = torch.tensor(f.index, device=self.device)
        f.expected = meta.get("expected")
        f.mono_out = int(meta["source_channels"]) == 1 and int(meta["channels"]) == 2
        params = self._params[rate]
        if self.cuda or 2 * params.overlap > params.segment:
            f.stream = StreamingSeparator(None, params, int(meta["channels"]), device=self.device)
        else:
            f.stream = HostBlend(params, int(meta["channels"]))
        try:
            f.writer = FileWriter(f.handle.request, f.stems, rate, meta, f.bits)
        except (OSError, RuntimeError, sf.LibsndfileError) as exc:
            self._fail(f, exc)

    def _to_device(self, block: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(block)
        if not self.cuda:
            return host
        t0 = time.perf_counter()
        if host.numel() * 4 > self._h2d_ring.nbytes:  # never expected; correct, only slower
            buf, pinned = None, host.pin_memory()
        else:
            while True:  # a buffer whose copy has finished goes back to the ring
                while self._inflight_h2d and self._inflight_h2d[0][0].query():
                    self._h2d_ring.put(self._inflight_h2d.popleft()[1])
                buf = self._h2d_ring.try_get()
                if buf is not None:
                    break
                self._inflight_h2d[0][0].synchronize()
            pinned = staged(buf, host).copy_(host)
        self.profile.add("pin", time.perf_counter() - t0)
        with torch.cuda.stream(self.h2d_stream), self.profile.timed("h2d", self.device):
            dev = pinned.to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.h2d_stream)
        torch.cuda.current_stream(self.device).wait_event(done)
        dev.record_stream(torch.cuda.current_stream(self.device))
        if buf is not None:
            self._inflight_h2d.append((done, buf))
        return dev

    def _run_ready_batch(self, force: bool) -> bool:
        """Run one batch of the rate with most queued chunks: a full one, or (`force`, nothing
        arrived) whatever is queued, so the last chunks of the last files never wait."""
        active = self._active()
        if not active:
            return False
        by_rate: dict[int, list[_File]] = collections.defaultdict(list)
        for f in active:
            if f.stream.pending:
                by_rate[f.rate].append(f)
        if not by_rate:
            return False
        rate, files = max(by_rate.items(), key=lambda kv: sum(len(f.stream.pending) for f in kv[1]))
        params = self._params[rate]
        queued = sum(len(f.stream.pending) for f in files)
        if queued < params.batch and not force:
            return False
        taken = []
        for f in files:
            room = params.batch - len(taken)
            if room <= 0:
                break
            taken += [(f, start, chunk) for start, chunk in f.stream.take(room)]
        self._forward(rate, taken)
        for f in {id(t[0]): t[0] for t in taken}.values():
            self._emit(f)
        return True

    def _forward(self, rate: int, taken: list) -> None:
        """Run `taken` chunks, halving the batch after an out-of-memory error (down to one)."""
        params, fn = self._params[rate], self._fns[rate]
        size = params.batch
        i = 0
        while i < len(taken):
            part = taken[i:i + size]
            if self.cuda:
                x = torch.stack([c for _, _, c in part])
            else:  # numpy: one thread, no OpenMP spinning after it
                x = torch.from_numpy(np.stack([c.numpy() for _, _, c in part]))
            pad = size - len(part) if self.config.pad_batches else 0
            if pad:
                x = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))])
            try:
                with self.profile.timed("model", self.device):
                    y = fn(x)[:len(part)]
            except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
                if not is_out_of_memory(exc) or size == 1:
                    for f in {id(t[0]): t[0] for t in part}.values():
                        self._fail(f, exc)
                    return
                size //= 2
                self._params[rate] = params = params.with_batch(size)
                if self.cuda:
                    torch.cuda.empty_cache()
                continue
            self.profile.batches += 1
            self.profile.chunks += len(part)
            self.profile.padded_chunks += pad
            self.batch_used[rate] = size
            with self.profile.timed("overlap_add", self.device):
                k = 0
                while k < len(part):  # each file's chunks sit together: slices, no index copies
                    f, j = part[k][0], k
                    while j < len(part) and part[j][0] is f:
                        j += 1
                    if f.stream is not None:
                        f.stream.absorb([t[1] for t in part[k:j]], y[k:j])
                    k = j
            i += len(part)

    def _emit(self, f: _File) -> None:
        """Hand finished output to the file's writer lane; close the file when all is out."""
        if f.stream is None:
            return
        for block in f.stream.ready():
            self._write_block(f, block)
        if f.expected:
            f.handle.fraction = min(f.stream.out_start / f.expected, 0.99)
        if f.ended and f.stream.done:
            self._finish_file(f)

    def _write_block(self, f: _File, block: torch.Tensor) -> None:
        if not self.cuda:
            return self._write_host(f, block.numpy())
        with self.profile.timed("overlap_add", self.device):
            out = block if f.index_t is None else block.index_select(0, f.index_t)  # [stems, C, n]
            if not f.writer.resampled:  # integers made here; resampling needs floats
                if f.mono_out:
                    out = out.mean(dim=1, keepdim=True)
                out = to_pcm(out, f.bits)
        # integers are [stems, n, C], floats [stems, C, n]: cut along time into ring-sized pieces
        axis = 1 if not f.writer.resampled else 2
        per_sample = out.numel() // out.shape[axis] * out.element_size()
        step = max(1, self._d2h_ring.nbytes // per_sample)
        self.d2h_stream.wait_stream(torch.cuda.current_stream(self.device))
        out.record_stream(self.d2h_stream)
        for a in range(0, out.shape[axis], step):
            piece = out.narrow(axis, a, min(step, out.shape[axis] - a))
            buf = self._ring_get()
            host = staged(buf, piece)
            with torch.cuda.stream(self.d2h_stream), self.profile.timed("d2h", self.device):
                host.copy_(piece, non_blocking=True)
                ready = torch.cuda.Event()
                ready.record(self.d2h_stream)
            self._submit_write(f, host.numpy(), buf, ready)

    def _write_host(self, f: _File, block: np.ndarray) -> None:
        """CPU: each wanted stem of `block` [S, C, n] float32 goes straight into a ring buffer,
        as integers [stems, n, C] or, for the resampler, floats [stems, C, n]."""
        floats = f.writer.resampled  # the resampler takes floats, and makes mono itself
        channels = 1 if f.mono_out and not floats else block.shape[1]
        dtype = np.float32 if floats else np.int16 if f.bits == 16 else np.int32
        per_sample = len(f.index) * channels * np.dtype(dtype).itemsize
        step = max(1, self._d2h_ring.nbytes // per_sample)
        for a in range(0, block.shape[2], step):
            m = min(step, block.shape[2] - a)
            buf = self._ring_get()
            with self.profile.timed("overlap_add", self.device):
                if floats:
                    host = buf.numpy()[:m * per_sample].view(dtype).reshape(len(f.index), block.shape[1], m)
                    for dst, i in zip(host, f.index):
                        np.copyto(dst, block[i, :, a:a + m])
                else:
                    host = buf.numpy()[:m * per_sample].view(dtype).reshape(len(f.index), m, channels)
                    for dst, i in zip(host, f.index):
                        pcm_into(block[i, :, a:a + m], dst, f.bits, f.mono_out, self._scratch)
            self._submit_write(f, host, buf, None)

    def _ring_get(self) -> torch.Tensor:
        t0 = time.perf_counter()
        buf = self._d2h_ring.get()  # bounded host memory: wait for the writers
        self.profile.add("wait_writers", time.perf_counter() - t0)
        return buf

    def _submit_write(self, f: _File, host: np.ndarray, buf: torch.Tensor, ready) -> None:
        def write():
            try:
                if ready is not None:
                    ready.synchronize()
                t0 = time.perf_counter()
                f.writer.write(host)
                self.profile.add("write", time.perf_counter() - t0)
            finally:
                self._d2h_ring.put(buf)

        self.lanes.submit(f.handle.fid, write)

    def _finish_file(self, f: _File) -> None:
        self._forget(f)
        used = {"model_rate": f.rate, "source_rate": int(f.meta["source_rate"]), "output_format": f.handle.request.fmt,
                "output_bits": f.bits, **self._params[f.rate].as_dict(), "pipeline": "device-resident"}

        def close(f=f, used=used):
            try:
                outputs = f.writer.close(f.source_samples)
            except BaseException as exc:  # noqa: BLE001 - reported to the file's caller
                f.writer.abandon()
                f.handle._finish(error=exc)
                return
            f.handle.fraction = 1.0
            f.handle._finish(result=(outputs, used))

        self.lanes.submit(f.handle.fid, close)

    def _fail(self, f: _File, exc: BaseException) -> None:
        self._forget(f)
        self.decoders.cancel(f.handle.fid)
        if f.stream is not None:
            f.stream.drop()

        def abandon(f=f, exc=exc):
            if f.writer is not None:
                f.writer.abandon()
            f.handle._finish(error=exc)

        self.lanes.submit(f.handle.fid, abandon)

    def _forget(self, f: _File) -> None:
        with self._lock:
            self._files.pop(f.handle.fid, None)

    def _cancel_requested(self) -> None:
        for f in list(self._files.values()):
            if f.handle.cancel_requested:
                self._fail(f, Cancelled())


def separate_many(engine: Engine, requests: list[Request], config: PipelineConfig | None = None,
                  pipeline: SeparationPipeline | None = None) -> list[tuple[list[StemOutput], dict] | BaseException]:
    """Separate every request; each result is (stems, parameters used) or that file's error."""
    own = pipeline is None
    pipeline = pipeline or SeparationPipeline(engine, config)
    try:
        handles = [pipeline.submit(r) for r in requests]
        results = []
        for h in handles:
            try:
                results.append(h.result())
            except (AudioReadError, OSError, RuntimeError, Cancelled) as exc:
                results.append(exc)
        return results
    finally:
        if own:
            pipeline.close()
