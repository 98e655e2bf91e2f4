"""Audio in and out for separation, streaming: decode any format with PyAV block by block,
resampled to the model's rate; write stems with soundfile (WAV/FLAC, 16 or 24 bit) back at the
source's rate, channel count and exact length. Memory does not grow with the input's length.
"""
from __future__ import annotations

import av
import numpy as np
import soundfile as sf

from sharedcore.media import open_container


class AudioReadError(Exception):
    pass


def describe_av_error(exc: Exception) -> str:
    """FFmpeg's complaint in words for people (no errno numbers, no exception class names)."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, av.error.InvalidDataError):
        return "not a recognised audio file"
    return (getattr(exc, "strerror", None) or "the audio could not be decoded").rstrip(".").lower()


SUBTYPES = {("wav", 16): "PCM_16", ("wav", 24): "PCM_24", ("flac", 16): "PCM_16", ("flac", 24): "PCM_24"}


def output_bits(source_bits: int | None) -> int:
    """Preserve the source bit depth where we can (24-bit and deeper → 24, else 16)."""
    return 24 if source_bits and source_bits >= 24 else 16


# --- streaming -------------------------------------------------------------------------------

BLOCK = 1 << 16


class AudioStream:
    """Decode a file block by block (`block` samples each, the last one shorter) at `rate`
    (None: its own rate) as float32 [channels, n].

    `source_rate`, `source_channels` and `source_bits` describe the file; `source_samples`
    counts the samples decoded so far at the source rate (final once iteration ends)."""

    def __init__(self, path, rate: int | None = None, channels: int | None = None, block: int = BLOCK):
        try:
            self.container = open_container(path)
        except (av.error.FFmpegError, FileNotFoundError) as exc:
            raise AudioReadError(describe_av_error(exc)) from exc
        if not self.container.streams.audio:
            self.container.close()
            raise AudioReadError("no audio stream")
        self.stream = self.container.streams.audio[0]
        self.source_rate = int(self.stream.rate)
        self.source_channels = int(self.stream.codec_context.channels or 1)
        self.rate = rate or self.source_rate
        self.channels = channels or min(self.source_channels, 2)
        self.source_samples = 0
        self.block = block
        # FFmpeg's filter graph converts and gathers the frames into blocks of exactly `block`
        # samples (the last one shorter): one array per block, not one per frame concatenated
        self._resampler = av.AudioResampler(format="fltp", layout="stereo" if self.channels == 2 else "mono",
                                            rate=self.rate, frame_size=block)

    def __iter__(self):
        try:
            for frame in self.container.decode(self.stream):
                self.source_samples += frame.samples
                for out in self._resampler.resample(frame):
                    yield out.to_ndarray()
            for out in self._resampler.resample(None):
                yield out.to_ndarray()
        except av.error.FFmpegError as exc:
            raise AudioReadError(f"decoding failed: {describe_av_error(exc)}") from exc
        finally:
            self.container.close()


class StemWriter:
    """Write one stem incrementally at the source rate and channel count, sample-accurate.

    Blocks arrive at the model's rate and channels; a stateful resampler converts them back, and
    `close(n)` pads or truncates to exactly the source's sample count."""

    def __init__(self, path, model_rate: int, source_rate: int, source_channels: int, fmt: str, bits: int):
        self.channels = 1 if source_channels == 1 else 2
        self.file = sf.SoundFile(str(path), "w", samplerate=source_rate, channels=self.channels,
                                 subtype=SUBTYPES[(fmt, bits)], format=fmt.upper())
        self.written = 0
        self._tail = np.zeros((self.channels, 0), np.float32)  # held back until the length is known
        self._resampler = None
        if model_rate != source_rate:
            self._model_rate = model_rate
            self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=source_rate)

    HOLD = 8192  # more than any resampler's excess; FLAC cannot be truncated afterwards

    def _put(self, block: np.ndarray) -> None:
        if self.channels == 1 and block.shape[0] == 2:
            block = block.mean(axis=0, keepdims=True)
        self._tail = np.concatenate([self._tail, block.astype(np.float32)], axis=1)
        ready = self._tail.shape[1] - self.HOLD
        if ready > 0:
            self._write(self._tail[:, :ready])
            self._tail = self._tail[:, ready:]

    def _write(self, block: np.ndarray) -> None:
        self.file.write(np.clip(block, -1.0, 1.0).T)
        self.written += block.shape[1]

    def write(self, block: np.ndarray) -> None:
        if self._resampler is None:
            return self._put(block)
        if block.shape[0] == 1:
            block = np.repeat(block, 2, axis=0)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block, dtype=np.float32), format="fltp", layout="stereo")
        frame.sample_rate = self._model_rate
        for out in self._resampler.resample(frame):
            self._put(out.to_ndarray())

    def close(self, total_samples: int) -> None:
        if self._resampler is not None:
            for out in self._resampler.resample(None):
                self._put(out.to_ndarray())
        need = total_samples - self.written
        if need < 0:
            raise RuntimeError(f"stem ran {-need} samples past the source length")
        tail = self._tail[:, :need]
        if tail.shape[1] < need:
            tail = np.pad(tail, ((0, 0), (0, need - tail.shape[1])))
        self._write(tail)
        self.file.close()
