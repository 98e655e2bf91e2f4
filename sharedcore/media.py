"""Media with PyAV across its versions: opening, reading tags, encoding previews (plain Python,
no Django)."""
from __future__ import annotations

import av

#: File name extensions of audio formats we accept (folders are scanned for these).
KNOWN_EXTENSIONS = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".m4a", ".aac", ".wma", ".webm"}
#: FFmpeg's demuxer name (the first of its aliases) -> the extension files of that format carry.
CONTAINER_EXTENSIONS = {"wav": ".wav", "flac": ".flac", "mp3": ".mp3", "ogg": ".ogg", "aiff": ".aiff", "mov": ".m4a",
                        "aac": ".aac", "asf": ".wma", "matroska": ".webm", "webm": ".webm", "w64": ".w64"}


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
PREVIEW_BITRATE = 96_000


def encode_preview(src, dst) -> None:
    """A lossy mono MP3 (96 kb/s) of `src` for listening in the browser.

    The deliverable stem stays lossless and metered; the preview is what a page may play
    without spending a download. Streams frame by frame, so memory does not grow with length.
    """
    with open_container(src) as inp, av.open(str(dst), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=PREVIEW_RATE)
        stream.bit_rate = PREVIEW_BITRATE
        try:
            stream.layout = "mono"
        except AttributeError:  # older PyAV names it on the codec context
            stream.codec_context.layout = "mono"
        resampler = av.AudioResampler(format="s16p", layout="mono", rate=PREVIEW_RATE)
        for frame in inp.decode(audio=0):
            for out_frame in resampler.resample(frame):
                out.mux(stream.encode(out_frame))
        for out_frame in resampler.resample(None):
            out.mux(stream.encode(out_frame))
        out.mux(stream.encode(None))
