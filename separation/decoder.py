"""A decoding worker process for `separation.pipeline`: `python -m separation.decoder`.

Why a plain child process talking over pipes, not `multiprocessing`: PyAV holds the GIL for
much of its work, so decoding must leave the process that drives the GPU; and a
`multiprocessing` child re-imports the parent's main module (torch and all, ~300 MB each),
while this one imports only numpy and PyAV. Payloads go as raw float32 bytes, no pickling.

Protocol. Parent → child, one JSON line each: `{"op": "decode", "fid", "path", "rate",
"channels", "block"}` (rate/channels null: the file's own) or `{"op": "cancel", "fid"}`; end
of input: exit. Child → parent, frames of a 4-byte big-endian header length, a JSON header and
`nbytes` of payload: `meta` (the file's rate, channels, expected samples), `block` (float32
[channels, samples] at `rate`), `end` (source samples, CPU seconds spent decoding) or `error`
(in words).
"""
from __future__ import annotations

import json
import select
import struct
import sys
import time

import numpy as np

from .audio_io import AudioReadError, AudioStream


def write_frame(out, header: dict, payload=b"") -> None:
    """`payload`: any contiguous buffer (an array's memory goes out without a copy)."""
    payload = memoryview(payload).cast("B")
    head = json.dumps({**header, "nbytes": payload.nbytes}).encode()
    out.write(struct.pack(">I", len(head)) + head)
    if payload.nbytes:
        out.write(payload)
    out.flush()


def read_exact(inp, n: int) -> bytearray | None:
    """`n` bytes from an unbuffered pipe (which returns what is there), or None at its end."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = inp.readinto(view[got:])
        if not k:
            return None
        got += k
    return buf


def read_frame(inp) -> tuple[dict, bytearray] | None:
    """One frame (header, writable payload), or None at the end of the stream."""
    size = read_exact(inp, 4)
    if size is None:
        return None
    head = read_exact(inp, struct.unpack(">I", size)[0])
    if head is None:
        return None
    header = json.loads(head)
    payload = read_exact(inp, header["nbytes"]) if header["nbytes"] else bytearray()
    if payload is None:
        return None
    return header, payload


def _cancelled(inp, fid) -> bool:
    """Has the parent asked, between blocks, to stop this file? (A decode line can't be
    waiting: the parent sends the next file only after this one ended.)"""
    while select.select([inp], [], [], 0)[0]:
        line = inp.readline()
        if not line:
            return True  # parent gone
        msg = json.loads(line)
        if msg.get("op") == "cancel" and msg.get("fid") == fid:
            return True
    return False


def decode_one(task: dict, inp, out) -> None:
    fid, block = task["fid"], int(task["block"])
    t0 = time.process_time()  # CPU time: a decoder blocked on a full pipe is not decoding
    try:
        stream = AudioStream(task["path"], rate=task.get("rate"), channels=task.get("channels"), block=block)
    except AudioReadError as exc:
        write_frame(out, {"kind": "error", "fid": fid, "message": str(exc)})
        return
    duration = stream.stream.duration * stream.stream.time_base if stream.stream.duration else None
    write_frame(out, {"kind": "meta", "fid": fid, "rate": stream.rate, "channels": stream.channels,
                      "source_rate": stream.source_rate, "source_channels": stream.source_channels,
                      "expected": float(duration) * stream.rate if duration else None})
    try:
        for data in stream:
            data = np.ascontiguousarray(data, dtype=np.float32)
            write_frame(out, {"kind": "block", "fid": fid, "channels": data.shape[0], "samples": data.shape[1]}, data)
            if _cancelled(inp, fid):
                write_frame(out, {"kind": "error", "fid": fid, "message": "cancelled"})
                return
    except AudioReadError as exc:
        write_frame(out, {"kind": "error", "fid": fid, "message": str(exc)})
        return
    write_frame(out, {"kind": "end", "fid": fid, "source_samples": stream.source_samples,
                      "decode_s": time.process_time() - t0})


def main() -> None:
    inp, out = sys.stdin, sys.stdout.buffer
    for line in inp:
        task = json.loads(line)
        if task.get("op") == "decode":
            try:
                decode_one(task, inp, out)
            except BrokenPipeError:
                return
            except Exception as exc:  # noqa: BLE001 - any failure is this file's, reported in words
                write_frame(out, {"kind": "error", "fid": task["fid"], "message": f"decoding failed: {exc}"})


if __name__ == "__main__":
    main()
