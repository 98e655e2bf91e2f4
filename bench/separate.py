"""Separation benchmark: quality (SDR per stem) and speed/memory per engine.

    .venv/bin/python -m bench.separate [--songs 8] [--seconds 30] [--long-minutes 60] [--hdemucs-songs 2]
                                       [--model NAME [--model-dir DIR]]  # default: the shipped separator
                                       [--model none]                    # HDemucs random weights, speed only
                                       [--no-dsp]                        # a second model on the same set
                                       [--training-set DIR [--split val]]  # issue 16: the set's held-out split
                                       [--composer arrange] [--soundfont csound-gm]  # only those songs / renders

The test set is built here (bench/multitrack.py: MIDI composed per stem, rendered with
FluidSynth + a GM soundfont, mixture = sum of stems), or, with --training-set, it is a split of a
`separation.training.data` set: `val` holds compositions the separator never trained on, rendered
with a soundfont it never heard (its first --songs renders, first --seconds of each). Quality: MDX-style SDR
(10·log10 Σs²/Σ(s−ŝ)², the "new SDR" of the Sound Demixing Challenge) and bss_eval SDR
(fast_bss_eval, 512-tap distortion filter, each stem against its own reference) per stem, beside the trivial baseline (every stem =
mixture/4). Speed: × real time end to end (decode → written stems, streaming), medians over
songs. Memory: peak RSS of the CLI in a subprocess on one input of --long-minutes, for `dsp` and
the model.
HDemucs runs with random weights of the real hdemucs_high architecture when no checkpoint is
given: its speed and memory are real, its SDR is not reported. Writes bench/results/separate.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.multitrack import DEFAULT_SEED, STEMS, build_set, soundfont  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402
from separation.registry import PASS_COUNTS, averages_passes, default_model, get_engine, install_model  # noqa: E402
from separation.run import separate_file  # noqa: E402
from separation.train import silent  # noqa: E402 - a silent true stem has no SDR; what lands there: absent_db


def nsdr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum((ref - est).astype(np.float64) ** 2), 1e-20)))


def bss_sdr(refs: np.ndarray, ests: np.ndarray) -> np.ndarray:
    import fast_bss_eval

    # the torch backend: fast_bss_eval 0.1.4's numpy backend fails under NumPy 2
    ref = torch.from_numpy(refs.mean(axis=1).astype(np.float64))
    est = torch.from_numpy(ests.mean(axis=1).astype(np.float64))
    out = []
    for i in range(ref.shape[0]):  # per source: identical baseline estimates make the joint system singular
        try:
            out.append(float(fast_bss_eval.sdr(ref[i:i + 1], est[i:i + 1])[0]))
        except RuntimeError:
            out.append(float("nan"))
    return np.array(out)


CHILD = """
import runpy, sys
sys.argv = ["separation", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("separation", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code or 0
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(f"VmHWM_kB={hwm}", file=sys.stderr)
sys.exit(code)
"""


def run_cli_peak_rss(args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of `python -m separation ARGS` in a fresh process.

    The child reports its own VmHWM: getrusage/wait4 would carry the forking parent's
    high-water mark (Linux records the pre-exec mm's peak in the child's maxrss)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    hwm_kb = int(proc.stderr.rsplit("VmHWM_kB=", 1)[1].split()[0])
    return time.perf_counter() - t0, hwm_kb / 1024


def add_song_arguments(p: argparse.ArgumentParser) -> None:
    """The songs a per-song diagnostic (`bench.mask_gap`, `bench.cross_talk`) reads: a model, and a
    training set's split (by composer) or the bench's own songs from a seed."""
    p.add_argument("--model", help="a separation model (default: the shipped separator)")
    p.add_argument("--model-dir")
    p.add_argument("--training-set", type=Path, help="a separation.training.data set (default: the bench's own songs)")
    p.add_argument("--split", default="val")
    p.add_argument("--composer", choices=("compose", "arrange", "orchestrate", "lieder", "quartets"))
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="without --training-set: the bench's songs from this seed")
    p.add_argument("--songs", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0, help="each song's first seconds")


def diagnostic_songs(args: argparse.Namespace, scratch: str) -> tuple[list[dict], str]:
    """(songs, where they come from in words) for `add_song_arguments`' arguments."""
    if args.training_set:
        songs = training_split(args.training_set, args.split, args.songs, args.seconds, args.composer)
        return songs, f"{args.training_set} split {args.split}" + (f", {args.composer}'s songs" if args.composer else "")
    return (build_set(scratch_dir(scratch) / "set", args.songs, args.seconds, seed0=args.seed),
            f"the bench's songs from seed {args.seed}")


def training_split(folder: Path, split: str, songs: int, seconds: float, composer: str | None = None,
                   bank: str | None = None) -> list[dict]:
    """Songs of a `separation.training.data` set's split, in the shape `build_set` returns (only
    those `composer` wrote, `compose`, `arrange`, `orchestrate`, `lieder` or `quartets`, and only renders with soundfont `bank`, when given),
    each with the spans where its form rests the voice (`arrange`'s songs; none for `compose`'s)."""
    from separation.training.arrange import voice_rest_spans

    manifest = json.loads((folder / "manifest.json").read_bytes())
    sources = {s["id"]: s for s in manifest["sources"]}
    out = []
    n = int(seconds * 44100)
    renders = [r for r in manifest["renders"] if r["split"] == split and bank in (None, r["soundfont"]) and (
        composer is None or sources[r["song"]]["origin"].startswith(f"separation.training.{composer}."))]
    for r in renders[:songs]:
        stems = {s: sf.read(folder / r["stems"][s]["path"], frames=n, always_2d=True, dtype="float32")[0].T
                 for s in STEMS}
        mix = sum(stems.values())
        frames = mix.shape[1]
        out.append({"path": folder / r["mixture"]["path"], "song": r["song"], "stems": stems, "mixture": mix,
                    "soundfont": r["soundfont"], "frames": n,
                    "voice_rests": voice_rest_spans(sources[r["song"]]["composition"], frames, 44100)})
    if not out:
        raise SystemExit(f"{folder} has no '{split}' renders" + (f" with {bank}" if bank else ""))
    return out


def absent_db(song: dict, est: np.ndarray) -> float:
    """Energy of a stem estimate whose true stem is silent, in dB re the mixture (lower is better)."""
    mix = float(np.mean(song["mixture"].astype(np.float64) ** 2))
    return float(10 * np.log10(max(float(np.mean(est.astype(np.float64) ** 2)), 1e-20) / max(mix, 1e-20)))


def score_song(song: dict, est: dict, scores: dict, bss: dict, absent: dict, bss_of=bss_sdr) -> None:
    """One song's MDX and bss_eval SDR per stem into `scores`/`bss` (None for a silent true stem,
    whose estimate's level goes into `absent` instead). `bss_of` computes the second metric: the
    bench extra's bss_eval by default; the CI tests, which run without that extra, pass another."""
    refs = np.stack([song["stems"][s] for s in STEMS])
    sd = bss_of(refs, np.stack([est[s] for s in STEMS]))
    for s, v in zip(STEMS, sd):
        if silent(song["stems"][s]):
            scores[s].append(None)
            bss[s].append(None)
            absent[s].append(absent_db(song, est[s]))
        else:
            scores[s].append(nsdr(song["stems"][s], est[s]))
            bss[s].append(float(v))


def baseline(songs, bss_of=bss_sdr) -> dict:
    """The trivial separator every engine must beat: each stem = mixture/4."""
    scores, bss, absent = {s: [] for s in STEMS}, {s: [] for s in STEMS}, {s: [] for s in STEMS}
    for song in songs:
        est = song["mixture"] / 4
        score_song(song, {s: est for s in STEMS}, scores, bss, absent, bss_of)
    return summary(scores, bss, absent)


def summary(scores: dict, bss: dict, absent: dict | None = None) -> dict:
    """Medians over songs per stem (songs where the stem sounds), their mean, each song's mean
    over its sounding stems and each song's SDR per stem (`per_song_sdr`, null where the true stem
    is silent: paired comparisons of two engines on the same songs, per stem too, and the scores
    of a model that takes each stem from one of two scored networks); where some
    true stems were silent, `absent_db`: per stem, the median level of what was put there re the
    mixture, and over how many songs."""
    def med(v):
        v = [x for x in v if x is not None]
        return statistics.median(v) if v else float("nan")

    sdr = {s: med(v) for s, v in scores.items()}
    # over the stems that sound in some song: a set where one never does (the lieder have no drums)
    # is scored on the others, and says so
    sounding = [s for s, v in sdr.items() if not math.isnan(v)]
    out = {"sdr": sdr, "sdr_mean": statistics.mean(sdr[s] for s in sounding) if sounding else float("nan"),
           **({"sdr_mean_over": sounding} if len(sounding) < len(sdr) else {}),
           "bss_sdr": {s: med(v) for s, v in bss.items()},
           "per_song_mean": [float(np.mean([v for v in x if v is not None])) for x in zip(*scores.values())],
           "per_song_sdr": {s: list(v) for s, v in scores.items()}}
    if absent and any(absent.values()):
        out["absent_db"] = {s: {"median": statistics.median(v), "max": max(v), "songs": len(v)}
                            for s, v in absent.items() if v}
    return out


def evaluate(name, engine, songs, tmp: Path, quality: bool) -> dict:
    speeds, scores, bss, rests, voiced = [], {s: [] for s in STEMS}, {s: [] for s in STEMS}, [], []
    absent: dict = {s: [] for s in STEMS}
    for i, song in enumerate(songs):
        t0 = time.perf_counter()
        outputs, used = separate_file(engine, song["path"], tmp / name / str(i), fmt="wav", bits=24)
        speeds.append(outputs[0].duration_s / (time.perf_counter() - t0))
        if quality:
            est = {o.name: sf.read(o.path, always_2d=True, dtype="float32")[0].T[:, : song["mixture"].shape[1]]
                   for o in outputs}
            score_song(song, est, scores, bss, absent)
            leak = rests_db(song, est["vocals"])
            if leak is not None:
                rests.append(leak)
            if (got := voiced_db(song, est["vocals"])) is not None:
                voiced.append(got)
    out = {"x_realtime_median": statistics.median(speeds), "x_realtime_runs": speeds, "chunking": used}
    if quality:
        out |= summary(scores, bss, absent)
        if rests:
            out["vocals_in_voice_rests_db"] = {"median": statistics.median(rests), "max": max(rests), "songs": len(rests)}
        if voiced:
            out["vocals_where_voiced_db"] = {"level": statistics.median(v[0] for v in voiced),
                                             "projection": statistics.median(v[1] for v in voiced), "songs": len(voiced)}
    return out


def rests_db(song: dict, vocals: np.ndarray) -> float | None:
    """Energy of a vocals estimate where the song's form rests the voice, in dB re the mixture
    there (the true stem is silent there: lower is better); None without 2 s of such rests."""
    mask = np.zeros(song["mixture"].shape[1], bool)
    for lo, hi in song.get("voice_rests", ()):
        mask[lo:hi] = True
    if mask.sum() < 2 * 44100:
        return None
    mix = float(np.mean(song["mixture"][:, mask].astype(np.float64) ** 2))
    return float(10 * np.log10(max(float(np.mean(vocals[:, mask].astype(np.float64) ** 2)), 1e-20) / max(mix, 1e-20)))


def voiced_db(song: dict, vocals: np.ndarray) -> tuple[float, float] | None:
    """Where the form gives the voice a part (outside `voice_rests`): the vocals estimate's level
    re the true vocals', and the gain of its projection on them (20·log10 <ŝ,s>/<s,s>; 0 dB = all of
    the voice, whatever else came along), both in dB. The second says whether a quiet vocals
    stem missed the voice or only left out what leaked in. None when the true vocals are silent
    (or rest the whole excerpt: an `arrange` song on clearstem-synth crashed the bench, stop 75)."""
    mask = np.ones(song["mixture"].shape[1], bool)
    for lo, hi in song.get("voice_rests", ()):
        mask[lo:hi] = False
    ref, est = song["stems"]["vocals"][:, mask].astype(np.float64), vocals[:, mask].astype(np.float64)
    power = float(np.sum(ref ** 2))
    if ref.size == 0 or power < 1e-8 * ref.size:  # silent, or the form rests the voice throughout
        return None
    level = 10 * np.log10(max(float(np.sum(est ** 2)), 1e-20) / power)
    return float(level), float(20 * np.log10(max(float(np.sum(est * ref)) / power, 1e-6)))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--songs", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"the bench's own set from this song seed on (default {DEFAULT_SEED}: the set the README quotes); "
                        "another seed is a set of the same kind no model was judged or chosen on")
    p.add_argument("--long-minutes", type=float, default=60)
    p.add_argument("--hdemucs-songs", type=int, default=2)
    p.add_argument("--model", help="a neural model: shipped, or installed in --model-dir (e.g. hdemucs_high_musdb); "
                                   "default: the shipped separator; 'none': HDemucs with random weights (speed only)")
    p.add_argument("--model-dir")
    p.add_argument("--passes", type=int, default=1, choices=PASS_COUNTS,
                   help="--model's passes averaged per chunk (band-split models)")
    p.add_argument("--training-set", type=Path, help="score on a separation.training.data set's split instead")
    p.add_argument("--split", default="val")
    p.add_argument("--composer", choices=("compose", "arrange", "orchestrate", "lieder", "quartets"),
                   help="with --training-set: only that composer's songs (arrange's also get vocals-in-rests)")
    p.add_argument("--soundfont", help="with --training-set: only renders with this bank (e.g. csound-gm)")
    p.add_argument("--no-dsp", dest="dsp", action="store_false",
                   help="leave dsp out: its scores on a set do not depend on --model, so a second model's run "
                        "on the same set need not pay for them again (dsp is the slowest engine here)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="torch threads (default: every core). Fewer when another job holds a core: OpenMP "
                        "threads that wait on a busy core make the network's many small steps 10-100x slower. "
                        "The SDR does not depend on it; the x RT column is only a speed figure with every core free")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "separate.json")
    args = p.parse_args()
    if args.songs < 1 or args.seconds <= 0 or args.long_minutes < 0:
        p.error("--songs must be at least 1, --seconds above 0 and --long-minutes 0 or more")
    if args.threads < 1:
        p.error(f"--threads must be at least 1, not {args.threads}")
    if args.passes != 1 and not (args.model and averages_passes(args.model, args.model_dir)):
        p.error("--passes needs --model naming a band-split model (the shipped ones or one in --model-dir)")
    torch.set_num_threads(args.threads)
    tmp = scratch_dir("clearstem-sepbench-")
    if args.training_set:
        songs = training_split(args.training_set, args.split, args.songs, args.seconds, args.composer,
                               args.soundfont)
        source = (f"{args.training_set} split {args.split} ({', '.join(sorted({s['soundfont'] for s in songs}))}), "
                  f"first {args.seconds:.0f} s of each")
    else:
        songs = build_set(tmp / "set", args.songs, args.seconds, seed0=args.seed)
        source = (f"MIDI composed per stem, FluidSynth {Path(soundfont()).name}"
                  + (f", song seeds {args.seed}-{args.seed + args.songs - 1}" if args.seed != DEFAULT_SEED else ""))
    results = {"machine": {"cpus": os.cpu_count(), "threads": args.threads, "torch": torch.__version__, "cuda": torch.cuda.is_available(),
                           "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"},
               "set": {"songs": len(songs), "seconds": args.seconds, "source": source},
               "engines": {}}

    results["engines"]["mixture/4"] = baseline(songs)

    if args.dsp:
        results["engines"]["dsp"] = evaluate("dsp", get_engine("dsp"), songs, tmp, quality=True)

    if args.model is None:
        args.model = default_model(args.model_dir)
        args.model = None if args.model == "dsp" else args.model
    elif args.model == "none":
        args.model = None
    if args.model:
        engine = get_engine(args.model, args.model_dir, passes=args.passes)
        results["engines"][args.model] = evaluate(args.model, engine, songs, tmp, quality=True) | {
            "passes": args.passes}
    else:  # the real architecture with random weights: speed and memory only
        model_dir = tmp / "models"
        torch.manual_seed(0)
        from separation.hdemucs import build

        weights = tmp / "hdemucs_high_random.pt"
        torch.save(build(["drums", "bass", "other", "vocals"]).state_dict(), weights)
        install_model(weights, "hdemucs_high_random", model_dir, architecture="hdemucs",
                      stems=["drums", "bass", "other", "vocals"], sample_rate=44100,
                      weights_licence="random init (benchmark)", training_data="none")
        engine = get_engine("hdemucs_high_random", str(model_dir))
        r = evaluate("hdemucs", engine, songs[: args.hdemucs_songs], tmp, quality=False)
        r["note"] = "random weights of the hdemucs_high architecture: speed only"
        r["device"] = engine.info.parameters["device"]
        r["precision"] = engine.info.parameters["precision"]
        secs, rss = run_cli_peak_rss([str(songs[0]["path"]), "--model", "hdemucs_high_random", "--model-dir",
                                      str(model_dir), "--out", str(tmp / "cli-hd")])
        r["peak_rss_mib_30s"] = rss
        results["engines"]["hdemucs_high (random init)"] = r

    # a long input: streaming keeps memory flat (--long-minutes 0: skipped)
    long_path = tmp / "long.flac"
    written = 0
    if args.long_minutes > 0:
        with sf.SoundFile(long_path, "w", samplerate=44100, channels=2, subtype="PCM_16") as fh:
            while written < args.long_minutes * 60 * 44100:
                for song in songs:
                    fh.write(song["mixture"].T)
                    written += song["mixture"].shape[1]
    for name in (["dsp"] if args.dsp else []) + ([args.model] if args.model else []) if written else []:
        cli = [str(long_path), "--model", name, "--out", str(tmp / f"long-{name}"),
               *(["--passes", str(args.passes)] if name == args.model else [])]
        secs, rss = run_cli_peak_rss(cli + (["--model-dir", args.model_dir] if args.model_dir else []))
        results["engines"][name]["long_input"] = {"minutes": written / 44100 / 60, "seconds": secs,
                                                  "x_realtime": written / 44100 / secs, "peak_rss_mib": rss}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"{len(songs)} songs × {args.seconds:.0f} s ({source}), {results['machine']['cpus']} CPU cores "
          f"({args.threads} torch thread{'s' if args.threads != 1 else ''}), device {results['machine']['device']}")
    print(f"{'engine':<28}{'vocals':>8}{'drums':>8}{'bass':>8}{'other':>8}{'mean':>8}{'× RT':>9}")
    for name, r in results["engines"].items():
        cells = [f"{r['sdr'][s]:8.2f}" for s in STEMS] + [f"{r['sdr_mean']:8.2f}"] if "sdr" in r else [f"{'—':>8}"] * 5
        speed = f"{r['x_realtime_median']:9.1f}" if "x_realtime_median" in r else f"{'—':>9}"
        print(f"{name:<28}{''.join(cells)}{speed}")
    print("(MDX-style SDR in dB, medians over songs; bss_eval SDR in the JSON)")
    over = next((r["sdr_mean_over"] for r in results["engines"].values() if "sdr_mean_over" in r), None)
    if over:
        print(f"(mean over {', '.join(over)}: no true stem of the others sounds in these songs)")
    for name, r in results["engines"].items():
        if "vocals_in_voice_rests_db" in r:
            v = r["vocals_in_voice_rests_db"]
            print(f"{name}: vocals stem where the form rests the voice, {v['median']:.1f} dB re the mixture "
                  f"(median of {v['songs']} songs, worst {v['max']:.1f}; the true stem is silent there)")
    for name, r in results["engines"].items():
        if "absent_db" in r:
            print(f"{name}: level where the true stem is silent, dB re the mixture (median, songs): " + ", ".join(
                f"{s} {a['median']:.1f} ({a['songs']})" for s, a in r["absent_db"].items()))
    for name, r in results["engines"].items():
        if "vocals_where_voiced_db" in r:
            v = r["vocals_where_voiced_db"]
            print(f"{name}: vocals stem where the voice sings, {v['level']:.1f} dB re the true vocals, projection on "
                  f"them {v['projection']:.1f} dB (medians of {v['songs']} songs; 0 dB = all of the voice)")
    for name, r in results["engines"].items():
        if lg := r.get("long_input"):
            print(f"{name} on a {lg['minutes']:.0f}-minute input: {lg['x_realtime']:.1f}× real time, "
                  f"peak RSS {lg['peak_rss_mib']:.0f} MiB")
    hd = results["engines"].get("hdemucs_high (random init)")
    if hd:
        print(f"hdemucs_high on {hd['device']} ({hd['precision']}): {hd['x_realtime_median']:.2f}× real time, "
              f"peak RSS {hd['peak_rss_mib_30s']:.0f} MiB")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
