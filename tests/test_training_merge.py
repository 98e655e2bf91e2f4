"""One training set from rendered ones (`separation.training.merge`, issue 16): nothing rendered
again, nothing copied, every part verified first, the result an ordinary set the trainer reads.
Renders two tiny sets (two songs of two seconds each; FluidSynth + Csound GM and TimGM6mb)."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from separation import train
from separation.training import data
from separation.training.merge import MergeRefused, merge
from tests.conftest import need_fluidsynth

SECONDS = "2"


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    need_fluidsynth("csound-gm", "timgm6mb")
    root = tmp_path_factory.mktemp("parts")
    a, b = root / "songs11", root / "arranged12"
    assert data.main(["--out", str(a), "--songs", "2", "--seed", "11", "--seconds", SECONDS]) == 0
    assert data.main(["--out", str(b), "--songs", "0", "--seed", "12", "--seconds", SECONDS,
                      "--arranged-songs", "2"]) == 0
    return a, b


def _manifest(d):
    return json.loads((d / "manifest.json").read_bytes())


def _files(m):
    return [f for s in m["sources"] for f in s["files"].values()] + \
        [f for r in m["renders"] for f in (*r["stems"].values(), r["mixture"])]


def test_a_merged_set_lists_every_part_renamed_and_links_their_files(parts, tmp_path):
    a, b = parts
    out = tmp_path / "merged"
    assert data.main(["--out", str(out), "--merge", str(a), str(b)]) == 0
    m, ma, mb = _manifest(out), _manifest(a), _manifest(b)
    assert data.verify(out) == []
    assert [s["id"] for s in m["sources"]] == [f"songs11.{s['id']}" for s in ma["sources"]] + \
        [f"arranged12.{s['id']}" for s in mb["sources"]]
    # every file is the part's own file (a hard link: nothing copied), with the hash the part recorded
    theirs = {(d.name, f["path"]): f["sha256"] for d, mm in ((a, ma), (b, mb)) for f in _files(mm)}
    for f in _files(m):
        folders = f["path"].split("/")
        k = 2 if folders[0] == "audio" else 1
        part, folders[k] = folders[k].split(".", 1)
        original = "/".join(folders)
        assert theirs[(part, original)] == f["sha256"]
        assert os.path.samefile(out / f["path"], (a if part == a.name else b) / original)
    assert len(_files(m)) == len(theirs)
    # the splits are the parts' splits, the val bank stays out of training, the licences carry over
    for split in ("train", "select", "val"):
        want = [f"songs11.{s}" for s in ma["splits"].get(split, {}).get("songs", [])] + \
            [f"arranged12.{s}" for s in mb["splits"].get(split, {}).get("songs", [])]
        assert m["splits"].get(split, {}).get("songs", []) == want
    assert {r["song"]: r["split"] for r in m["renders"]} == \
        {f"{d.name}.{r['song']}": r["split"] for d, mm in ((a, ma), (b, mb)) for r in mm["renders"]}
    assert all(r["soundfont"] == ("timgm6mb" if r["split"] == "val" else "csound-gm") for r in m["renders"])
    assert m["commercial_use"] is True and m["weights_licence_inputs"] == sorted(
        set(ma["weights_licence_inputs"]) | set(mb["weights_licence_inputs"]))
    assert [(p["name"], p["manifest_sha256"], p["generator"]) for p in m["generator"]["parts"]] == [
        ("songs11", (a / "manifest.sha256").read_text().split()[0], ma["generator"]),
        ("arranged12", (b / "manifest.sha256").read_text().split()[0], mb["generator"])]
    # the same parts merged again give the same manifest, byte for byte
    again = tmp_path / "again"
    merge([a, b], again)
    assert (again / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()
    # the trainer reads it as any set: its statement counts both parts' training songs, its examples load
    loaded = train.load_set(out)
    statement, licence = train.training_statement(loaded)
    n_train = len(m["splits"]["train"]["songs"]) + len(m["splits"].get("select", {}).get("songs", []))
    assert f"{n_train} songs composed procedurally by ClearStem" in statement and "commercial use" in licence
    assert set(train.composers(loaded).values()) == {"compose", "arrange"}
    mix, stems = train.Examples(out, loaded, "train", 1.0, 0).example(0, 0)
    assert mix.shape == (2, 44100) and stems.shape == (4, 2, 44100)


def test_a_merge_that_cannot_say_what_it_holds_is_refused_and_writes_nothing(parts, tmp_path):
    a, b = parts
    with pytest.raises(MergeRefused, match="at least two sets"):
        merge([a], tmp_path / "one")
    with pytest.raises(SystemExit, match=r"refused: .*/nothing: no manifest.json \(not a rendered set\)"):
        data.main(["--out", str(tmp_path / "one"), "--merge", str(a), str(tmp_path / "nothing")])
    twin = tmp_path / "twin" / a.name
    shutil.copytree(a, twin)
    with pytest.raises(MergeRefused, match="same directory name"):
        merge([a, twin], tmp_path / "same")
    # a part whose files no longer match its manifest is refused before anything is written
    damaged = tmp_path / "damaged"
    shutil.copytree(b, damaged)
    path = _manifest(damaged)["renders"][0]["stems"]["drums"]["path"]
    (damaged / path).write_bytes(b"not the render")
    with pytest.raises(SystemExit, match=f"refused: {damaged} does not match its manifest: {path}: SHA-256 differs"):
        data.main(["--out", str(tmp_path / "bad"), "--merge", str(a), str(damaged)])
    # a part rendered another way, or with another file under a bank's id: one set cannot hold both
    other = tmp_path / "other"
    shutil.copytree(b, other)
    m = _manifest(other)
    m["render"]["engine"] = "FluidSynth runtime version 0.0.0"
    data.write_manifest(m, other)
    with pytest.raises(MergeRefused, match="differ in 'render'"):
        merge([a, other], tmp_path / "bad")
    m = _manifest(b)  # as if rendered elsewhere, with a bank this machine lacks (verify cannot check it)
    m["soundfonts"][0] |= {"sha256": "0" * 64, "path": str(tmp_path / "elsewhere.sf2")}
    data.write_manifest(m, other)
    with pytest.raises(MergeRefused, match=f"soundfont {m['soundfonts'][0]['id']} is another file in other"):
        merge([a, other], tmp_path / "bad")
    assert not (tmp_path / "one").exists() and not (tmp_path / "same").exists() and not (tmp_path / "bad").exists()
    # never over another set: a non-empty --out is left as it was
    local = tmp_path / "mine" / a.name  # a copy of a part, rendered again below
    shutil.copytree(a, local)
    taken = tmp_path / "taken"
    merge([local, b], taken)
    before = (taken / "manifest.json").read_bytes()
    with pytest.raises(SystemExit, match="refused: .* is not empty"):
        data.main(["--out", str(taken), "--merge", str(a), str(b)])
    assert (taken / "manifest.json").read_bytes() == before and data.verify(taken) == []
    # rendering a part again later replaces its files, so the merged set keeps what it listed
    data.build(local, 2, 13, float(SECONDS), log=lambda *_: None)
    assert data.verify(local) == [] and _manifest(local) != _manifest(a)
    assert data.verify(taken) == []
