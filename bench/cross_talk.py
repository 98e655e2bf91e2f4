"""Which true stems each estimate is made of: per song, each stem estimate e_i is fitted by least
squares to the four true stems, e_i ≈ Σ_j a_ij s_j, and the share of e_i's energy that a_ij s_j
explains (and the share left unexplained) is reported, with a_ii, the amplitude of its own stem
it keeps. Medians over songs.

    .venv/bin/python -m bench.cross_talk [--model NAME [--model-dir DIR]]
                                         [--training-set DIR [--split val] [--composer compose] | --seed S]
                                         [--songs 8] [--seconds 10] [--threads 2] [--added-kick] [--out FILE]

Why (stop 83): an SDR says a stem is poor, not what it is made of. On banks v48 never heard, half
of its bass estimate is the true drums (the kick taken for bass; 0.5 % on TimGM6mb) and its drums
estimate keeps an eighth to a quarter of the kit's amplitude: a confusion between two stems, which
the mask gap (`bench.mask_gap`) does not see where the masks still add up. A scalar fit per stem
is coarse (a stem filtered by a mask is not a multiple of the stem; what a filter keeps of it
lands partly in "unexplained"), so read the drums and bass columns of the bass row, not small
differences. `--added-kick` (with --training-set): each song gets a kick synthesised by
`separation.training.kicks` (seeded by the song's place in the list) at its drum part's kick notes,
at the drums' RMS, counted as a fifth true stem, "kick" (songs with no kick are left out) — where a kick of the family
`separation.train --synth-kicks` teaches lands (stop 83: v48's bass keeps 0.77 of its amplitude).
Writes the per-song figures to --out (default bench/results/cross_talk.json).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.multitrack import STEMS  # noqa: E402
from bench.separate import add_song_arguments, diagnostic_songs  # noqa: E402
from separation.apply import apply_chunked  # noqa: E402
from separation.registry import default_model, get_engine  # noqa: E402
from separation.training import kicks, kits  # noqa: E402

KICK_SEED = 1000


def song_sources(folder: Path) -> dict[str, dict]:
    """A training set's sources by song id (read once: a manifest lists thousands of files)."""
    return {s["id"]: s for s in json.loads((folder / "manifest.json").read_bytes())["sources"]}


def with_added_kick(folder: Path, sources: dict[str, dict], song: dict, k: int) -> dict[str, np.ndarray] | None:
    """A training-set song's true stems plus "kick": a synthesised kick (seed KICK_SEED + k) on its
    drum part's kick notes at the drums' RMS; None for a song with no drums or no kick to add."""
    files = sources[song["song"]].get("files", {})
    if "drums" not in files:
        return None
    truth = {s: song["stems"][s] for s in STEMS}
    played, _ = kicks.render(kits.drum_notes(folder / files["drums"]["path"]), 0.0, truth["drums"].shape[1],
                             np.random.default_rng(KICK_SEED + k))
    level = float(np.sqrt(np.mean(truth["drums"].astype(np.float64) ** 2)))
    own = float(np.sqrt(np.mean(played.astype(np.float64) ** 2)))
    if own == 0 or level == 0:
        return None
    return truth | {"kick": (played * (level / own)).astype(np.float32)}


def cross_talk(truth: dict[str, np.ndarray], estimate: np.ndarray) -> dict[str, float]:
    """One estimate [C, T] against the true stems {name: [C, T]}: each true stem's share of the
    estimate's energy in the least-squares fit, "unexplained" (the residual's share) and "kept"
    (the fitted amplitude of the stem the estimate is for is read by the caller from its name)."""
    names = list(truth)
    basis = np.stack([truth[s].reshape(-1) for s in names], 1).astype(np.float64)
    e = estimate.reshape(-1).astype(np.float64)
    energy = float(e @ e)
    if energy == 0.0:
        return {**{s: 0.0 for s in names}, "unexplained": 0.0, "amplitude": dict.fromkeys(names, 0.0)}
    a, *_ = np.linalg.lstsq(basis, e, rcond=None)
    out = {s: float(((a[j] * basis[:, j]) ** 2).sum() / energy) for j, s in enumerate(names)}
    out["unexplained"] = float(((e - basis @ a) ** 2).sum() / energy)
    out["amplitude"] = {s: float(a[j]) for j, s in enumerate(names)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cross_talk", description=__doc__.split("\n\n")[0])
    add_song_arguments(p)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--added-kick", action="store_true",
                   help="with --training-set: add a synthesised kick to each song, reported as a fifth stem")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cross_talk.json")
    args = p.parse_args(argv)
    if args.songs < 1 or args.seconds <= 0 or args.threads < 1:
        p.error("--songs and --threads must be at least 1 and --seconds above 0")
    if args.added_kick and not args.training_set:
        p.error("--added-kick needs --training-set (the songs' drum parts)")
    name = args.model or default_model(args.model_dir)
    engine = get_engine(name, args.model_dir, device="cpu", precision="fp32")
    torch.set_num_threads(args.threads)
    songs, where = diagnostic_songs(args, "cross-talk-")
    n = int(args.seconds * 44100)
    by_id = song_sources(args.training_set) if args.added_kick else {}
    per_song = []
    for k, song in enumerate(songs):
        sources = (with_added_kick(args.training_set, by_id, song, k) if args.added_kick
                   else {s: song["stems"][s] for s in STEMS})
        if sources is None:  # no drums or no kick note in this song: nothing to add, left out
            continue
        truth = {s: x[:, :n] for s, x in sources.items()}
        mixture = np.ascontiguousarray(sum(truth.values()), dtype=np.float32)
        out = apply_chunked(engine.batch_fn(44100), mixture, engine.chunking(44100))
        per_song.append({stem: cross_talk(truth, out[i]) for i, stem in enumerate(engine.info.stems) if stem in truth})
    if not per_song:
        print(f"no song of {where} has a kick to add", file=sys.stderr)
        return 1
    rows = sorted(per_song[0])
    cols = (*STEMS, *(["kick"] if args.added_kick else []), "unexplained")
    table = {est: {**{src: statistics.median(s[est][src] for s in per_song) for src in cols},
                   "kept": statistics.median(s[est]["amplitude"][est] for s in per_song)} for est in rows}
    result = {"model": name, "set": where, "seconds": args.seconds, "songs": len(per_song), "median": table,
              "per_song": per_song}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"{name} on {len(per_song)} songs × {args.seconds:g} s ({where}): each estimate's energy by the true "
          "stem that explains it (least squares; medians)")
    print("estimate  " + "  ".join(f"{c:>11}" for c in (*cols, "kept")))
    for est in rows:
        print(f"{est:8}  " + "  ".join(f"{table[est][c]:11.3f}" for c in (*cols, "kept")))
    if args.added_kick:
        print("the added kick's amplitude in each estimate: " + ", ".join(
            f"{est} {statistics.median(s[est]['amplitude']['kick'] for s in per_song):.2f}" for est in rows))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
