"""`dsp`: an honest, weights-free classical separator — LOW FIDELITY, and labelled so.

- drums: harmonic/percussive separation by median filtering of the magnitude spectrogram
  (Fitzgerald 2010): percussive energy is smooth across frequency, harmonic across time;
- bass: the harmonic part below ~200 Hz;
- vocals: the harmonic, centre-panned part of the 150 Hz–8 kHz band (stereo similarity, after
  Avendano 2003); for mono input this degrades to "the harmonic mid band";
- other: the residual, so the four stems sum back to the mixture exactly (before quantisation).

Soft (Wiener-style) masks are applied to each channel's STFT. Processed whole here; the
separation issue adds chunked, bounded-memory processing and measures SDR.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import median_filter

from .apply import ChunkParams, numpy_fn
from .engine import ModelInfo, ProgressFn

N_FFT = 4096
HOP = 1024
KERNEL = 17
CODE_VERSION = "dsp-1"


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


class DSPSeparator:
    info = ModelInfo(
        name="dsp", architecture="hpss-median+centre-band", stems=("vocals", "drums", "bass", "other"),
        sample_rate=0, weights_sha256=None, code_version=CODE_VERSION,
        weights_licence="none (no learned weights)", training_data="none (classical signal processing)",
        commercial_use=True, fidelity="low",
        parameters={"n_fft": N_FFT, "hop": HOP, "median_kernel": KERNEL}, channels=0,
    )

    def chunking(self, rate: int, batch: int | None = None) -> ChunkParams:
        """30 s segments overlapping by 2 s: the median filters see ±0.2 s, so chunking changes
        only what the cross-fade blends."""
        return ChunkParams(segment=30 * rate, overlap=2 * rate, batch=batch or 1)

    device = torch.device("cpu")  # numpy and scipy: no accelerator

    def batch_fn(self, rate: int):
        return lambda batch: np.stack([np.stack([s for s in self.separate(chunk, rate).values()]) for chunk in batch])

    def tensor_fn(self, rate: int):
        return numpy_fn(self.batch_fn(rate))

    def separate(self, audio: np.ndarray, rate: int, progress: ProgressFn | None = None) -> dict[str, np.ndarray]:
        audio = np.asarray(audio, dtype=np.float32)
        channels, n = audio.shape
        x = torch.from_numpy(audio)
        window = torch.hann_window(N_FFT)
        spec = torch.stft(x, N_FFT, HOP, window=window, return_complex=True, center=True)  # [C, F, T]
        if progress:
            progress(0.2)
        mag = spec.abs().mean(0).numpy()
        harm = median_filter(mag, size=(1, KERNEL), mode="nearest")
        perc = median_filter(mag, size=(KERNEL, 1), mode="nearest")
        if progress:
            progress(0.6)
        h2, p2 = harm ** 2, perc ** 2
        m_perc = p2 / (h2 + p2 + 1e-12)
        m_harm = 1.0 - m_perc
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / rate)[:, None]
        bass_band = 1.0 - _smoothstep(freqs, 150.0, 300.0)
        vocal_band = _smoothstep(freqs, 120.0, 250.0) * (1.0 - _smoothstep(freqs, 7000.0, 10000.0))
        if channels == 2:
            left, right = spec[0].numpy(), spec[1].numpy()
            cross = np.abs(left * np.conj(right))
            centre = (2 * cross / (np.abs(left) ** 2 + np.abs(right) ** 2 + 1e-12)) ** 4
        else:
            centre = np.ones_like(mag)
        masks = {
            "drums": m_perc,
            "bass": m_harm * bass_band,
            "vocals": m_harm * (1.0 - bass_band) * vocal_band * centre,
        }
        out: dict[str, np.ndarray] = {}
        for stem, mask in masks.items():
            est = torch.istft(spec * torch.from_numpy(mask.astype(np.float32)), N_FFT, HOP, window=window, length=n)
            out[stem] = est.numpy()
        out["other"] = audio - out["drums"] - out["bass"] - out["vocals"]
        if progress:
            progress(1.0)
        return {s: out[s].astype(np.float32) for s in self.info.stems}
