"""One training set made of several rendered ones, without rendering anything again. Pure: files
and manifests; no Django.

Why: on two CPU cores a set takes 10–40 minutes to render per composer, and a judging set whose
judgement is over (its candidate decided) still holds train and select splits no weights have
learned from. Merging such sets gives a fine-tune new compositions in minutes, and the trainer,
the card and every tool that reads a set work on the result unchanged: it is an ordinary set
(`manifest.json` + `manifest.sha256`, files under `midi/` and `audio/`).

What a merge does: every part is verified first (`data.verify`: each file's SHA-256, the
manifest's own hash) and refused with the problems if any; each part's songs are renamed
`<part>.<song>` (the part's directory name; parts must have distinct names), their files
hard-linked under the new names, so nothing is copied and no part is modified; the manifest
lists every source and render of every part with their hashes unchanged, the splits as each part
had them (a part's val songs stay val: their bank never reached the weights), the soundfonts by
id (one id must mean one file: the same SHA-256 in every part), and `commercial_use` only if every
part's was true. `generator` names the merge and each part's manifest SHA-256 and generator, so
the merged set is reproduced by rendering the parts again (their own commands) and merging them
in the same order: the manifest comes out byte-identical.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from sharedcore.hashing import file_sha256

from . import data  # data's CLI imports this module: names are read from it at call time

CODE = "separation.training.merge"
#: a part's directory name becomes its songs' prefix: kept to what is safe in a path and an id
PART_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class MergeRefused(ValueError):
    """A merge that would give a set whose manifest does not say what is in it."""


def _one(parts: list[tuple[str, dict]], key: str) -> object:
    """A manifest field every part must agree on (how the audio was made, what the set means)."""
    values = {json.dumps(m[key], sort_keys=True) for _, m in parts}
    if len(values) > 1:
        raise MergeRefused(f"the parts differ in '{key}' ({', '.join(name for name, _ in parts)}): "
                           "sets rendered another way cannot be one set")
    return parts[0][1][key]


def _stem_words(parts: list[tuple[str, dict]]) -> dict[str, str]:
    """Each stem's description: a part's text that another part's extends (a Lieder set adds what
    its bass stem is) is the longer one; texts that differ otherwise are both kept."""
    words = {}
    for stem in parts[0][1]["stems"]:
        texts = list(dict.fromkeys(m["stems"][stem] for _, m in parts))
        kept = [t for t in texts if not any(o != t and o.startswith(t) for o in texts)]
        words[stem] = "; ".join(kept)
    return words


def _renamed(entry: dict, old: str, new: str) -> dict:
    """A file entry ({path, sha256, ...}) with the song's id in its path replaced."""
    parts = entry["path"].split("/")
    if parts[0] == "midi" and parts[1] == old:
        parts[1] = new
    elif parts[0] == "audio" and parts[2].split(".")[0] == old:
        parts[2] = new + parts[2][len(old):]
    else:
        raise MergeRefused(f"unexpected path {entry['path']} for song {old}")
    return entry | {"path": "/".join(parts)}


def merge(parts: list[Path], out: Path) -> dict:
    """Merge the rendered sets `parts` (in this order) into a new set at `out` (absent or empty);
    returns its manifest. Raises MergeRefused (nothing is written then) or OSError."""
    if len(parts) < 2:
        raise MergeRefused("a merge needs at least two sets")
    names = [p.resolve().name for p in parts]
    for p, name in zip(parts, names):
        if not PART_NAME.match(name):
            raise MergeRefused(f"{p}: a part's directory name becomes its songs' prefix; use letters, digits, - or _")
    if len(set(names)) < len(names):
        raise MergeRefused(f"two parts have the same directory name ({', '.join(names)})")
    if out.exists() and any(out.iterdir()):
        raise MergeRefused(f"{out} is not empty: a merge writes a new set and never over another")
    loaded = []
    for p, name in zip(parts, names):
        if not (p / "manifest.json").is_file():
            raise MergeRefused(f"{p}: no manifest.json (not a rendered set)")
        problems = data.verify(p)
        if problems:
            raise MergeRefused(f"{p} does not match its manifest: " + "; ".join(problems[:5])
                               + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
        loaded.append((name, json.loads((p / "manifest.json").read_bytes())))
    if _one(loaded, "format") != data.FORMAT:
        raise MergeRefused(f"the parts' format is not {data.FORMAT}")
    for key in ("render", "augmentation", "commercial_use_basis"):
        _one(loaded, key)

    fonts: dict[str, dict] = {}
    for name, m in loaded:
        for f in m["soundfonts"]:
            seen = fonts.get(f["id"])
            if seen is not None and seen["sha256"] != f["sha256"]:
                raise MergeRefused(f"soundfont {f['id']} is another file in {name} (SHA-256 {f['sha256'][:12]}… "
                                   f"against {seen['sha256'][:12]}…)")
            fonts[f["id"]] = f | {"splits": sorted(set(f["splits"]) | set(seen["splits"] if seen else ()))}

    sources, renders, links = [], [], []
    splits: dict[str, dict] = {}
    for (name, m), p in zip(loaded, parts):
        new_id = {s["id"]: f"{name}.{s['id']}" for s in m["sources"]}
        for s in m["sources"]:
            files = {stem: _renamed(f, s["id"], new_id[s["id"]]) for stem, f in s["files"].items()}
            links += [(p / f["path"], files[stem]["path"]) for stem, f in s["files"].items()]
            sources.append(s | {"id": new_id[s["id"]], "files": files})
        for r in m["renders"]:
            old = r["song"]
            stems = {stem: _renamed(f, old, new_id[old]) for stem, f in r["stems"].items()}
            mixture = _renamed(r["mixture"], old, new_id[old])
            links += [(p / f["path"], stems[stem]["path"]) for stem, f in r["stems"].items()]
            links.append((p / r["mixture"]["path"], mixture["path"]))
            renders.append(r | {"song": new_id[old], "stems": stems, "mixture": mixture})
        for split, sp in m["splits"].items():
            into = splits.setdefault(split, {"songs": [], "soundfonts": [], "commercial_use": True,
                                             "not_commercial_because": []})
            into["songs"] += [new_id[s] for s in sp["songs"]]
            into["soundfonts"] = sorted(set(into["soundfonts"]) | set(sp["soundfonts"]))
            into["commercial_use"] = into["commercial_use"] and sp["commercial_use"]
            into["not_commercial_because"] = sorted(set(into["not_commercial_because"])
                                                    | set(sp["not_commercial_because"]))
    manifest = {
        "format": data.FORMAT,
        "generator": {"code": CODE, "parts": [
            {"name": name, "manifest_sha256": file_sha256(p / "manifest.json"), "generator": m["generator"],
             "split_policy": m["split_policy"]} for (name, m), p in zip(loaded, parts)]},
        "split_policy": "each part's own (generator.parts); a part's songs keep their split",
        "render": loaded[0][1]["render"],
        "augmentation": loaded[0][1]["augmentation"],
        "stems": _stem_words(loaded),
        "sources": sources,
        "soundfonts": [fonts[k] for k in sorted(fonts)],
        "renders": renders,
        "splits": splits,
        "weights_licence_inputs": sorted({lic for _, m in loaded for lic in m["weights_licence_inputs"]}),
        "commercial_use": all(m["commercial_use"] for _, m in loaded),
        "commercial_use_basis": loaded[0][1]["commercial_use_basis"],
    }
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        for src, rel in links:
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
        data.write_manifest(manifest, out)
    except BaseException:  # a half-made set must not look like a set
        for child in list(out.iterdir()):
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        if made:
            out.rmdir()
        raise
    return manifest
