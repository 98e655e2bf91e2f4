"""Render a training set again from its manifest alone, and show that it is the same set.

    python -m separation.training.rebuild MANIFEST --out DIR [--lieder CHECKOUT] [--quartets CHECKOUT]
        [--manifests DIR ...] [--reuse-from DIR] [--jobs 2] [--plan] [--add-bank BANK [--parts NAME ...]]

Why: issue 16 asks that the shipped weights be reproducible from their training-data manifest.
v19's set (train-set13) was merged from nine parts, each made by its own command whose options
lived in the README, two of them naming another set's manifest by a path on the machine that
built it (`--lieder-exclude var/train-set7/manifest.json`). The manifest holds everything those
commands said: each part's generator (seed, counts, per-composer caps, choirs, ...), its banks
(in its renders, in the order it rendered them), the SHA-256 of every manifest it excluded, the
corpus commits, and each part's own manifest hash. This reads them back into `data.build`'s
arguments (`plan`, pure), renders every part, checks each part's manifest hash against the one
recorded before merging them in their order (`merge.merge`), and the merged manifest's hash
against MANIFEST's. Equal hashes mean every MIDI file and every render is, byte for byte, what
the weights were trained on; a set that is not merged is checked the same way, as one part.

An excluded set's manifest is found by its SHA-256 among the shipped ones (every model's
`*.training-manifest.json` and `weights/ancestors/`) and in `--manifests` folders: v19's Lieder
parts excluded v5's and v8's training sets, both shipped.

What is refused before anything is rendered (exit 2, one line saying why): a manifest that is
not a training set's; a generator option this code cannot replay (an unknown key, or synthetic
vocals whose share was not recorded); an excluded manifest not found; a corpus checkout missing
or at another commit than recorded, or another music21; a FluidSynth or a bank file that is not
the recorded one (the renders would differ, so the hashes could not agree). A part that renders
differently anyway (the code changed since) is reported with its first differing files, and the
merged set is not made. Parts are rendered under `DIR-parts/<part>` (`merge` hard-links them).

`--add-bank BANK` makes a new set instead: the same songs with one more training bank (v36's
third bank), every recorded render hard-linked from `--reuse-from`, parts as `DIR-parts/<part>-BANK`.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from sharedcore.hashing import file_sha256

from . import data, freepats, scores
from . import merge as merging

#: where shipped manifests live: every model's training manifest and its unshipped ancestors'
WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
#: generator keys that are facts about the build, not options to replay
RECORDED = {"code", "rate", "lieder_code", "lieder_tools", "quartets_code", "quartets_tools", "scores_refused",
            "lieder_excluded", "quartets_excluded"}
#: generator key -> data.build keyword, for the options replayed as they are
OPTIONS = {"seed": "seed", "songs": "songs", "seconds": "seconds", "sample_format": "sample_format",
           "arranged_songs": "arranged", "orchestrated_songs": "orchestrated", "val_effects": "val_effects",
           "orchestra_choirs": "orchestra_choirs", "orchestra_choir_tunes": "orchestra_choir_tunes",
           "lieder_songs": "lieder_songs",
           "lieder_per_composer": "lieder_per_composer", "quartet_songs": "quartet_songs",
           "quartet_per_composer": "quartet_per_composer", "espeak_vocals": "espeak_vocals",
           "flite_vocals": "flite_vocals"}
#: a source's vocals.kind when a synthetic singer sang it -> the generator key holding that singer's share
SYNTHETIC_VOICES = {data.SUNG_VOCALS["espeak-ng"][0]: "espeak_vocals", data.SUNG_VOCALS["flite"][0]: "flite_vocals"}


class RebuildRefused(ValueError):
    """The manifest cannot be rendered again here as it was (the reason says what differs)."""


@dataclass
class Part:
    """One `data.build` call: `name` is the part's directory (its songs' prefix in a merged set),
    `expected` the SHA-256 its manifest must have, `kwargs` the build's arguments (checkout and
    exclude paths resolved by `resolve`), `excludes` {keyword: manifest SHA-256}, `tools` the
    recorded corpus commits and music21 versions {"lieder": {...}, "quartets": {...}}."""
    name: str
    expected: str
    kwargs: dict
    excludes: dict = field(default_factory=dict)
    tools: dict = field(default_factory=dict)


def _banks(renders: list[dict], name: str) -> tuple[tuple[str, ...], str | None]:
    """(train banks in the order a song was rendered with them, the val bank) of one part's
    renders (`song` ids `name.songNNNNN` in a merged set, `songNNNNN` in a set of its own)."""
    prefix = f"{name}." if name else ""
    train, val = [], set()
    first_song = None
    for r in renders:
        if prefix and not r["song"].startswith(prefix):
            continue
        if r["split"] == "val":
            val.add(r["soundfont"])
        elif first_song in (None, r["song"]):
            first_song = r["song"]
            train.append(r["soundfont"])
    if len(val) > 1:
        raise RebuildRefused(f"part {name or '(the set)'}: its val songs were rendered with {len(val)} banks")
    return tuple(train), (val.pop() if val else None)


def _part(name: str, generator: dict, expected: str, manifest: dict, commercial: bool) -> Part:
    if generator.get("code") != "separation.training.data":
        raise RebuildRefused(f"part {name or '(the set)'}: made by {generator.get('code')!r}, not separation.training.data")
    unknown = sorted(set(generator) - RECORDED - set(OPTIONS) - {"rendered_splits"})
    if unknown:
        raise RebuildRefused(f"part {name or '(the set)'}: generator options this code cannot replay: {', '.join(unknown)}")
    if generator.get("rate", data.RATE) != data.RATE:
        raise RebuildRefused(f"part {name or '(the set)'}: rendered at {generator['rate']} Hz; data renders at {data.RATE}")
    kwargs = {OPTIONS[k]: v for k, v in generator.items() if k in OPTIONS}
    kwargs["seconds"] = float(kwargs.get("seconds", 30.0))  # the CLI's float: songs' origins print it ("30.0")
    if "rendered_splits" in generator:
        kwargs["render_splits"] = tuple(generator["rendered_splits"])
    prefix = f"{name}." if name else ""
    voices = {(s.get("vocals") or {}).get("kind") for s in manifest["sources"] if s["id"].startswith(prefix)}
    for kind, key in SYNTHETIC_VOICES.items():
        if kind in voices and key not in generator:
            raise RebuildRefused(f"part {name or '(the set)'}: some songs sing with {kind} but the share "
                                 f"(--{key.replace('_', '-')}) was not recorded")
    train, val = _banks(manifest["renders"], name)
    if not train and kwargs.get("render_splits") is None:
        raise RebuildRefused(f"part {name or '(the set)'}: no train or select render says which banks trained")
    if train:
        kwargs["train_banks"] = train
    if val:
        kwargs["val_bank"] = val
    kwargs["allow_noncommercial"] = not commercial  # what was recorded is replayed, refusals included
    excludes = {kw: generator[key]["manifest_sha256"]
                for key, kw in (("lieder_excluded", "lieder_exclude"), ("quartets_excluded", "quartet_exclude"))
                if key in generator}
    tools = {corpus: generator[f"{corpus}_tools"] for corpus in ("lieder", "quartets") if f"{corpus}_tools" in generator}
    return Part(name, expected, kwargs, excludes, tools)


def plan(manifest: dict, sha256: str) -> list[Part]:
    """The `data.build` calls that made the set whose manifest is `manifest` (hash `sha256`), in
    merge order; one unnamed part for a set that is not merged. Pure: nothing is read or rendered."""
    if manifest.get("format") != data.FORMAT or "generator" not in manifest:
        raise RebuildRefused(f"not a training set's manifest (format {manifest.get('format')!r}, not {data.FORMAT})")
    generator = manifest["generator"]
    commercial = bool(manifest.get("commercial_use"))
    if generator.get("code") == merging.CODE:
        return [_part(p["name"], p["generator"], p["manifest_sha256"], manifest, commercial)
                for p in generator["parts"]]
    return [_part("", generator, sha256, manifest, commercial)]


def known_manifests(folders: list[Path]) -> dict[str, Path]:
    """SHA-256 -> path of every training manifest shipped with the weights and in `folders`."""
    found = {}
    for folder in [WEIGHTS, WEIGHTS / "ancestors", *folders]:
        for path in sorted(folder.glob("*.json")) + sorted(folder.glob("*/manifest.json")):
            found.setdefault(file_sha256(path), path)
    return found


def resolve(parts: list[Part], manifest: dict, checkouts: dict[str, Path | None], folders: list[Path]) -> None:
    """Fill in each part's exclude manifests and checkouts, and check what shapes the renders
    (FluidSynth, the bank files, the corpus commits, music21) is what was recorded; raises
    RebuildRefused with the first difference."""
    engine = data.fluidsynth_version()
    if manifest["render"]["engine"] != engine or manifest["render"]["flags"] != data.FLUIDSYNTH_FLAGS:
        raise RebuildRefused(f"rendered by {manifest['render']['engine']} with {manifest['render']['flags']}; "
                             f"here {engine} with {data.FLUIDSYNTH_FLAGS}: the renders would differ")
    if "freepats" in manifest["render"] and manifest["render"]["freepats"] != freepats.render_record():
        raise RebuildRefused(f"FreePats renders were made by {manifest['render']['freepats'].get('player')} with "
                             f"another map or flags than here ({freepats.timidity_version()}): the renders would differ")
    for font in manifest["soundfonts"]:
        path, entry = data.find_bank(font["id"])  # SoundfontRefused (a ValueError) when absent or not allowed
        if entry.sha256 != font["sha256"] or str(path) != font["path"]:
            raise RebuildRefused(f"bank {font['id']}: recorded {font['path']} (SHA-256 {font['sha256'][:12]}…), here "
                                 f"{path} ({entry.sha256[:12]}…): the renders or the manifest would differ")
    known = None
    for part in parts:
        for keyword, digest in part.excludes.items():
            known = known if known is not None else known_manifests(folders)
            if digest not in known:
                raise RebuildRefused(f"part {part.name or '(the set)'}: the manifest it excluded (SHA-256 {digest[:12]}…) "
                                     "is not shipped nor in --manifests")
            part.kwargs[keyword] = known[digest]
        for corpus, option in (("lieder", "lieder_songs"), ("quartets", "quartet_songs")):
            if not part.kwargs.get(option):
                continue
            root = checkouts.get(corpus)
            if root is None or not root.is_dir():
                raise RebuildRefused(f"part {part.name or '(the set)'} arranges {corpus} scores: pass --{corpus} CHECKOUT")
            recorded, here = part.tools.get(corpus), scores.tools(root)
            if recorded is not None and recorded != here:
                raise RebuildRefused(f"part {part.name or '(the set)'}: {corpus} recorded {recorded}, here {here}")
            part.kwargs[corpus] = root


def _build(out: Path, kwargs: dict, reuse: Path | None) -> str:
    """One part rendered (in a worker process); returns its manifest's SHA-256."""
    kwargs = dict(kwargs)
    songs, seed = kwargs.pop("songs"), kwargs.pop("seed")
    data.build(out, songs, seed, reuse=reuse, log=lambda *_: None, **kwargs)
    return file_sha256(out / "manifest.json")


def _renders_with(folder: Path, bank: str) -> bool:
    try:
        return any(f["id"] == bank for f in json.loads((folder / "manifest.json").read_bytes())["soundfonts"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def differences(rebuilt: dict, manifest: dict, name: str, limit: int = 5) -> list[str]:
    """The first files whose hash differs between a rebuilt part and the recorded set."""
    prefix = f"{name}." if name else ""
    recorded = {}
    for s in manifest["sources"]:
        for f in s["files"].values():
            recorded[f["path"]] = f["sha256"]
    for r in manifest["renders"]:
        for f in (*r["stems"].values(), r["mixture"]):
            recorded[f["path"]] = f["sha256"]
    out = []
    files = [f for s in rebuilt["sources"] for f in s["files"].values()] + \
        [f for r in rebuilt["renders"] for f in (*r["stems"].values(), r["mixture"])]
    for f in files:
        path = f["path"]
        if prefix:  # midi/songNNNNN/... and audio/split/songNNNNN.bank/... carry the part's prefix in a merge
            path = path.replace("/song", f"/{prefix}song", 1)
        if recorded.get(path) != f["sha256"]:
            out.append(f"{path}: {'not in the recorded set' if path not in recorded else 'another SHA-256'}")
            if len(out) >= limit:
                break
    return out or [f"every file hashes as recorded; the manifest itself differs (generator or listing) — compare "
                   f"{'the part' if name else 'the set'}'s manifest with the recorded one"]


def with_bank(parts: list[Part], bank: str, only: list[str] | None = None) -> list[Part]:
    """The parts (those named in `only`, in the set's order) with `bank` as one more training bank:
    the same songs, a new set (no recorded hash to meet). Pure."""
    names = [p.name for p in parts]
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise RebuildRefused(f"--parts {', '.join(unknown)}: not a part of this set ({', '.join(n or '(the set)' for n in names)})")
    chosen = [p for p in parts if only is None or p.name in only]
    for p in chosen:
        if bank in p.kwargs.get("train_banks", ()) or bank == p.kwargs.get("val_bank"):
            raise RebuildRefused(f"part {p.name or '(the set)'} already renders with {bank}")
    return [Part(p.name, "", {**p.kwargs, "train_banks": (*p.kwargs.get("train_banks", ()), bank)},
                 dict(p.excludes), dict(p.tools)) for p in chosen]


def rebuild(manifest_path: Path, out: Path, checkouts: dict[str, Path | None], folders: list[Path],
            reuse_from: Path | None = None, jobs: int = 1, log=print, add_bank: str | None = None,
            only: list[str] | None = None) -> str:
    """Render the set of `manifest_path` again at `out` (parts under `<out>-parts/`); returns the
    rebuilt manifest's SHA-256, equal to `manifest_path`'s. With `add_bank`, the parts (or those
    named in `only`) are rendered with that bank as one more training bank — what they recorded
    is reused from `reuse_from`, so only the new bank renders — and merged into a new set whose
    hash is returned (nothing recorded to check it against). Raises RebuildRefused (nothing
    rendered when refused up front), or SystemExit-free errors from data.build."""
    try:
        raw = manifest_path.read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise RebuildRefused(f"{manifest_path}: not a readable manifest ({exc})") from exc
    digest = file_sha256(manifest_path)
    parts = plan(manifest, digest)
    if only is not None and add_bank is None:
        raise RebuildRefused("--parts names the parts that get --add-bank; a rebuild as recorded renders every part")
    if add_bank is not None:
        data.find_bank(add_bank)  # SoundfontRefused (a ValueError) when absent or not allowed
        parts = with_bank(parts, add_bank, only)
    if out.exists() and any(out.iterdir()):
        raise RebuildRefused(f"{out} is not empty: a rebuild writes a new set and never over another")
    resolve(parts, manifest, checkouts, folders)
    # a merged set's parts are merged again; one part with a bank added is a set of its own, at `out`
    merged = len(parts) > 1 or (bool(parts[0].name) and add_bank is None)
    suffix = f"-{add_bank}" if add_bank else ""  # a part with another bank is another part: its own name
    where = {p.name: (out.parent / f"{out.name}-parts" / f"{p.name}{suffix}") if merged else out for p in parts}
    for p in parts:
        if merged and where[p.name].exists() and any(where[p.name].iterdir()):
            if (where[p.name] / "manifest.json").is_file() and (
                    file_sha256(where[p.name] / "manifest.json") == p.expected
                    or add_bank is not None and _renders_with(where[p.name], add_bank)):
                continue  # an earlier run's part, the recorded one (or with the bank added): kept (`merge` re-hashes its files)
            raise RebuildRefused(f"{where[p.name]} is not empty and not the recorded part: remove it first")
    todo = [p for p in parts if not (merged and (where[p.name] / "manifest.json").is_file())]
    log(f"{len(parts)} part(s), {len(todo)} to render: {', '.join(p.name or str(out) for p in todo)}")

    def reuse(p: Part) -> Path | None:
        candidate = reuse_from / p.name if reuse_from is not None and p.name else reuse_from
        return candidate if candidate is not None and (candidate / "manifest.json").is_file() else None

    # the longest first (score arrangements render slowest), so two processes finish together
    todo.sort(key=lambda p: (-p.kwargs.get("quartet_songs", 0), -p.kwargs.get("lieder_songs", 0)))
    calls = [(where[p.name], p.kwargs, reuse(p)) for p in todo]
    failed = []
    with ProcessPoolExecutor(max_workers=jobs) if jobs > 1 and todo else nullcontext() as pool:
        hashes = pool.map(_build, *zip(*calls)) if pool is not None else (_build(*c) for c in calls)
        for p, got in zip(todo, hashes):  # in submission order, as each part's hash is known
            if add_bank is not None:
                log(f"{p.name or out}: manifest {got[:12]}… (with {add_bank} added)")
                continue
            same = got == p.expected
            log(f"{p.name or out}: manifest {got[:12]}… {'as recorded' if same else f'recorded {p.expected[:12]}…'}")
            if not same:
                failed.append((p, json.loads((where[p.name] / "manifest.json").read_bytes())))
    if failed:
        lines = [f"{p.name or out}: " + "; ".join(differences(m, manifest, p.name)) for p, m in failed]
        raise RebuildRefused("rendered, but not as recorded (the code or a tool changed since): " + " | ".join(lines))
    if not merged:
        return digest if add_bank is None else file_sha256(out / "manifest.json")
    merging.merge([where[p.name] for p in parts], out)
    got = file_sha256(out / "manifest.json")
    if add_bank is not None:
        return got
    if got != digest:
        raise RebuildRefused(f"every part is as recorded but the merged manifest is {got[:12]}…, not {digest[:12]}…")
    return got


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m separation.training.rebuild", description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", type=Path, help="a training set's manifest.json, e.g. a shipped *.training-manifest.json")
    ap.add_argument("--out", type=Path, help="the set to write (absent or empty); parts go to OUT-parts/")
    ap.add_argument("--lieder", type=Path, metavar="CHECKOUT", help="the OpenScore Lieder checkout, at the recorded commit")
    ap.add_argument("--quartets", type=Path, metavar="CHECKOUT",
                    help="the OpenScore String Quartets checkout, at the recorded commit")
    ap.add_argument("--manifests", type=Path, nargs="+", default=[], metavar="DIR",
                    help="more folders to find excluded sets' manifests in (by SHA-256), besides the shipped ones")
    ap.add_argument("--reuse-from", type=Path, metavar="DIR",
                    help="hard-link identical renders from DIR/<part> (or DIR itself for a set of one part)")
    ap.add_argument("--jobs", type=int, default=1, help="parts rendered at once (one process each)")
    ap.add_argument("--plan", action="store_true", help="print each part's build arguments and stop")
    ap.add_argument("--add-bank", metavar="BANK",
                    help="render the parts with one more training bank (a new set; with --reuse-from, only that "
                         "bank's renders are new)")
    ap.add_argument("--parts", nargs="+", metavar="NAME", help="with --add-bank: only these parts")
    args = ap.parse_args(argv)
    if args.out is None and not args.plan:
        ap.error("--out is required to rebuild (or --plan to only print the builds)")
    if args.jobs < 1:
        ap.error(f"--jobs must be 1 or more, not {args.jobs}")
    try:
        if args.plan:
            raw = args.manifest.read_bytes()
            parts = plan(json.loads(raw), file_sha256(args.manifest))
            for p in with_bank(parts, args.add_bank, args.parts) if args.add_bank else parts:
                shown = {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.kwargs.items()}
                print(json.dumps({"part": p.name, "manifest_sha256": p.expected, "build": shown,
                                  "excluded_manifests": p.excludes, "tools": p.tools}, sort_keys=True))
            return 0
        digest = rebuild(args.manifest, args.out, {"lieder": args.lieder, "quartets": args.quartets},
                         args.manifests, args.reuse_from, args.jobs, add_bank=args.add_bank, only=args.parts)
    except (RebuildRefused, OSError, ValueError) as exc:  # SoundfontRefused and a build's refusals included
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(f"rebuilt {args.out}: manifest sha256 {digest}, "
          + (f"a new set: the recorded songs with {args.add_bank} added" if args.add_bank else "the recorded one"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
