"""Where a kit-routed model's threshold comes from (`separation.bandsplit.KitRouted`): a base
model's drums level per chunk (its drums estimate's energy re the chunk's mixture, dB), cut as
the engine cuts, on development sets, in two populations — chunks of songs whose true drums stem
is silent, chunks of songs with drums — and the threshold the README's rule (stop 69, "Next
candidate, v30") derives from them: the midpoint between the kit-less chunks' 95th percentile and
the others' 5th; if those overlap, the default-kind chunks' 5th percentile. With `--drums-below
T_d`, also a vocals threshold (stop 69, "Next candidate, v32"): among the chunks under T_d, those
of songs whose true vocals stem is silent and those of songs with vocals; the midpoint between the
first's 95th percentile and the second's 5th, or, if those overlap, the 5th percentile of the
Lieder chunks under T_d (a set whose COMPOSER is `lieder`). With `--gate GATE.pt` and
`--drums-below T_d`, a voice gate's threshold instead (stop 70, "Next candidate, v33"): among the
chunks under T_d, those whose true vocals are at least −20 dB re the chunk's mixture and those under
−40 dB; `gate_threshold` says how.

    python -m bench.kit_route --default 9000:8 --default 13400:16 --default 14000:16 \\
        --training-set var/orch138:orchestrate:48 --training-set var/lieder139::9 --out var/eval/kit-route.json
    python -m bench.kit_route ... --training-set var/lieder139:lieder:9 --drums-below -17.39125051498413 --out ...

Development data only: never run it on a judging set before the threshold is fixed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.multitrack import build_set  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402
from bench.separate import training_split  # noqa: E402
from separation.bandsplit import level_db  # noqa: E402
from separation.hdemucs import normalised_run  # noqa: E402
from separation.registry import get_engine  # noqa: E402
from separation.train import silent  # noqa: E402


def cut(audio: np.ndarray, segment: int, overlap: int) -> torch.Tensor:
    """[C, T] -> [chunks, C, segment]: the chunks the engine would cut (zero-padded tail)."""
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    starts = range(0, max(x.shape[1] - overlap, 1), segment - overlap)
    return torch.stack([torch.nn.functional.pad(x[:, s:s + segment], (0, max(0, s + segment - x.shape[1])))
                        for s in starts])


def chunk_levels(module: torch.nn.Module, mixture: np.ndarray, segment: int, overlap: int,
                 stems: tuple[int, ...]) -> tuple[list[float], ...]:
    """Per stem index in `stems`, the base's level of that stem in each chunk the engine would cut
    from `mixture` [C, T] (zero-padded tail)."""
    chunks = cut(mixture, segment, overlap)
    with torch.inference_mode():
        y = normalised_run(chunks, "fp32", module)
    return tuple([float(v) for v in level_db(y[:, i], chunks)] for i in stems)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def threshold(kitless: list[float], kit: list[float], default_kind: list[float]) -> tuple[float, str]:
    """The declared rule (module docstring): (T, how it was reached)."""
    hi, lo = percentile(kitless, 95), percentile(kit, 5)
    if hi < lo:
        return (hi + lo) / 2, f"midpoint of kit-less P95 {hi:.2f} and with-kit P5 {lo:.2f}"
    return percentile(default_kind, 5), f"overlap (kit-less P95 {hi:.2f} >= with-kit P5 {lo:.2f}): default-kind P5"


def vocals_threshold(voiceless: list[float], voiced: list[float], lieder: list[float]) -> tuple[float, str]:
    """The declared rule for the vocals level (module docstring), on chunks under the drums threshold."""
    hi, lo = percentile(voiceless, 95), percentile(voiced, 5)
    if hi < lo:
        return (hi + lo) / 2, f"midpoint of voiceless P95 {hi:.2f} and voiced P5 {lo:.2f}"
    return percentile(lieder, 5), f"overlap (voiceless P95 {hi:.2f} >= voiced P5 {lo:.2f}): Lieder P5"


def gate_threshold(voiceless: list[float], voiced: list[float], fallback: float = 5) -> tuple[float, str]:
    """The declared rule for a voice gate's threshold (README "Next candidate, v33"; v34 protects
    fewer voiced chunks, more strictly), on chunks under the drums threshold: the midpoint between
    the voiceless chunks' 95th percentile of the gate's logit and the voiced (protected) chunks'
    5th, or, if those overlap, the voiced chunks' `fallback` percentile."""
    hi, lo = percentile(voiceless, 95), percentile(voiced, 5)
    if hi < lo:
        return (hi + lo) / 2, f"midpoint of voiceless P95 {hi:.3f} and voiced P5 {lo:.3f}"
    return percentile(voiced, fallback), f"overlap (voiceless P95 {hi:.3f} >= voiced P5 {lo:.3f}): voiced P{fallback:g}"


def true_levels(stem: np.ndarray, mixture: np.ndarray, segment: int, overlap: int) -> list[float]:
    """A true stem's level in dB re the mixture in each chunk the engine would cut."""
    s, m = (cut(a, segment, overlap).double().square().mean(dim=(1, 2)) for a in (stem, mixture))
    return [float(v) for v in 10 * torch.log10(s.clamp_min(1e-20) / m.clamp_min(1e-20))]


def gate_logits(gate: torch.nn.Module, mixture: np.ndarray, segment: int, overlap: int) -> list[float]:
    with torch.inference_mode():
        return [float(v) for v in gate(cut(mixture, segment, overlap))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="clearstem-bandsplit-v19", help="the base network (a band-split model)")
    p.add_argument("--model-dir")
    p.add_argument("--default", action="append", default=[], metavar="SEED:SONGS",
                   help="songs of the default kind (bench.multitrack) from this song seed")
    p.add_argument("--training-set", action="append", default=[], metavar="DIR:COMPOSER:SONGS",
                   help="a rendered set's val songs (COMPOSER may be empty: all)")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--drums-below", type=float, metavar="T_D",
                   help="also fix a vocals threshold among the chunks whose drums level is under T_D")
    p.add_argument("--gate", type=Path, metavar="GATE.pt",
                   help="with --drums-below: fix a voice gate's threshold instead (separation.voice_gate), on the "
                        "chunks under T_D labelled by their true vocals level (voiced >= -20 dB, voiceless < -40)")
    p.add_argument("--protect", nargs="+", metavar="COMPOSER",
                   help="with --gate: only the voiced chunks of sets of these COMPOSERs are kept from the expert "
                        "(v34: lieder quartets); others' voiced chunks count in neither population")
    p.add_argument("--protected-percentile", type=float, default=5.0, metavar="Q",
                   help="with --gate: where the populations overlap, the protected chunks' Qth percentile (v34: 2)")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    if not 0 <= a.protected_percentile <= 100:
        p.error("--protected-percentile must be between 0 and 100")
    if not a.default and not a.training_set:
        p.error("give at least one --default or --training-set")
    if a.gate is not None and a.drums_below is None:
        p.error("--gate needs --drums-below: the gate decides among the chunks under it")
    gate = None
    if a.gate is not None:
        from separation.voice_gate import VOICED_DB, VOICELESS_DB, VoiceGate
        gate = VoiceGate()
        try:
            gate.load_state_dict(torch.load(a.gate, map_location="cpu", weights_only=True))
        except (OSError, RuntimeError, ValueError) as exc:
            p.error(f"--gate {a.gate}: not a voice gate ({exc})")
        gate.eval()
    torch.set_num_threads(a.threads)
    engine = get_engine(a.model, a.model_dir)
    module, chunking = engine.module, engine.chunking(44100)
    drums, vocals = (list(engine.info.stems).index(s) for s in ("drums", "vocals"))
    tmp = scratch_dir("clearstem-kitroute-")
    sets = []
    for spec in a.default:
        seed, n = (int(v) for v in spec.split(":"))
        sets.append((f"default kind, seed {seed}", "default", build_set(tmp / str(seed), n, a.seconds, seed0=seed)))
    for spec in a.training_set:
        folder, composer, n = spec.split(":")
        sets.append((f"{folder} {composer or 'all'}", composer,
                     training_split(Path(folder), "val", int(n), a.seconds, composer or None)))
    out = {"model": a.model, "chunking": {"segment": chunking.segment, "overlap": chunking.overlap}, "sets": []}
    kitless, kit, default_kind = [], [], []
    voiceless, voiced, lieder = [], [], []  # vocals levels of the chunks under --drums-below
    gate_voiceless, gate_voiced = [], []  # gate logits of the chunks under --drums-below, by true vocals level
    for name, kind, songs in sets:
        rows = []
        for song in songs:
            has_kit, has_voice = (not silent(song["stems"][s]) for s in ("drums", "vocals"))
            levels, vocal_levels = chunk_levels(module, song["mixture"], chunking.segment, chunking.overlap,
                                                (drums, vocals))
            (kit if has_kit else kitless).extend(levels)
            if kind == "default":
                default_kind.extend(levels)
            under = [v for d, v in zip(levels, vocal_levels) if a.drums_below is not None and d < a.drums_below]
            (voiced if has_voice else voiceless).extend(under)
            if kind == "lieder":
                lieder.extend(under)
            row = {"has_drums": has_kit, "levels_db": levels, "has_vocals": has_voice,
                   "vocals_levels_db": vocal_levels}
            if gate is not None:
                true_v = true_levels(song["stems"]["vocals"], song["mixture"], chunking.segment, chunking.overlap)
                logits = gate_logits(gate, song["mixture"], chunking.segment, chunking.overlap)
                row |= {"true_vocals_db": true_v, "gate_logits": logits}
                for d, tv, g in zip(levels, true_v, logits):
                    if d < a.drums_below and tv >= VOICED_DB:
                        if a.protect is None or kind in a.protect:
                            gate_voiced.append(g)
                    elif d < a.drums_below and tv < VOICELESS_DB:
                        gate_voiceless.append(g)
            rows.append(row)
        out["sets"].append({"set": name, "songs": rows})
        with_kit = [v for r in rows if r["has_drums"] for v in r["levels_db"]]
        without = [v for r in rows if not r["has_drums"] for v in r["levels_db"]]
        print(f"{name}: {len(rows)} songs; chunks with kit {len(with_kit)}"
              + (f" (median {statistics.median(with_kit):.1f} dB, min {min(with_kit):.1f})" if with_kit else "")
              + f"; kit-less {len(without)}"
              + (f" (median {statistics.median(without):.1f} dB, max {max(without):.1f})" if without else ""))
    if gate is not None:
        if not gate_voiceless or not gate_voiced:
            p.error("the gate's rule needs voiced and voiceless chunks under --drums-below")
        tg, how_g = gate_threshold(gate_voiceless, gate_voiced, a.protected_percentile)
        under = [(st["set"], tv, g) for st in out["sets"] for r in st["songs"]
                 for d, tv, g in zip(r["levels_db"], r["true_vocals_db"], r["gate_logits"]) if d < a.drums_below]
        out["gate"] = {"weights": str(a.gate), "drums_below_db": a.drums_below, "threshold": tg, "rule": how_g,
                       "protect": a.protect or "every set's voiced chunks",
                       "voiced_chunks": len(gate_voiced), "voiceless_chunks": len(gate_voiceless),
                       "routed": {"voiced": sum(g < tg for g in gate_voiced) / len(gate_voiced),
                                  "voiceless": sum(g < tg for g in gate_voiceless) / len(gate_voiceless)},
                       "per_set": {name: {"chunks_under_drums": sum(n == name for n, _, _ in under),
                                          "routed": sum(n == name and g < tg for n, _, g in under)}
                                   for name, _, _ in sets}}
        print(f"gate threshold {tg:.3f} ({how_g}); under drums {a.drums_below:.2f} dB: voiceless chunks "
              f"{out['gate']['routed']['voiceless']:.0%} of {len(gate_voiceless)}, voiced "
              f"{out['gate']['routed']['voiced']:.0%} of {len(gate_voiced)} go to the expert; per set "
              + "; ".join(f"{k}: {v['routed']}/{v['chunks_under_drums']}" for k, v in out["gate"]["per_set"].items()))
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=1) + "\n")
        return 0
    if not kitless or not kit or not default_kind:
        p.error("the rule needs kit-less chunks, chunks with a kit and default-kind chunks")
    t, how = threshold(kitless, kit, default_kind)
    out["threshold_db"], out["rule"] = t, how
    out["routed"] = {"kitless": sum(v < t for v in kitless) / len(kitless), "with_kit": sum(v < t for v in kit) / len(kit),
                     "default_kind": sum(v < t for v in default_kind) / len(default_kind)}
    if a.drums_below is not None:
        if not voiceless or not voiced or not lieder:
            p.error("the vocals rule needs chunks under --drums-below with and without a voice, and Lieder ones")
        tv, how_v = vocals_threshold(voiceless, voiced, lieder)
        both = [(d, v) for st in out["sets"] for r in st["songs"] for d, v in zip(r["levels_db"], r["vocals_levels_db"])]
        out["vocals"] = {"drums_below_db": a.drums_below, "threshold_db": tv, "rule": how_v,
                         "routed_chunks": sum(d < a.drums_below and v < tv for d, v in both), "chunks": len(both)}
        print(f"vocals threshold {tv:.2f} dB ({how_v}); with drums under {a.drums_below:.2f} dB: voiceless chunks "
              f"{sum(v < tv for v in voiceless) / len(voiceless):.0%}, voiced {sum(v < tv for v in voiced) / len(voiced):.0%},"
              f" Lieder {sum(v < tv for v in lieder) / len(lieder):.0%} go to the expert")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"threshold {t:.2f} dB ({how}); routed to the expert: kit-less chunks {out['routed']['kitless']:.0%}, "
          f"with-kit chunks {out['routed']['with_kit']:.0%}, default-kind chunks {out['routed']['default_kind']:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
