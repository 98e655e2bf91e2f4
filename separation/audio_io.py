"""Audio in and out for separation: decode any format with PyAV to float32 [channels, samples]
at the source rate; write stems with soundfile (WAV/FLAC, 16 or 24 bit).

Whole-file decode for now; the separation issue makes this streaming so memory does not grow
with input length.
"""
from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import soundfile as sf


class AudioReadError(Exception):
    pass


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioReadError("no audio stream")
            stream = container.streams.audio[0]
            rate = int(stream.rate)
            channels = min(int(stream.codec_context.channels or 1), 2)
            layout = "stereo" if channels == 2 else "mono"
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            chunks = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except av.error.FFmpegError as exc:
        raise AudioReadError(str(exc)) from exc
    if not chunks:
        raise AudioReadError("no audio decoded")
    return np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32), rate


SUBTYPES = {("wav", 16): "PCM_16", ("wav", 24): "PCM_24", ("flac", 16): "PCM_16", ("flac", 24): "PCM_24"}


def write_audio(path: str | os.PathLike, audio: np.ndarray, rate: int, fmt: str = "wav", bits: int = 16) -> None:
    """Write [channels, samples] float audio, clipped to full scale."""
    subtype = SUBTYPES.get((fmt, bits))
    if subtype is None:
        raise ValueError(f"unsupported output {fmt}/{bits}-bit")
    data = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0).T
    sf.write(str(path), data, rate, subtype=subtype, format=fmt.upper())


def output_bits(source_bits: int | None) -> int:
    """Preserve the source bit depth where we can (24-bit and deeper → 24, else 16)."""
    return 24 if source_bits and source_bits >= 24 else 16


def stem_filename(stem: str, fmt: str) -> str:
    return f"{stem}.{fmt}"


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
