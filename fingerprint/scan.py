"""One decoding pass per audio file: probe facts, integrity check, Chromaprint fingerprint and
(when asked) the spectral-peak landmark print (`fingerprint.landmarks`) from the same PCM.

Uploads can be an hour long, so the file is decoded once, packet by packet (never whole in
memory), down-mixed and resampled to 11025 Hz mono s16 (`sharedcore.media.MonoPCM`: libsoxr,
one call per 4 s block) and fed to libchromaprint as it goes — the input fpcalc gives it, so
the raw items are Chromaprint-compatible.

Speed variants: further Chromaprint contexts get the same PCM resampled from 11025/f Hz to
11025 Hz (one streaming libsoxr resampler per variant), which plays it 1/f times as fast and
shifts its pitch by 1/f — exactly undoing a turntable-style speed change f. Chromaprint
items survive only about ±0.3 % of speed change (its chroma bins and 2-bit quantisers flip),
so finding ±3 % takes a grid every 0.5 % from −3 % to +3 %. The grid is split between the two
sides, like baby steps and giant steps: references are fingerprinted once, at registration, at
`REFERENCE_SPEEDS` (every 1 %, indexed one index per speed), and each query at 1.0 and the
`QUERY_VARIANTS` (+0.5 %); a (reference speed s, query factor f) pair finds copies sped up by
s × f, so 2 query contexts × 7 reference speeds cover 0.97–1.035 every 0.5 %. Before, each
query was fingerprinted at all 13 grid points, 0.97 s of the 2.7 s of CPU a 4-minute upload's
scan took; the cost moved to registration (once per reference) and the Chromaprint index holds
7 prints per reference (~113 bytes per reference second each, against the landmark index's
2,800). The contexts are fed in parallel threads (ctypes and libsoxr release the GIL).
libchromaprint could resample itself (told the PCM is at 11025/f Hz), but its resampler cost
twice what its fingerprinting does: 67 ms per variant of a 4-minute query's CPU on the CI
machine, against ~30 ms for libsoxr.
"""
from __future__ import annotations

import math
import os
import queue
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import av
import chromaprint
import numpy as np
import soundfile as sf
import soxr

from sharedcore.errors import DomainError
from sharedcore.media import MonoPCM, open_container

from .landmarks import LandmarkExtractor

FP_RATE = 11025
#: Chromaprint's hop: 4096-sample frames with 2/3 overlap at 11025 Hz.
ITEM_SECONDS = 4096 / 3 / FP_RATE
#: Decode errors tolerated before a file counts as corrupt (a glitch in one MP3 frame is not).
MAX_BAD_PACKETS = 8
#: Speeds at which catalog references are fingerprinted besides 1.0 (see the module docstring).
REFERENCE_SPEEDS = (0.97, 0.98, 0.99, 1.01, 1.02, 1.03)
#: Speed factors each query is fingerprinted at besides 1.0: half the reference speeds' step.
QUERY_VARIANTS = (1.005,)
#: PCM block (samples at FP_RATE) handed to the Chromaprint contexts at once.
BLOCK = 4 * FP_RATE


def _new_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="chromaprint")


_pool = _new_pool()


def _pool_after_fork() -> None:
    """A forked child (worker pools, `ProcessPoolExecutor`) inherits the pool's bookkeeping but
    none of its threads, so work submitted there would wait forever: give the child its own."""
    global _pool
    _pool = _new_pool()


os.register_at_fork(after_in_child=_pool_after_fork)


class AudioError(DomainError):
    """Bad audio input; `code` is machine-readable (not_audio, corrupt_audio, too_long...)."""


@dataclass
class AudioScan:
    container: str
    codec: str
    sample_rate: int
    channels: int
    bits_per_sample: int | None
    duration_s: float
    peak_dbfs: float
    fingerprint: np.ndarray = field(repr=False)  # raw uint32 Chromaprint items
    fingerprint_algorithm: int = 1
    #: (speed factor, items) for each requested speed variant, 1.0 (= `fingerprint`) first.
    variants: list = field(default_factory=list, repr=False)
    #: (speed, items) for each requested reference speed: the audio as if played `speed` times
    #: as fast (the inverse of a variant's factor).
    speeds: list = field(default_factory=list, repr=False)
    #: The landmark print, when asked for: (kind, hashes, times, peaks or peak map).
    landmarks: tuple | None = field(default=None, repr=False)

    def facts(self) -> dict:
        return {
            "container": self.container, "codec": self.codec, "sample_rate": self.sample_rate,
            "channels": self.channels, "bits_per_sample": self.bits_per_sample,
            "duration_s": round(self.duration_s, 3), "peak_dbfs": round(self.peak_dbfs, 2),
        }


def _bits_per_sample(path: str, ctx) -> int | None:
    """The source's real bit depth (PyAV reports 24-bit FLAC as s32, so ask libsndfile first)."""
    try:
        subtype = sf.info(str(path)).subtype
    except (sf.LibsndfileError, RuntimeError, TypeError):
        subtype = ""
    for bits in (8, 16, 24, 32):
        if subtype in (f"PCM_{bits}", f"PCM_S{bits}", f"PCM_U{bits}"):
            return bits
    name = ctx.name or ""
    if name.startswith("pcm_"):
        for bits in (8, 16, 24, 32, 64):
            if str(bits) in name:
                return bits
    return None


def _riff_truncation(path: str) -> str | None:
    """FFmpeg sizes a WAV from the bytes present; the RIFF `data` chunk says what should be."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = os.fstat(fh.fileno()).st_size
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                present = size - fh.tell()
                if length != 0xFFFFFFFF and length > present + 1:
                    return f"the file is truncated: {present} of {length} audio bytes present"
                return None
            fh.seek(length + (length & 1), os.SEEK_CUR)


class _Contexts:
    """Chromaprint contexts for the base fingerprint and each speed variant, fed block-wise on
    the pool's threads (libchromaprint and libsoxr release the GIL) while this thread decodes
    the next block, and the landmark extractor when there is one, on a thread of its own that
    may fall up to `LANDMARK_LAG` blocks behind: its blocks cost about as much as decoding them,
    and waiting for it block by block left a core idle for a fifth of a 4-minute scan."""

    #: Blocks the landmark thread may hold queued before the decoder waits for it (~50 KB each).
    LANDMARK_LAG = 4

    def __init__(self, factors, landmarks: LandmarkExtractor | None = None):
        self.landmarks = landmarks
        self.factors = [1.0, *factors]
        self.contexts = []
        #: per context, the streaming resampler from 11025/f Hz to 11025 Hz (None for f = 1)
        self.speeds = []
        for f in self.factors:
            ctx = chromaprint.Fingerprinter()
            ctx.start(FP_RATE, 1)
            self.contexts.append(ctx)
            self.speeds.append(None if f == 1.0 else soxr.ResampleStream(int(round(FP_RATE / f)), FP_RATE, 1,
                                                                           dtype="int16", quality="QQ"))
        self.pending = []
        self._lm_queue: queue.Queue | None = None
        self._lm_error: BaseException | None = None
        self._lm_thread = None
        if landmarks is not None:
            self._lm_queue = queue.Queue(maxsize=self.LANDMARK_LAG)
            self._lm_thread = threading.Thread(target=self._landmark_loop, name="landmarks", daemon=True)
            self._lm_thread.start()

    def _landmark_loop(self) -> None:
        while (pcm := self._lm_queue.get()) is not None:
            if self._lm_error is None:  # after a failure, drain without work until closed
                try:
                    self.landmarks.feed(pcm)
                except BaseException as exc:  # noqa: BLE001 - re-raised by close() in the scanning thread
                    self._lm_error = exc

    def _wait(self) -> None:
        for fut in self.pending:
            fut.result()
        self.pending = []

    @staticmethod
    def _feed(ctx, speed, pcm: np.ndarray, last: bool = False) -> None:
        if speed is not None:
            pcm = speed.resample_chunk(pcm, last=last)
        if pcm.size:
            ctx.feed(pcm.tobytes())

    def feed(self, pcm: np.ndarray, last: bool = False) -> None:
        """Hand a block (s16 mono) to every context; returns at once so decoding overlaps with
        hashing (a context is never fed two blocks at a time: the previous block is awaited).
        `last` flushes the speed variants' resamplers (pcm may then be empty)."""
        pcm = np.ascontiguousarray(pcm.reshape(-1))
        if self._lm_queue is not None and pcm.size:
            self._lm_queue.put(pcm.copy())  # blocks only when the landmark thread lags LANDMARK_LAG blocks
        if len(self.contexts) == 1 and self.landmarks is None:
            self._feed(self.contexts[0], None, pcm)
            return
        self._wait()
        self.pending += [_pool.submit(self._feed, ctx, speed, pcm, last)
                         for ctx, speed in zip(self.contexts, self.speeds)]

    def close(self, quiet: bool = False) -> None:
        """Stop the landmark thread (after its queued blocks); raise what it raised unless
        `quiet`. Safe to call twice; `scan_audio` calls it on every exit, so a refused file
        leaves no thread behind."""
        if self._lm_thread is not None:
            self._lm_queue.put(None)
            self._lm_thread.join()
            self._lm_thread = None
        if self._lm_error is not None and not quiet:
            raise self._lm_error

    def finish(self) -> list[tuple[float, np.ndarray, int]]:
        self._wait()
        self.close()
        out = []
        for f, ctx in zip(self.factors, self.contexts):
            try:
                raw, algorithm = chromaprint.decode_fingerprint(ctx.finish())
            except chromaprint.FingerprintError:
                raw, algorithm = [], 1
            out.append((f, np.asarray(raw, dtype=np.uint32), int(algorithm)))
        return out


#: Below this peak level audio counts as silence (nothing to identify or separate).
SILENCE_DBFS = -70.0


def check_identifiable(scan: AudioScan, min_seconds: float) -> None:
    """Refuse audio the matcher cannot judge: a gate that lets unidentifiable clips through
    could be walked around by cutting a song into pieces shorter than the minimum match.
    Length first: a clip of a few samples has no measurable level at all, and "too short" is
    what its sender needs to hear."""
    seconds = scan.fingerprint.size * ITEM_SECONDS
    if seconds < min_seconds:
        raise AudioError("too_short", f"{scan.duration_s:.1f} s of audio is too short to identify; "
                                      f"at least {min_seconds + 2.5:.0f} s are needed")
    if scan.peak_dbfs < SILENCE_DBFS:
        raise AudioError("silent", f"the audio is silent (peak {scan.peak_dbfs:.0f} dBFS)")


def pack_variants(variants: list[tuple[float, np.ndarray]]) -> bytes:
    """Speed variants (or reference speeds) as bytes for storage: per variant float32 factor,
    uint32 count, items."""
    parts = [struct.pack("<I", len(variants))]
    for factor, items in variants:
        parts.append(struct.pack("<fI", factor, items.size))
        parts.append(np.asarray(items, "<u4").tobytes())
    return b"".join(parts)


def unpack_variants(blob: bytes) -> list[tuple[float, np.ndarray]]:
    if not blob:
        return []
    (count,), pos, out = struct.unpack_from("<I", blob), 4, []
    for _ in range(count):
        factor, n = struct.unpack_from("<fI", blob, pos)
        pos += 8
        out.append((round(factor, 4), np.frombuffer(blob, "<u4", n, pos)))
        pos += 4 * n
    return out


def scan_audio(path: str, max_seconds: float | None = None, speed_variants=(),
               landmarks: str | None = None, reference_speeds=()) -> AudioScan:
    """Decode `path` once; raise AudioError with a code for anything that is not sound audio.

    `speed_variants` (a query's QUERY_VARIANTS) adds those speed-variant fingerprints to
    `variants`; `reference_speeds` (a reference's REFERENCE_SPEEDS) adds `speeds`;
    `landmarks` ("reference" for catalog audio, "query" for uploads) adds the landmark print,
    computed on a thread of its own beside the Chromaprint contexts (see `_Contexts`).
    """
    try:
        container = open_container(path)
    except FileNotFoundError as exc:
        raise AudioError("not_found", f"file not found: {path}") from exc
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError("not_audio", "not a recognised audio file (no decoder recognises its contents)") from exc
    with container:
        if not container.streams.audio:
            raise AudioError("not_audio", "the file has no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        sample_rate = int(stream.rate or ctx.sample_rate or 0)
        channels = int(ctx.channels or 0)
        if sample_rate <= 0 or channels <= 0:
            raise AudioError("not_audio", "the file has no decodable audio stream")
        declared = _declared_duration(container, stream)
        if max_seconds is not None and declared is not None and declared > max_seconds + 1:
            raise AudioError("too_long", f"audio is {declared:.0f} s long; the limit is {max_seconds:.0f} s")

        mono = MonoPCM(FP_RATE, BLOCK)
        lmx = LandmarkExtractor(landmarks) if landmarks else None
        fp = _Contexts([*speed_variants, *(1 / s for s in reference_speeds)], lmx)
        try:
            n_samples = 0
            peak = 0
            bad_packets = 0
            try:
                for packet in container.demux(stream):
                    try:
                        frames = packet.decode()
                    except av.error.InvalidDataError:
                        bad_packets += 1
                        if bad_packets > MAX_BAD_PACKETS:
                            raise AudioError("corrupt_audio", "too many undecodable audio packets") from None
                        continue
                    for frame in frames:
                        n_samples += frame.samples
                        if max_seconds is not None and n_samples > (max_seconds + 1) * sample_rate:
                            raise AudioError("too_long", f"audio is longer than the {max_seconds:.0f} s limit")
                        for pcm in mono.push(frame):
                            peak = max(peak, int(np.abs(pcm.astype(np.int32)).max()))
                            fp.feed(pcm)
                for pcm in mono.flush():  # the last (partial) block
                    peak = max(peak, int(np.abs(pcm.astype(np.int32)).max()))
                    fp.feed(pcm)
                fp.feed(np.zeros(0, np.int16), last=True)
            except av.error.FFmpegError as exc:
                raise AudioError("corrupt_audio", f"decoding failed: {exc}") from exc

            if truncated := _riff_truncation(str(path)):
                raise AudioError("corrupt_audio", truncated)
            if n_samples == 0:
                raise AudioError("corrupt_audio", "no audio could be decoded from the file")
            duration = n_samples / sample_rate
            if declared and declared > 5 and duration < 0.9 * declared:
                raise AudioError(
                    "corrupt_audio", f"the file is truncated: {duration:.1f} s decoded of {declared:.1f} s declared"
                )
            variants = fp.finish()
        except BaseException:
            fp.close(quiet=True)  # the landmark thread: no thread outlives a refused file
            raise
        _, raw, algorithm = variants[0]
        print_ = None
        if lmx is not None:
            hashes, times = lmx.finish()
            print_ = (landmarks, hashes, times, lmx.peaks() if landmarks == "reference" else lmx.peak_map())
        return AudioScan(
            container=container.format.name.split(",")[0],
            codec=ctx.name,
            sample_rate=sample_rate,
            channels=channels,
            bits_per_sample=_bits_per_sample(path, ctx),
            duration_s=duration,
            peak_dbfs=20 * math.log10(peak / 32768) if peak else -math.inf,
            fingerprint=raw,
            fingerprint_algorithm=algorithm,
            variants=[(f, items) for f, items, _ in variants[:1 + len(speed_variants)]],
            speeds=[(s, items) for s, (_, items, _) in zip(reference_speeds, variants[1 + len(speed_variants):])],
            landmarks=print_,
        )


def _declared_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None
