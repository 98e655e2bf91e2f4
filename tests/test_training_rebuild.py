"""A training set rendered again from its manifest alone (`separation.training.rebuild`, issue 16):
the same bytes, proved by the manifest's hash, or a refusal that says what differs. Renders tiny
sets (two or three songs of two seconds; FluidSynth + Csound GM and TimGM6mb)."""
from __future__ import annotations

import json
import shutil

import pytest

from separation.training import data, rebuild
from separation.training.merge import merge
from sharedcore.hashing import file_sha256
from tests.conftest import need_fluidsynth

SECONDS = "2"
V19 = rebuild.WEIGHTS / "clearstem-bandsplit-v19.training-manifest.json"


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """Two parts by two composers (one with orchestra choirs, a recorded option) merged into one set."""
    need_fluidsynth("csound-gm", "timgm6mb")
    root = tmp_path_factory.mktemp("made")
    a, b, m = root / "songs11", root / "orch12", root / "set"
    assert data.main(["--out", str(a), "--songs", "3", "--seed", "11", "--seconds", SECONDS]) == 0
    assert data.main(["--out", str(b), "--songs", "0", "--seed", "12", "--seconds", SECONDS,
                      "--orchestrated-songs", "3", "--orchestra-choirs", "0.5", "--orchestra-choir-tunes", "0.5"]) == 0
    merge([a, b], m)
    return m


def _write(path, manifest):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.canonical(manifest))
    return path


def test_a_merged_set_is_rendered_again_from_its_manifest_alone_byte_for_byte(merged, tmp_path, capsys):
    """Only the manifest travels (the parts and the set are gone); the rebuild renders each part
    from what it recorded, checks each part's hash, merges, and the merged hash is the recorded one."""
    manifest = tmp_path / "only" / "manifest.json"
    manifest.parent.mkdir()
    shutil.copyfile(merged / "manifest.json", manifest)
    assert rebuild.main([str(manifest), "--plan"]) == 0
    planned = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["part"] for p in planned] == ["songs11", "orch12"]
    assert planned[1]["build"] == {"songs": 0, "seed": 12, "seconds": 2.0, "sample_format": "flac24",
                                   "orchestrated": 3, "orchestra_choirs": 0.5, "orchestra_choir_tunes": 0.5,
                                   "train_banks": ["csound-gm"],
                                   "val_bank": "timgm6mb", "allow_noncommercial": False}
    out = tmp_path / "again"
    assert rebuild.main([str(manifest), "--out", str(out)]) == 0
    assert "the recorded one" in capsys.readouterr().out
    assert file_sha256(out / "manifest.json") == file_sha256(merged / "manifest.json")
    assert data.verify(out) == []
    assert sorted(p.name for p in (tmp_path / "again-parts").iterdir()) == ["orch12", "songs11"]
    # a second run finds the parts whole and as recorded, and only merges
    shutil.rmtree(out)
    log = []
    assert rebuild.rebuild(manifest, out, {}, [], log=log.append) == file_sha256(manifest)
    assert log == ["2 part(s), 0 to render: "]


def test_a_set_of_one_part_and_two_parts_at_once(merged, tmp_path):
    """A set that is not merged is its own one part; `--jobs 2` renders parts in two processes."""
    part = merged.parent / "songs11"
    assert rebuild.main([str(part / "manifest.json"), "--out", str(tmp_path / "one")]) == 0
    assert file_sha256(tmp_path / "one" / "manifest.json") == file_sha256(part / "manifest.json")
    assert rebuild.main([str(merged / "manifest.json"), "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    assert file_sha256(tmp_path / "two" / "manifest.json") == file_sha256(merged / "manifest.json")


def test_what_cannot_be_replayed_is_refused_before_anything_is_rendered(merged, tmp_path, capsys):
    recorded = json.loads((merged / "manifest.json").read_bytes())

    def refused(manifest, match, *more):
        path = _write(tmp_path / "m" / "manifest.json", manifest) if isinstance(manifest, dict) else manifest
        out = tmp_path / "out"
        assert rebuild.main([str(path), "--out", str(out), *more]) == 2
        assert match in capsys.readouterr().err
        assert not out.exists() and not (tmp_path / "out-parts").exists()

    refused(tmp_path / "absent.json", "not a readable manifest")
    refused({"format": "something/1", "generator": {}}, "not a training set's manifest")
    newer = json.loads(json.dumps(recorded))
    newer["generator"]["parts"][0]["generator"]["tempo_jitter"] = 0.1
    refused(newer, "cannot replay: tempo_jitter")
    other_bank = json.loads(json.dumps(recorded))
    other_bank["soundfonts"][0]["sha256"] = "0" * 64
    refused(other_bank, "bank csound-gm: recorded")
    other_engine = recorded | {"render": recorded["render"] | {"engine": "FluidSynth runtime version 9.9.9"}}
    refused(other_engine, "the renders would differ")
    excluding = json.loads(json.dumps(recorded))
    excluding["generator"]["parts"][0]["generator"]["lieder_excluded"] = {"manifest_sha256": "ab" * 32,
                                                                           "composers": [], "scores": 0}
    refused(excluding, "is not shipped nor in --manifests")
    lieder = json.loads(json.dumps(recorded))
    lieder["generator"]["parts"][1]["generator"] |= {"lieder_songs": 2, "lieder_per_composer": 2}
    refused(lieder, "arranges lieder scores: pass --lieder CHECKOUT")
    sung = json.loads(json.dumps(recorded))
    sung["sources"][0]["vocals"] = {"kind": data.SUNG_VOCALS["flite"][0]}
    refused(sung, "the share (--flite-vocals) was not recorded")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("kept")
    assert rebuild.main([str(merged / "manifest.json"), "--out", str(tmp_path / "full")]) == 2
    assert "is not empty" in capsys.readouterr().err and (tmp_path / "full" / "x").read_text() == "kept"
    with pytest.raises(SystemExit):
        rebuild.main([str(merged / "manifest.json")])  # neither --out nor --plan
    assert "--out is required" in capsys.readouterr().err


def test_a_part_that_renders_otherwise_is_named_with_its_files_and_nothing_is_merged(merged, tmp_path, capsys):
    """A recorded seed changed by hand: the part renders, its hash differs, and the report names
    the part and the first files that differ; the merged set is not made."""
    changed = json.loads((merged / "manifest.json").read_bytes())
    changed["generator"]["parts"][0]["generator"]["seed"] = 99
    path = _write(tmp_path / "m" / "manifest.json", changed)
    assert rebuild.main([str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "songs11: " in err and "midi/songs11.song00000/" in err and "another SHA-256" in err
    assert "orch12" not in err.split("not as recorded")[1]  # the other part rendered as recorded
    assert not (tmp_path / "out").exists()


def test_a_part_rendered_again_with_one_more_bank_reuses_every_recorded_render(merged, tmp_path, capsys):
    """`--add-bank`: the same songs (sources byte for byte), each train and select song also
    rendered with the new bank; every render the part recorded is a hard link to the old file.
    One part is a set of its own; two are rendered as parts (`NAME-BANK`) and merged."""
    old = merged.parent / "orch12"
    out = part = tmp_path / "plus"
    assert rebuild.main([str(merged / "manifest.json"), "--add-bank", "clearstem-synth", "--parts", "orch12",
                         "--reuse-from", str(merged.parent), "--out", str(out)]) == 0
    assert "a new set: the recorded songs with clearstem-synth added" in capsys.readouterr().out
    assert not (tmp_path / "plus-parts").exists()
    before, after = (json.loads((d / "manifest.json").read_bytes()) for d in (old, part))
    assert after["sources"] == before["sources"]
    banks = {(r["song"], r["soundfont"]): r for r in after["renders"]}
    for r in before["renders"]:  # every recorded render kept, its files the very same inodes
        again = banks.pop((r["song"], r["soundfont"]))
        for f, g in zip((*r["stems"].values(), r["mixture"]), (*again["stems"].values(), again["mixture"])):
            assert f["sha256"] == g["sha256"] and (old / f["path"]).stat().st_ino == (part / g["path"]).stat().st_ino
    trained = {s["id"] for s in before["sources"] if s["split"] != "val"}
    assert {song for song, _ in banks} == trained and {bank for _, bank in banks} == {"clearstem-synth"}
    assert data.verify(out) == [] and json.loads((out / "manifest.json").read_bytes())["commercial_use"] is True
    # a set of one part is rendered whole again (its folder is the set); the same bytes
    shutil.rmtree(out)
    log = []
    digest = rebuild.rebuild(merged / "manifest.json", out, {}, [], merged.parent, log=log.append,
                             add_bank="clearstem-synth", only=["orch12"])
    assert log[0] == "1 part(s), 1 to render: orch12" and digest == file_sha256(part / "manifest.json")
    both = tmp_path / "both"
    assert rebuild.main([str(merged / "manifest.json"), "--add-bank", "clearstem-synth", "--reuse-from",
                         str(merged.parent), "--out", str(both)]) == 0
    assert sorted(p.name for p in (tmp_path / "both-parts").iterdir()) == ["orch12-clearstem-synth",
                                                                          "songs11-clearstem-synth"]
    assert data.verify(both) == []
    assert (tmp_path / "both-parts" / "orch12-clearstem-synth" / "manifest.json").read_bytes() == \
        (part / "manifest.json").read_bytes()  # the same part, whichever way it was asked for


def test_adding_a_bank_is_refused_when_it_cannot_add_anything(merged, tmp_path, capsys):
    cases = [(["--add-bank", "csound-gm"], "already renders with csound-gm"),
             (["--add-bank", "no-such-bank"], "unknown soundfont id"),
             (["--add-bank", "clearstem-synth", "--parts", "orch99"], "--parts orch99: not a part of this set"),
             (["--parts", "orch12"], "--parts names the parts that get --add-bank")]
    for more, match in cases:
        assert rebuild.main([str(merged / "manifest.json"), "--out", str(tmp_path / "out"), *more]) == 2
        assert match in capsys.readouterr().err
        assert not (tmp_path / "out").exists() and not (tmp_path / "out-parts").exists()


def test_an_excluded_set_is_found_by_its_hash_among_the_shipped_manifests():
    """v19's two Lieder parts excluded v5's and v8's training sets (by path on the machine that
    built them); both manifests ship beside their weights, found here by SHA-256 alone."""
    manifest = json.loads(V19.read_bytes())
    parts = rebuild.plan(manifest, file_sha256(V19))
    assert [p.name for p in parts] == [p["name"] for p in manifest["generator"]["parts"]]
    assert all(p.kwargs["train_banks"] == ("csound-gm", "sonivox-eas") and p.kwargs["val_bank"] == "timgm6mb"
               for p in parts)
    known = rebuild.known_manifests([])
    excluded = {p.name: known[digest].name for p in parts for digest in p.excludes.values()}
    assert excluded == {"lieder77-2b": "clearstem-bandsplit-v5.training-manifest.json",
                        "lieder84-2b": "clearstem-bandsplit-v8.training-manifest.json"}
    quartets = next(p for p in parts if p.name == "quartets85-2b")
    assert quartets.kwargs["quartet_songs"] == 60 and quartets.tools["quartets"]["corpus_commit"]
