"""A second sampled General MIDI bank for training data: Sonivox EAS, the wavetable synthesiser
of Android's MIDI player (Debian's `libsonivox3`, Apache-2.0), driven through ctypes. No Django.

Why: every other commercial-clean bank we may train on is the Csound GM bank or our own
synthesiser, and the shipped model measurably learned that one bank's instruments (its select
songs: 3.94 dB rendered with Csound, 2.82 dB the same compositions rendered here; README). The held-out
renders use a GM sample bank nobody here may hear; another real sample bank is the closest
licence-clean stand-in. What it is not: its built-in wavetable is small and EAS renders at 22.05
kHz, so stems are resampled to the set's rate and hold nothing above 11 kHz.

Pinned like a soundfont: the library file (the samples are compiled into it) by SHA-256; a
Debian update that changes it is refused until someone re-reads its copyright and re-pins.
"""
from __future__ import annotations

import ctypes
import math
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

BANK_ID = "sonivox-eas"
LIBRARY = "libsonivox.so.3.6.11.0"
PACKAGE = "libsonivox3 3.6.11-2 (Debian)"
SHA256 = "454605421408f5cc730bbe67f625e0d1f5ddf0f2ed4fe53b794a361417fb1e28"
ATTRIBUTION = ("Sonivox EAS: 2004-2006 Sonic Network Inc., 2008-2022 The Android Open Source Project, "
               "2022 Pedro López-Cabanillas")
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib")
EAS_RATE = 22050  # the Debian build's output rate (EAS_Config), checked at load

_READ = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int)
_SIZE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class _File(ctypes.Structure):  # EAS_FILE: a locator read through callbacks
    _fields_ = [("handle", ctypes.c_void_p), ("readAt", _READ), ("size", _SIZE)]


class _Config(ctypes.Structure):  # S_EAS_LIB_CONFIG (EAS_I32/EAS_U32 are C longs)
    _fields_ = [("libVersion", ctypes.c_ulong), ("checkedVersion", ctypes.c_uint), ("maxVoices", ctypes.c_long),
                ("numChannels", ctypes.c_long), ("sampleRate", ctypes.c_long), ("mixBufferSize", ctypes.c_long),
                ("filterEnabled", ctypes.c_uint), ("buildTimeStamp", ctypes.c_ulong), ("buildGUID", ctypes.c_char_p)]


class SonivoxError(RuntimeError):
    pass


def library_path() -> Path | None:
    for folder in LIBRARY_DIRS:
        candidate = Path(folder) / LIBRARY
        if candidate.is_file():
            return candidate
    return None


_LIB: list = []


def _library():
    if _LIB:
        return _LIB[0]
    path = library_path()
    if path is None:
        raise SonivoxError(f"{LIBRARY} not found (apt-get install {PACKAGE.split()[0]})")
    lib = ctypes.CDLL(str(path))
    for name in ("EAS_Init", "EAS_OpenFile", "EAS_Prepare", "EAS_Render", "EAS_CloseFile", "EAS_Shutdown"):
        getattr(lib, name).restype = ctypes.c_long
    lib.EAS_Config.restype = ctypes.POINTER(_Config)
    config = lib.EAS_Config().contents
    if (config.sampleRate, config.numChannels) != (EAS_RATE, 2):
        raise SonivoxError(f"{path}: renders {config.sampleRate} Hz × {config.numChannels}, expected {EAS_RATE} × 2")
    _LIB.append((lib, int(config.mixBufferSize)))
    return _LIB[0]


def _check(result: int, what: str) -> None:
    if result != 0:
        raise SonivoxError(f"{what} failed with EAS error {result}")


def render_midi(midi_path: Path, n: int, rate: int) -> np.ndarray:
    """A standard MIDI file rendered with the EAS wavetable, resampled to `rate`, as float32
    [2, n] (silence past the file's end)."""
    lib, block = _library()
    data = Path(midi_path).read_bytes()
    buf = ctypes.create_string_buffer(data, len(data))

    def read_at(_handle, dst, offset, size):
        size = max(0, min(size, len(data) - offset))
        ctypes.memmove(dst, ctypes.addressof(buf) + offset, size)
        return size

    read_cb, size_cb = _READ(read_at), _SIZE(lambda _handle: len(data))  # kept alive while EAS reads
    locator = _File(ctypes.cast(buf, ctypes.c_void_p), read_cb, size_cb)
    frames = math.ceil(n * EAS_RATE / rate) + 64
    out = np.zeros((frames + block) * 2, np.int16)
    eas, stream = ctypes.c_void_p(), ctypes.c_void_p()
    _check(lib.EAS_Init(ctypes.byref(eas)), "EAS_Init")
    try:
        _check(lib.EAS_OpenFile(eas, ctypes.byref(locator), ctypes.byref(stream)), f"opening {midi_path}")
        try:
            _check(lib.EAS_Prepare(eas, stream), f"preparing {midi_path}")
            got, generated = 0, ctypes.c_long()
            while got < frames:
                target = out[got * 2:].ctypes.data_as(ctypes.POINTER(ctypes.c_short))
                _check(lib.EAS_Render(eas, target, ctypes.c_long(block), ctypes.byref(generated)), "EAS_Render")
                if generated.value <= 0:
                    break
                got += generated.value
        finally:
            lib.EAS_CloseFile(eas, stream)
    finally:
        lib.EAS_Shutdown(eas)
    pcm = out[: frames * 2].reshape(-1, 2).T.astype(np.float64) / 32768.0
    g = math.gcd(rate, EAS_RATE)
    resampled = resample_poly(pcm, rate // g, EAS_RATE // g, axis=1)
    audio = np.zeros((2, n), np.float32)
    audio[:, : min(n, resampled.shape[1])] = resampled[:, :n]
    return audio
