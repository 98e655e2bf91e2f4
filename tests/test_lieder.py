"""Songs by other hands (issue 16): OpenScore Lieder scores arranged into four stems
(`separation.training.lieder`), only public-domain sung ones, split by composer, and in a
training set's manifest with their licences and hashes. The scores here are written by the test
in the corpus's own shape (compressed MusicXML, a voice that MuseScore plays as an oboe, a piano on
two staves, a README per composer with the years)."""
from __future__ import annotations

import importlib.metadata
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from separation import train
from separation.training import data, lieder
from separation.training.compose import PPQ
from separation.training.licences import commercial_ok
from sharedcore.hashing import file_sha256
from tests.conftest import need_fluidsynth

CONTAINER = ('<?xml version="1.0" encoding="UTF-8"?><container><rootfiles>'
             '<rootfile full-path="score.xml" media-type="application/vnd.recordare.musicxml+xml"/>'
             '</rootfiles></container>')


def _note(step: str, octave: int, quarters: int, staff: int | None = None, chord: bool = False,
          tie: str | None = None) -> str:
    types = {1: "quarter", 2: "half", 4: "whole"}
    return (f"<note>{'<chord/>' if chord else ''}<pitch><step>{step}</step><octave>{octave}</octave></pitch>"
            f"<duration>{quarters}</duration>{f'<tie type={chr(34)}{tie}{chr(34)}/>' if tie else ''}"
            f"<voice>1</voice><type>{types[quarters]}</type>{f'<staff>{staff}</staff>' if staff else ''}</note>")


def _dynamic(mark: str, staff: int | None = None) -> str:
    return (f"<direction><direction-type><dynamics><{mark}/></dynamics></direction-type>"
            f"{f'<staff>{staff}</staff>' if staff else ''}</direction>")


def _score_xml(voice_name: str = "Voice", voice_sound: str = "voice.vocals", tempo: int = 90) -> str:
    """Three 4/4 bars in E flat at `tempo`: the voice sings bars 1-2 (a tied C5, then four Es
    forte), the piano holds chords over a left hand of C3, A0+G2 and E4."""
    parts = (f'<score-part id="P1"><part-name>{voice_name}</part-name><score-instrument id="P1-I1">'
             f'<instrument-name>{voice_name}</instrument-name><instrument-sound>{voice_sound}</instrument-sound>'
             '</score-instrument><midi-instrument id="P1-I1"><midi-program>69</midi-program></midi-instrument>'
             '</score-part><score-part id="P2"><part-name>Piano</part-name><score-instrument id="P2-I1">'
             '<instrument-name>Piano</instrument-name><instrument-sound>keyboard.piano</instrument-sound>'
             '</score-instrument></score-part>')
    attrs = ('<attributes><divisions>1</divisions><key><fifths>-3</fifths></key><time><beats>4</beats>'
             '<beat-type>4</beat-type></time>{clefs}</attributes>')
    metronome = (f'<direction><direction-type><metronome><beat-unit>quarter</beat-unit><per-minute>{tempo}'
                 f'</per-minute></metronome></direction-type><sound tempo="{tempo}"/></direction>')
    voice = (f'<measure number="1">{attrs.format(clefs="<clef><sign>G</sign><line>2</line></clef>")}{metronome}'
             f'{_dynamic("p")}{_note("C", 5, 2, tie="start")}{_note("C", 5, 2, tie="stop")}</measure>'
             f'<measure number="2">{_dynamic("f")}{"".join(_note("E", 5, 1) for _ in range(4))}</measure>'
             '<measure number="3"><note><rest/><duration>4</duration><voice>1</voice><type>whole</type></note></measure>')
    clefs = ('<staves>2</staves><clef number="1"><sign>G</sign><line>2</line></clef>'
             '<clef number="2"><sign>F</sign><line>4</line></clef>')
    left = [[("C", 3)], [("A", 0), ("G", 2)], [("E", 4)]]
    piano = ""
    for bar in range(3):
        lh = "".join(_note(s, o, 4, staff=2, chord=k > 0) for k, (s, o) in enumerate(left[bar]))
        piano += (f'<measure number="{bar + 1}">{attrs.format(clefs=clefs) if bar == 0 else ""}'
                  f'{_note("E", 4, 4, staff=1)}{_note("G", 4, 4, staff=1, chord=True)}'
                  f'<backup><duration>4</duration></backup>{lh}</measure>')
    return ('<?xml version="1.0" encoding="UTF-8"?><score-partwise version="4.0">'
            f'<part-list>{parts}</part-list><part id="P1">{voice}</part><part id="P2">{piano}</part></score-partwise>')


def _write(path: Path, xml: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("META-INF/container.xml", CONTAINER)
        z.writestr("score.xml", xml)
    return path


def _corpus(root: Path) -> Path:
    """Composers A (d. 1900, three sung songs), B (d. 1850, two), C (d. 1990: not public domain),
    D (no README: unknown), E (d. 1800, a song nobody sings)."""
    people = {"A,_Anna": "(1820–1900)", "B,_Bert": "(1790–1850)", "C,_Carl": "(1910–1990)",
              "E,_Emil": "(1750–1800)"}
    for composer, years in people.items():
        (root / "scores" / composer).mkdir(parents=True)
        (root / "scores" / composer / "README.md").write_text(f"# {composer}\n\n__German composer {years}__\n")
    for k in range(3):
        _write(root / f"scores/A,_Anna/_/Song_{k}/lc{100 + k}.mxl", _score_xml(tempo=80 + 10 * k))
    for k in range(2):
        _write(root / f"scores/B,_Bert/Op.1/{k + 1}_Lied/lc{200 + k}.mxl", _score_xml(voice_name="Singstimme"))
    _write(root / "scores/C,_Carl/_/Late/lc300.mxl", _score_xml())
    _write(root / "scores/D,_Dora/_/Unknown/lc400.mxl", _score_xml())
    _write(root / "scores/E,_Emil/_/Flute_piece/lc500.mxl", _score_xml(voice_name="Flute", voice_sound="wind.flutes.flute"))
    return root


def test_a_score_becomes_four_stems_with_its_own_notes_tempo_and_dynamics(tmp_path):
    path = _write(tmp_path / "lc1.mxl", _score_xml(tempo=90))
    # 3 bars of 4/4 at 90 bpm are 8 s: an 8-second excerpt from bar 1 or 2 (the voice sings in ≥ 30 %)
    found = {}
    for seed in range(40):
        comp, how = lieder.arrange_score(path, 8.0, seed)
        found.setdefault((how["first_quarter"], how["bass"]), (seed, comp, how))
    assert {start for start, _ in found} == {0.0, 4.0}  # never bar 3, where nobody sings
    seed, comp, how = found[(0.0, "doubles the lowest accompaniment line")]
    assert comp.bpm == 90 and comp.meter == 4 and comp.key == 3  # three flats: E flat
    assert how["sung_parts"] == ["Voice"] and how["accompaniment_parts"] == ["Piano", "Piano"]

    (vocals,) = comp.stems["vocals"]
    assert [(t, d, p) for t, d, p, _ in vocals.notes] == [(0, 4 * PPQ, 72)] + [(q * PPQ, PPQ, 76) for q in range(4, 8)]
    soft, loud = vocals.notes[0][3], min(v for *_, v in vocals.notes[1:])
    assert loud - soft > 12  # p, then f

    assert comp.stems["drums"] == []
    assert sorted(p for part in comp.stems["other"] for *_, p, _ in part.notes) == sorted(
        [64, 67] * 3 + [48, 21, 43, 64])  # the piano as written, both staves
    (bass,) = comp.stems["bass"]
    # the left hand's lowest note per onset (C3, A0, E4) moved by octaves into E1..G3
    assert [(t, d, p) for t, d, p, _ in bass.notes] == [(0, 4 * PPQ, 48), (4 * PPQ, 4 * PPQ, 33), (8 * PPQ, 4 * PPQ, 52)]
    assert bass.program in lieder.LIED_BASS_PROGRAMS and vocals.program in (52, 53, 54, 85)
    silent_bass = next(c for (start, b), (_, c, _) in found.items() if b == "silent")
    assert silent_bass.stems["bass"] == []
    for stem in ("drums", "bass", "vocals", "other"):
        comp.midi(stem).save(tmp_path / f"{stem}.mid")  # every stem writes, a silent one too
    again, how_again = lieder.arrange_score(path, 8.0, seed)
    assert again.stems == comp.stems and how_again == how  # same seed, same notes


def test_scores_nobody_sings_or_unreadable_are_refused_with_the_reason(tmp_path):
    flute = _write(tmp_path / "f.mxl", _score_xml(voice_name="Flute", voice_sound="wind.flutes.flute"))
    with pytest.raises(lieder.ScoreRefused, match="no sung part"):
        lieder.arrange_score(flute, 8.0, 1)
    broken = tmp_path / "b.mxl"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(lieder.ScoreRefused, match="not a readable MusicXML"):
        lieder.arrange_score(broken, 8.0, 1)
    assert lieder.sung_part_names(broken) == set()
    assert lieder.death_year("# X\n\n__British composer (1877–1953)__\n") == 1953
    assert lieder.death_year("# X\n\n__English poet and composer (–1743)__\n") == 1743
    assert lieder.death_year("# X\n\nno dates\n") is None


def test_only_public_domain_sung_scores_are_chosen_and_val_composers_are_never_trained_on(tmp_path):
    scores = lieder.corpus(_corpus(tmp_path / "Lieder"))
    assert len(scores) == 8
    by_path = {s.composer: s for s in scores}
    assert by_path["C,_Carl"].died == 1990 and not lieder.usable(by_path["C,_Carl"])
    assert by_path["D,_Dora"].died is None and not lieder.usable(by_path["D,_Dora"])
    assert not by_path["E,_Emil"].sung and not lieder.usable(by_path["E,_Emil"])
    for seed in range(6):
        chosen = lieder.choose(scores, 5, seed, per_composer=3)
        assert {s.composer for s, _ in chosen} == {"A,_Anna", "B,_Bert"}
        splits = {split: {s.composer for s, sp in chosen if sp == split} for split in ("train", "select", "val")}
        assert splits["val"] and splits["train"] and not splits["val"] & splits["train"]
        assert [sp for _, sp in chosen] == sorted((sp for _, sp in chosen), key=["train", "select", "val"].index)
    assert len(lieder.choose(scores, 4, 0, per_composer=2)) == 4  # two of each
    with pytest.raises(ValueError, match="only 5 usable scores"):
        lieder.choose(scores, 6, 0, per_composer=3)
    with pytest.raises(FileNotFoundError, match="git clone https://github.com/OpenScore/Lieder"):
        lieder.corpus(tmp_path / "nowhere")


def test_a_judging_set_leaves_out_what_another_set_trained_on(tmp_path):
    scores = lieder.corpus(_corpus(tmp_path / "Lieder"))
    first = lieder.choose(scores, 5, 2, per_composer=3)
    (trained_composer,) = {s.composer for s, split in first if split == "train"}
    val_score = next(s for s, split in first if split == "val")
    manifest = {"sources": [{"kind": "score-arrangement", "split": split,
                             "score": {"corpus": lieder.SOURCE, "composer": s.composer, "path": s.path}}
                            for s, split in first]
                + [{"kind": "procedural-midi", "split": "train"}]}
    composers, paths = lieder.trained_on(manifest)
    assert composers == {trained_composer} and len(paths) == 5
    # only the val composer's songs are left, and not those the first set used
    with pytest.raises(ValueError, match="only 0 usable scores"):
        lieder.choose(scores, 1, 2, per_composer=3, exclude=(composers, paths))
    rest = lieder.choose(scores, 1, 2, per_composer=3, exclude=(composers, paths - {val_score.path}))
    assert [s.path for s, _ in rest] == [val_score.path]
    with pytest.raises(SystemExit, match="--lieder-exclude needs --lieder-songs"):
        data.main(["--out", str(tmp_path / "x"), "--songs", "0", "--seed", "1", "--lieder-exclude", str(tmp_path)])
    with pytest.raises(SystemExit, match="refused: .*missing.json"):
        data.main(["--out", str(tmp_path / "y"), "--songs", "0", "--seed", "1", "--lieder", str(tmp_path / "Lieder"),
                   "--lieder-songs", "1", "--lieder-exclude", str(tmp_path / "missing.json")])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_set_with_lieder_records_each_scores_licence_hash_and_composer_and_stays_commercial_clean(tmp_path):
    need_fluidsynth("csound-gm", "timgm6mb")
    root = _corpus(tmp_path / "Lieder")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "corpus"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    out = tmp_path / "set"
    manifest = data.build(out, 0, 3, seconds=2.0, lieder=root, lieder_songs=5, lieder_per_composer=3, log=lambda *_: None)
    # what a rebuild that differs needs to say why: the corpus's commit and the parser's version
    assert manifest["generator"]["lieder_tools"] == {"corpus_commit": commit,
                                                     "music21": importlib.metadata.version("music21")}
    assert lieder.tools(tmp_path)["corpus_commit"] is None  # not a checkout (and no parent repository's commit)
    assert manifest["commercial_use"] is True
    assert manifest["weights_licence_inputs"] == sorted(
        {"CC0-1.0", "LicenseRef-PublicDomain"} | {s["licence"] for s in manifest["soundfonts"] if "train" in s["splits"]})
    assert all(commercial_ok(lic) for lic in manifest["weights_licence_inputs"])
    assert manifest["generator"]["lieder_songs"] == 5 and "doubling" in manifest["stems"]["bass"]
    sources = manifest["sources"]
    assert len(sources) == 5 and all(s["kind"] == "score-arrangement" for s in sources)
    for s in sources:
        score = s["score"]
        assert score["sha256"] == file_sha256(root / score["path"])
        assert score["composer_died"] <= lieder.PUBLIC_DOMAIN_DIED_BY and s["licences"] == ["CC0-1.0", "LicenseRef-PublicDomain"]
        assert s["commercial_use"] and "sung parts" in s["vocals"]["kind"]
    composers = {split: {s["score"]["composer"] for s in sources if s["split"] == split} for split in ("train", "val")}
    assert composers["train"] and composers["val"] and not composers["train"] & composers["val"]
    val_banks = {r["soundfont"] for r in manifest["renders"] if r["split"] == "val"}
    assert val_banks == {"timgm6mb"}
    drums = [r["stems"]["drums"]["rms_dbfs"] for r in manifest["renders"]]
    assert max(drums) < -150  # a Lied has no drums
    assert data.verify(out) == []
    assert json.loads((out / "manifest.json").read_bytes()) == manifest
    # what weights trained on it would state in every stem's record: the scores are named, and the
    # statement no longer says "no third-party MIDI"
    statement, weights_licence = train.training_statement(manifest | {"_sha256": "f" * 64})
    trained = [s for s in sources if s["split"] != "val"]
    died = max(s["score"]["composer_died"] for s in trained)
    assert (f"{len(trained)} excerpts of songs for voice and piano by 1 composer who died by {died}, "
            "from the OpenScore Lieder") in statement
    assert "no third-party recordings or MIDI" not in statement and "allows commercial use" in weights_licence
    assert set(train.composers(manifest).values()) == {"lieder"}


def test_the_cli_refuses_lieder_songs_without_a_checkout_and_writes_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit, match="--lieder-songs needs --lieder"):
        data.main(["--out", str(tmp_path / "a"), "--songs", "0", "--seed", "1", "--lieder-songs", "3"])
    with pytest.raises(SystemExit, match="not a checkout of https://github.com/OpenScore/Lieder"):
        data.main(["--out", str(tmp_path / "b"), "--songs", "0", "--seed", "1", "--lieder-songs", "3",
                   "--lieder", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="--lieder-songs must be 0 or more"):
        data.main(["--out", str(tmp_path / "c"), "--songs", "0", "--seed", "1", "--lieder-songs", "-1",
                   "--lieder", str(tmp_path)])
    assert not any((tmp_path / d).exists() for d in "abc")
