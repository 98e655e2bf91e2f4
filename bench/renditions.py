"""What a delivered file costs the first time a format is asked for: encoding the master
(`sharedcore.media.encode_delivery`) and signing its C2PA manifest into it
(`provenance.credentials.embed`), for a 3-minute 24-bit stereo master made of `bench.mixtures`
tracks (music, not noise: LAME's cost depends on the material). Later downloads of the same
format reuse the file. Medians of `--runs`; JSON in bench/results/renditions.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.mixtures import SR, build_tracks
from bench.scratch import scratch_dir
from provenance import certificates, credentials
from sharedcore.media import DELIVERY_FORMATS, encode_delivery

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("wav", "wav16", "flac", "mp3")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "renditions.json")
    args = ap.parse_args(argv)
    tmp = scratch_dir("clearstem-renditions-")
    audio = np.concatenate([t["audio"] for t in build_tracks(4, 17, 60, 120)], axis=1)[:, : int(args.seconds * SR)]
    master = tmp / "master.wav"
    sf.write(master, audio.T.astype(np.float32) / 32768, SR, subtype="PCM_24")
    ca_key, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ca = certificates.make_dev_ca(ca_key)
    chain = certificates.pem(certificates.issue_signing_certificate(ca_key, ca, key.public_key())) + certificates.pem(ca)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    record = {"stem": {"id": "bench", "name": "vocals", "sha256": "0" * 64}, "model": {"name": "dsp"},
              "rights": {"basis": "license", "grants": []}, "job": {"purpose": "remix", "stems": ["vocals"]},
              "source": {"sha256": "0" * 64}}
    results = {}
    for fmt in FORMATS:
        ext, mime = DELIVERY_FORMATS[fmt][3], DELIVERY_FORMATS[fmt][2]
        enc, sign = [], []
        for i in range(args.runs):
            encoded, signed = tmp / f"e{i}{ext}", tmp / f"s{i}{ext}"
            t0 = time.perf_counter()
            encode_delivery(master, encoded, fmt, 24)
            t1 = time.perf_counter()
            manifest = credentials.manifest_definition({"bench": True}, record, delivered_format=fmt,
                                                       title=f"vocals{ext}", software_version="bench",
                                                       with_parent=False)
            credentials.embed(encoded, signed, mime, manifest, chain, key_pem)
            enc.append(t1 - t0)
            sign.append(time.perf_counter() - t1)
        results[fmt] = {"encode_s": round(statistics.median(enc), 2), "sign_s": round(statistics.median(sign), 2),
                        "x_realtime": round(args.seconds / (statistics.median(enc) + statistics.median(sign)), 1),
                        "bytes": signed.stat().st_size}
        print(f"{fmt:<6} encode {results[fmt]['encode_s']:6.2f} s  sign {results[fmt]['sign_s']:5.2f} s  "
              f"({results[fmt]['x_realtime']}x real time, {results[fmt]['bytes'] / 1e6:.1f} MB)")
    out = {"seconds": args.seconds, "runs": args.runs, "formats": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"results: {args.out}")
    return out


if __name__ == "__main__":
    main()
