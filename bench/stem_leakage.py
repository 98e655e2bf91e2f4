"""Separation of real recordings that have no stem references: where the energy goes.

    .venv/bin/python -m bench.stem_leakage FILE:ABSENT[,ABSENT] ... [--models dsp clearstem-bandsplit-v2]
    .venv/bin/python -m bench.stem_leakage --list bench/real_recordings.json --dir DIR [--models ...]

SDR needs the stems a song was mixed from, which real commercial-clean recordings rarely come
with; but many recordings are known to lack a source (an instrumental has no vocals, a solo piano
no drums). Whatever a separator puts in an absent stem is leakage. For each file and model this
prints every stem's energy relative to the mixture (dB; -inf: silence) and the absent stems'
share of the total stem energy — the figure to compare between models, lower is better. It is a
proxy for listening, not a quality score: a separator that put everything in "other" would score
well on an instrumental, so read it beside the present stems' levels and `bench.separate`'s SDR.
`--list` reads the recordings from a JSON list (file, SHA-256, absent stems, licence) so the same
files are measured every time: a file that is missing or whose hash differs stops the run before
any separation. The summary gives each model's median absent share over the list's files.
Results: bench/results/stem_leakage.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearstem.settings")

from separation.bandsplit import STEMS  # noqa: E402
from separation.registry import default_model, get_engine  # noqa: E402
from separation.run import separate_file  # noqa: E402


def energy(x: np.ndarray) -> float:
    return float(np.sum(np.asarray(x, np.float64) ** 2))


def db(ratio: float) -> float:
    return 10 * math.log10(ratio) if ratio > 0 else -math.inf


def measure(engine, path: Path, absent: set[str], tmp: Path) -> dict:
    mixture, _ = sf.read(path, always_2d=True, dtype="float32")
    outputs, _ = separate_file(engine, path, tmp, fmt="wav", bits=24)
    e_mix = energy(mixture)
    stems = {o.name: energy(sf.read(o.path, always_2d=True, dtype="float32")[0]) for o in outputs}
    total = sum(stems.values())
    return {"stem_db_vs_mixture": {k: round(db(v / e_mix), 2) for k, v in stems.items()},
            "absent": sorted(absent), "absent_share": round(sum(stems[s] for s in absent) / total, 4) if total else None}


class ListError(ValueError):
    """A recordings list that cannot be measured as written (the message says which entry and why)."""


def load_list(list_path: Path, folder: Path) -> list[tuple[Path, set[str]]]:
    """The (file, absent stems) pairs of a recordings list, each file present under `folder` with the
    listed SHA-256: a different file under the same name would make figures incomparable."""
    try:
        entries = json.loads(list_path.read_text())["recordings"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ListError(f"{list_path}: not a recordings list ({exc})") from exc
    items = []
    for k, entry in enumerate(entries):
        try:
            name, digest, absent = entry["file"], entry["sha256"], set(entry["absent"])
        except (KeyError, TypeError) as exc:
            raise ListError(f"{list_path}: entry {k} lacks file, sha256 or absent") from exc
        if not absent <= set(STEMS):
            raise ListError(f"{list_path}: {name}: absent stems must be among {', '.join(STEMS)}")
        path = folder / name
        if not path.is_file():
            raise ListError(f"{path}: missing (see the list's 'about' for where the recordings come from)")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            raise ListError(f"{path}: SHA-256 {actual[:12]}… is not the listed {digest[:12]}…")
        items.append((path, absent))
    return items


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="FILE:ABSENT[,ABSENT]: a recording and the stems it has no source for")
    ap.add_argument("--list", type=Path, help="a JSON recordings list (bench/real_recordings.json)")
    ap.add_argument("--dir", type=Path, default=Path("."), help="where the list's files are")
    ap.add_argument("--models", nargs="+")
    ap.add_argument("--model-dir")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stem_leakage.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    items = []
    for spec in args.files:
        path, _, absent = spec.rpartition(":")
        if not path or not Path(path).is_file():
            ap.error(f"{spec!r}: expected FILE:ABSENT[,ABSENT] with an existing file")
        wanted = {s for s in absent.split(",") if s}
        if not wanted <= set(STEMS):
            ap.error(f"{spec!r}: absent stems must be among {', '.join(STEMS)}")
        items.append((Path(path), wanted))
    if args.list:
        try:
            items += load_list(args.list, args.dir)
        except ListError as exc:
            ap.error(str(exc))
    if not items:
        ap.error("give recordings as FILE:ABSENT arguments or --list")
    models = args.models or ["dsp", default_model(args.model_dir)]
    results = {"models": models, "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            engine = get_engine(name, args.model_dir, device="cpu")
            for k, (path, absent) in enumerate(items):
                row = measure(engine, path, absent, Path(tmp) / name / str(k))
                results["files"].setdefault(path.name, {})[name] = row
                levels = ", ".join(f"{s} {v:+.1f}" for s, v in row["stem_db_vs_mixture"].items())
                print(f"{name:>24}  {path.name[:40]:40}  absent {','.join(sorted(absent)):14} "
                      f"share {100 * row['absent_share']:5.1f} %  ({levels} dB)", flush=True)
    results["median_absent_share"] = {}
    for name in models:
        shares = [row[name]["absent_share"] for row in results["files"].values()
                  if row[name]["absent"] and row[name]["absent_share"] is not None]
        if shares:
            results["median_absent_share"][name] = round(float(np.median(shares)), 4)
            print(f"{name:>24}  median absent share over {len(shares)} files: "
                  f"{100 * float(np.median(shares)):.1f} %")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
