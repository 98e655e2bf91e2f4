"""Media with PyAV across its versions: opening, reading tags, encoding previews (plain Python,
no Django)."""
from __future__ import annotations

import av
import numpy as np
import soundfile as sf
import soxr

#: File name extensions of audio formats we accept (folders are scanned for these).
KNOWN_EXTENSIONS = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".m4a", ".aac", ".wma", ".webm"}
#: FFmpeg's demuxer name (the first of its aliases) -> the extension files of that format carry.
CONTAINER_EXTENSIONS = {"wav": ".wav", "flac": ".flac", "mp3": ".mp3", "ogg": ".ogg", "aiff": ".aiff", "mov": ".m4a",
                        "aac": ".aac", "asf": ".wma", "matroska": ".webm", "webm": ".webm", "w64": ".w64"}


#: FFmpeg's decoder names -> the codec's name as people know it ("mp3float" is FFmpeg's MP3 decoder).
CODEC_LABELS = {
    "mp3": "MP3", "mp3float": "MP3", "mp2": "MP2", "mp2float": "MP2", "aac": "AAC", "aac_fixed": "AAC",
    "aac_latm": "AAC", "flac": "FLAC", "alac": "ALAC", "vorbis": "Vorbis", "libvorbis": "Vorbis", "opus": "Opus",
    "libopus": "Opus", "wmav1": "WMA", "wmav2": "WMA", "wmapro": "WMA Pro", "wmalossless": "WMA Lossless",
    "ac3": "Dolby Digital (AC-3)", "eac3": "Dolby Digital Plus (E-AC-3)", "dts": "DTS", "wavpack": "WavPack",
    "ape": "Monkey's Audio", "tta": "TTA", "amrnb": "AMR", "amrwb": "AMR-WB",
}


def codec_label(codec: str | None) -> str:
    """A decoder's name as people read it: "MP3" for mp3float, "PCM 24-bit" for pcm_s24le."""
    if not codec:
        return "unknown"
    name = codec.lower()
    if name in CODEC_LABELS:
        return CODEC_LABELS[name]
    if name.startswith("pcm_"):
        kind = name[4:]
        digits = "".join(ch for ch in kind if ch.isdigit())
        if kind.startswith("f"):
            return f"PCM {digits}-bit float" if digits else "PCM float"
        if kind in ("alaw", "mulaw"):
            return "G.711 " + ("A-law" if kind == "alaw" else "µ-law")
        return f"PCM {digits}-bit" if digits else "PCM"
    return codec.upper()


def extension_for(container: str) -> str:
    """The file extension for a detected container (".bin" for one we have no name for)."""
    return CONTAINER_EXTENSIONS.get(container.split(",")[0].lower(), ".bin")


def open_container(path):
    """`av.open` for reading, tolerant of undecodable tag text.

    PyAV up to 18 raises on metadata that is not UTF-8 unless told `metadata_errors="ignore"`;
    PyAV 19 dropped the argument (and no longer raises). Uploads carry arbitrary tags, so a bad
    title must never make a good audio file unreadable.
    """
    try:
        return av.open(str(path), metadata_errors="ignore")
    except TypeError:  # PyAV >= 19
        return av.open(str(path))


def read_tags(path) -> dict[str, str]:
    """Title, artist and ISRC from a file's tags (ID3, Vorbis comments, MP4 atoms), when present.

    Catalog files usually carry them, so a label can register a folder without typing each one.
    Unreadable files give {} (the scan that follows refuses them with a proper reason)."""
    try:
        with open_container(path) as c:
            raw = {k.lower(): v for k, v in c.metadata.items()}
            for stream in c.streams.audio[:1]:
                raw.update({k.lower(): v for k, v in stream.metadata.items() if k.lower() not in raw})
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return {}
    tags = {"title": raw.get("title", ""), "artist": raw.get("artist") or raw.get("album_artist", ""),
            "isrc": raw.get("isrc") or raw.get("tsrc", "")}
    return {k: v.strip() for k, v in tags.items() if v and v.strip()}


PREVIEW_RATE = 44100
PREVIEW_BITRATE = 128_000


def encode_preview(src, dst) -> None:
    """A lossy MP3 (128 kb/s, stereo for a stereo source) of `src` for listening in the browser.

    The deliverable stem stays lossless and metered; the preview is what a page may play
    without spending a download. Streams frame by frame, so memory does not grow with length.
    """
    with open_container(src) as inp, av.open(str(dst), "w", format="mp3") as out:
        layout = "mono" if inp.streams.audio[0].codec_context.channels == 1 else "stereo"
        stream = _mp3_stream(out, PREVIEW_RATE, PREVIEW_BITRATE, layout)
        resampler = av.AudioResampler(format="s16p", layout=layout, rate=PREVIEW_RATE)
        for frame in inp.decode(audio=0):
            for out_frame in resampler.resample(frame):
                out.mux(stream.encode(out_frame))
        for out_frame in resampler.resample(None):
            out.mux(stream.encode(out_frame))
        out.mux(stream.encode(None))


def decoded_seconds(src) -> float:
    """How long `src` really plays: every frame decoded and counted. Container headers guess the
    length from the bitrate or an index, which a file cut short mid-write can still carry; the
    decoder stops where the data does. Raises FFmpeg's errors (and ValueError: no audio stream)
    for a file it cannot read at all."""
    with open_container(src) as inp:
        if not inp.streams.audio:
            raise ValueError("no audio stream")
        stream = inp.streams.audio[0]
        samples, rate = 0, stream.codec_context.sample_rate
        for frame in inp.decode(stream):
            samples += frame.samples
            rate = frame.sample_rate or rate
    return samples / rate if rate else 0.0


def _resampled(inp, resampler):
    for frame in inp.decode(audio=0):
        yield from resampler.resample(frame)
    yield from resampler.resample(None)


def waveform_peaks(src, bins: int = 360) -> list[float]:
    """The loudest absolute sample of each of `bins` equal slices of `src` (any format PyAV
    decodes), 0..1, for drawing a waveform. Streams frame by frame: memory holds one peak per
    1024 samples of mono audio, not the audio."""
    block = 1024
    peaks: list[np.ndarray] = []
    carry = np.zeros(0, dtype=np.float32)
    with open_container(src) as inp:
        resampler = av.AudioResampler(format="flt", layout="mono")
        for frame in _resampled(inp, resampler):
            samples = np.abs(frame.to_ndarray().reshape(-1))
            carry = np.concatenate([carry, samples]) if carry.size else samples
            whole = carry.size - carry.size % block
            if whole:
                peaks.append(carry[:whole].reshape(-1, block).max(axis=1))
                carry = carry[whole:]
    if carry.size:
        peaks.append(carry.max(keepdims=True))
    fine = np.concatenate(peaks) if peaks else np.zeros(0, dtype=np.float32)
    if fine.size == 0:
        return [0.0] * bins
    edges = np.linspace(0, fine.size, bins + 1).astype(int)
    out = [float(fine[a:max(b, a + 1)].max()) if a < fine.size else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [round(min(x, 1.0), 3) for x in out]


#: What a stem can be delivered as: key -> (container, bits or None for lossy, MIME type, extension).
#: "wav" and "flac" keep the master's bit depth; the explicit depths convert (with TPDF dither
#: when reducing). MP3 is 320 kb/s CBR via libmp3lame, the highest rate the format has.
DELIVERY_FORMATS = {
    "wav": ("wav", None, "audio/wav", ".wav"),
    "wav16": ("wav", 16, "audio/wav", ".wav"),
    "wav24": ("wav", 24, "audio/wav", ".wav"),
    "flac": ("flac", None, "audio/flac", ".flac"),
    "mp3": ("mp3", None, "audio/mpeg", ".mp3"),
}
MP3_BITRATE = 320_000
#: Sample rates MPEG-1 Layer III can carry; other masters are resampled to 48 kHz for MP3.
MP3_RATES = (32000, 44100, 48000)
_BLOCK = 1 << 16


class DeliveryFormatError(ValueError):
    pass


def delivery_format(name: str | None) -> str:
    """The canonical key of a requested format ("" or None: the master's own WAV)."""
    key = (name or "wav").strip().lower()
    if key not in DELIVERY_FORMATS:
        raise DeliveryFormatError(f"unknown format {name!r}: choose one of {', '.join(DELIVERY_FORMATS)}")
    return key


def delivery_bits(fmt: str, master_bits: int) -> int | None:
    """Bit depth of a lossless delivery (None for MP3)."""
    container, bits, _, _ = DELIVERY_FORMATS[fmt]
    if container == "mp3":
        return None
    return bits or (24 if master_bits >= 24 else 16)


def encode_delivery(src, dst, fmt: str, master_bits: int, seed: int = 0) -> None:
    """Write the lossless master `src` (WAV/FLAC) as delivery format `fmt` at `dst`, block by
    block (memory does not grow with length). Reducing 24 → 16 bits adds TPDF dither (±1 LSB,
    seeded so a rendition is reproducible) rather than truncating, as mastering tools do."""
    container, _, _, _ = DELIVERY_FORMATS[fmt]
    with sf.SoundFile(str(src)) as inp:
        rate, channels = inp.samplerate, inp.channels
        if container == "mp3":
            _encode_mp3(inp, dst, rate, channels)
            return
        bits = delivery_bits(fmt, master_bits)
        dither = bits < master_bits
        rng = np.random.default_rng(seed)
        lsb = 1.0 / (1 << (bits - 1))
        with sf.SoundFile(str(dst), "w", samplerate=rate, channels=channels, format=container.upper(),
                          subtype=f"PCM_{bits}") as out:
            for block in inp.blocks(blocksize=_BLOCK, dtype="float64", always_2d=True):
                if dither:
                    block = block + (rng.random(block.shape) - rng.random(block.shape)) * lsb
                out.write(np.clip(block, -1.0, 1.0 - lsb))


def _mp3_stream(out, rate: int, bit_rate: int, layout: str):
    """A libmp3lame stream in `out` (previews and MP3 deliveries)."""
    stream = out.add_stream("libmp3lame", rate=rate)
    stream.bit_rate = bit_rate
    try:
        stream.layout = layout
    except AttributeError:  # older PyAV names it on the codec context
        stream.codec_context.layout = layout
    return stream


def _encode_mp3(inp, dst, rate: int, channels: int) -> None:
    out_rate = rate if rate in MP3_RATES else 48000
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(dst), "w", format="mp3") as out:
        stream = _mp3_stream(out, out_rate, MP3_BITRATE, layout)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=out_rate)
        for block in inp.blocks(blocksize=_BLOCK, dtype="float32", always_2d=True):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block[:, :2].T), format="fltp", layout=layout)
            frame.sample_rate = rate
            for f in resampler.resample(frame):
                out.mux(stream.encode(f))
        for f in resampler.resample(None):
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))


#: FFmpeg sample format (planar ones end in "p") -> numpy dtype, full scale, offset of silence.
_SAMPLE_FORMATS = {"u8": (np.uint8, 128.0, 128.0), "s16": (np.int16, 32768.0, 0.0), "s32": (np.int32, 2.0 ** 31, 0.0),
                   "s64": (np.int64, 2.0 ** 63, 0.0), "flt": (np.float32, 1.0, 0.0), "dbl": (np.float64, 1.0, 0.0)}


def _frame_planes(frame) -> tuple[tuple, list[np.ndarray]]:
    """((format, channels), one numpy view per channel — or one interleaved view for a packed
    format) of a decoded frame, without copying: views of the frame's buffers cost a few µs,
    where `frame.to_ndarray()` costs ~45 µs and `av.AudioResampler` ~50 µs more of Python per
    frame (a 4-minute MP3 is 9,000 frames: those two were more CPU than decoding it)."""
    name = frame.format.name
    layout = frame.layout
    channels = getattr(layout, "nb_channels", None) or len(layout.channels)  # the former from PyAV 13
    planes = frame.planes
    if name.endswith("p"):
        dtype = _SAMPLE_FORMATS[name[:-1]][0]
        return (name, channels), [np.frombuffer(p, dtype, frame.samples) for p in planes[:channels]]
    return (name, channels), [np.frombuffer(planes[0], _SAMPLE_FORMATS[name][0], frame.samples * channels)]


def _mono(key: tuple, parts: list[list[np.ndarray]]) -> np.ndarray:
    """Frames' planes (as `_frame_planes` gave them, all of one format) -> mono float32, the
    mean of the channels at full scale 1.0."""
    name, channels = key
    planar = name.endswith("p")
    _, scale, offset = _SAMPLE_FORMATS[name[:-1] if planar else name]
    if planar:
        x = np.concatenate([p[0] for p in parts]).astype(np.float32)
        for c in range(1, channels):
            x += np.concatenate([p[c] for p in parts])
    else:
        x = np.concatenate([p[0] for p in parts]).reshape(-1, channels).mean(axis=1, dtype=np.float32)
        channels = 1
    x *= np.float32(1.0 / (scale * channels))
    if offset:
        x -= np.float32(offset / scale)
    return x


class MonoPCM:
    """Decoded frames -> mono s16 PCM at `rate`, in blocks of about `block` samples (streaming,
    so memory does not grow with the file's length).

    Frames are held as views until a block's worth has come, then down-mixed and resampled at
    once: resampling is libsoxr's (`soxr.ResampleStream`, its high-quality default: passband
    flat to 91 % of the output Nyquist frequency). A change of sample rate inside the stream
    (rare, but MP3 allows it) flushes the resampler and starts another."""

    def __init__(self, rate: int, block: int):
        self.rate, self.block = rate, block
        self._in_rate = 0
        self._stream = None
        self._key = None
        self._parts: list[list[np.ndarray]] = []  # frames of the current format, not yet mixed
        self._mixed: list[np.ndarray] = []  # mono float32 of earlier formats in this block
        self._n = 0

    def push(self, frame) -> list[np.ndarray]:
        out = []
        if frame.sample_rate != self._in_rate:
            out = self.flush()
            self._in_rate = frame.sample_rate
        key, planes = _frame_planes(frame)
        if key != self._key and self._parts:
            self._mixed.append(_mono(self._key, self._parts))
            self._parts = []
        self._key = key
        self._parts.append(planes)
        self._n += frame.samples
        if self._n * self.rate >= self.block * self._in_rate:
            out.append(self._resample(last=False))
        return [b for b in out if b.size]

    def flush(self) -> list[np.ndarray]:
        """The rest (call once at the end of the stream)."""
        if not self._in_rate:
            return []
        block = self._resample(last=True)
        self._stream = None
        return [block] if block.size else []

    def _resample(self, last: bool) -> np.ndarray:
        if self._parts:
            self._mixed.append(_mono(self._key, self._parts))
        x = np.concatenate(self._mixed) if self._mixed else np.zeros(0, np.float32)
        self._parts, self._mixed, self._n = [], [], 0
        if self._in_rate != self.rate:
            if self._stream is None:
                self._stream = soxr.ResampleStream(self._in_rate, self.rate, 1, dtype="float32")
            x = self._stream.resample_chunk(x, last=last)
        return np.clip(np.rint(x * np.float32(32768)), -32768, 32767).astype(np.int16)


def decode_mono(container, stream, rate: int, block: int):
    """Every block of `MonoPCM` for an open container's audio stream (bench and tests; the
    upload scan runs the same loop with its own error accounting)."""
    pcm = MonoPCM(rate, block)
    for packet in container.demux(stream):
        for frame in packet.decode():
            yield from pcm.push(frame)
    yield from pcm.flush()
