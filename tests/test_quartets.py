"""Quartets by other hands (issue 16): OpenScore String Quartets scores arranged into four stems
(`separation.training.quartets`) — a singer may take the top line and a bass the bottom one —
only public-domain ones, split by composer, and in a training set's manifest beside Lieder songs
with their licences and hashes. The scores here are written by the test in the corpus's shape
(compressed MusicXML, four string parts, a README per composer with the years)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from separation import train
from separation.training import data, quartets
from separation.training.compose import PPQ, VOICE_PROGRAMS
from sharedcore.hashing import file_sha256
from tests.conftest import need_fluidsynth
from tests.test_lieder import _corpus as _lieder_corpus
from tests.test_lieder import _write

PARTS = (("Violin 1", "strings.violin"), ("Violin 2", "strings.violin"), ("Viola", "strings.viola"),
         ("Violoncello", "strings.cello"))


def _note(step: str, octave: int, quarters: int, chord: bool = False) -> str:
    types = {1: "quarter", 2: "half", 4: "whole"}
    return (f"<note>{'<chord/>' if chord else ''}<pitch><step>{step}</step><octave>{octave}</octave></pitch>"
            f"<duration>{quarters}</duration><voice>1</voice><type>{types[quarters]}</type></note>")


def _rest() -> str:
    return "<note><rest/><duration>4</duration><voice>1</voice><type>whole</type></note>"


def _metronome(bpm: int) -> str:
    return (f'<direction><direction-type><metronome><beat-unit>quarter</beat-unit><per-minute>{bpm}'
            f'</per-minute></metronome></direction-type><sound tempo="{bpm}"/></direction>')


def _quartet_xml(parts: int = 4) -> str:
    """Four 4/4 bars in G major, 120 bpm, then 60 from bar 3: the first violin plays E5 quarters in
    bars 1-3 and rests in bar 4; the second violin C5 halves, the viola G4 and the cello C3 whole
    notes, the cello's bar 2 a double stop C2+G2."""
    lines = {
        0: ["".join(_note("E", 5, 1) for _ in range(4))] * 3 + [_rest()],
        1: [_note("C", 5, 2) * 2] * 4,
        2: [_note("G", 4, 4)] * 4,
        3: [_note("C", 3, 4), _note("C", 2, 4) + _note("G", 2, 4, chord=True), _note("C", 3, 4), _note("C", 3, 4)],
    }
    chosen = list(range(4))[:parts]
    part_list = "".join(
        f'<score-part id="P{k + 1}"><part-name>{PARTS[k][0]}</part-name><score-instrument id="P{k + 1}-I1">'
        f'<instrument-name>{PARTS[k][0]}</instrument-name><instrument-sound>{PARTS[k][1]}</instrument-sound>'
        '</score-instrument></score-part>' for k in chosen)
    attrs = ('<attributes><divisions>1</divisions><key><fifths>1</fifths></key><time><beats>4</beats>'
             '<beat-type>4</beat-type></time><clef><sign>G</sign><line>2</line></clef></attributes>')
    body = ""
    for k in chosen:
        bars = ""
        for b, notes in enumerate(lines[k]):
            head = (attrs + _metronome(120)) if b == 0 else _metronome(60) if b == 2 else ""
            bars += f'<measure number="{b + 1}">{head}{notes}</measure>'
        body += f'<part id="P{k + 1}">{bars}</part>'
    return ('<?xml version="1.0" encoding="UTF-8"?><score-partwise version="4.0">'
            f"<part-list>{part_list}</part-list>{body}</score-partwise>")


def _corpus(root: Path) -> Path:
    """Composers A (d. 1900, three quartets), B (d. 1850, two), C (d. 1990: not public domain)."""
    people = {"A,_Anna": "(1820–1900)", "B,_Bert": "(1790–1850)", "C,_Carl": "(1910–1990)"}
    for composer, years in people.items():
        (root / "scores" / composer).mkdir(parents=True)
        (root / "scores" / composer / "README.md").write_text(f"# {composer}\n\n__Composer {years}__\n")
    for k in range(3):
        _write(root / f"scores/A,_Anna/String_Quartet_No.{k + 1}/sq{100 + k}.mxl", _quartet_xml())
    for k in range(2):
        _write(root / f"scores/B,_Bert/Quartet_Op.{k + 1}/sq{200 + k}.mxl", _quartet_xml())
    _write(root / "scores/C,_Carl/Late_Quartet/sq300.mxl", _quartet_xml())
    return root


def _pitches(parts) -> list[int]:
    return sorted(p for part in parts for _, _, p, _ in part.notes)


def test_a_quartet_becomes_four_stems_a_singer_taking_the_top_line_and_a_bass_the_bottom(tmp_path):
    path = _write(tmp_path / "sq1.mxl", _quartet_xml())
    found = {}
    for seed in range(80):
        comp, how = quartets.arrange_score(path, 2.0, seed)
        found.setdefault((how["first_quarter"], how["vocals"] != "silent", how["bass"] != "silent", how["other"]),
                         (seed, comp, how))
    # 2 s is one bar at 120 bpm, half a bar at 60 (bar 3's mark); never bar 4, where the first violin rests
    assert {start for start, *_ in found} == {0.0, 4.0, 8.0}
    assert {start: c.bpm for (start, *_), (_, c, _) in found.items()} == {0.0: 120, 4.0: 120, 8.0: 60}
    assert {k[1:] for k in found} >= {(True, True, "as written"), (False, False, "re-voiced")}
    for (start, sung, bass, other), (seed, comp, how) in found.items():
        assert comp.stems["drums"] == [] and comp.key == 7 and comp.meter == 4
        window = 4 if comp.bpm == 120 else 2
        if sung:  # the first violin's line, sung, no longer in other
            (vocals,) = comp.stems["vocals"]
            assert vocals.program in VOICE_PROGRAMS and [(t, d, p) for t, d, p, _ in vocals.notes] == [
                (q * PPQ, PPQ, 76) for q in range(window)]
            assert 76 not in _pitches(comp.stems["other"])
        else:
            assert comp.stems["vocals"] == [] and 76 in _pitches(comp.stems["other"])
        if bass:  # the cello's lowest note per onset, on a bass program, no longer in other
            (line,) = comp.stems["bass"]
            assert line.program in quartets.QUARTET_BASS_PROGRAMS
            assert [p for _, _, p, _ in line.notes] == [36 if start == 4.0 else 48]
            assert not {36, 43, 48} & set(_pitches(comp.stems["other"]))
        else:
            assert comp.stems["bass"] == [] and {36, 48} & set(_pitches(comp.stems["other"]))
        programs = {p.program for p in comp.stems["other"]}
        assert programs <= ({40, 41, 42} if other == "as written" else set(quartets.REVOICE_PROGRAMS))
        assert 72 in _pitches(comp.stems["other"]) and 67 in _pitches(comp.stems["other"])  # the inner parts stay
        channels = [p.channel for p in comp.stems["other"]]
        assert len(set(channels)) == len(channels) and 9 not in channels
        for stem in ("drums", "bass", "vocals", "other"):
            comp.midi(stem).save(tmp_path / f"{stem}.mid")  # every stem writes, a silent one too
        again, how_again = quartets.arrange_score(path, 2.0, seed)
        assert again.stems == comp.stems and how_again == how  # same seed, same notes


def test_a_quartet_of_fewer_than_three_parts_or_unreadable_is_refused_with_the_reason(tmp_path):
    duo = _write(tmp_path / "duo.mxl", _quartet_xml(parts=2))
    with pytest.raises(quartets.ScoreRefused, match="2 parts with notes; .* three or more"):
        quartets.arrange_score(duo, 2.0, 1)
    broken = tmp_path / "b.mxl"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(quartets.ScoreRefused, match="not a readable MusicXML"):
        quartets.arrange_score(broken, 2.0, 1)


def test_only_public_domain_quartets_are_chosen_split_by_composer_and_a_judging_set_excludes(tmp_path):
    scores = quartets.corpus(_corpus(tmp_path / "StringQuartets"))
    assert len(scores) == 6 and sum(quartets.usable(s) for s in scores) == 5
    for seed in range(6):
        chosen = quartets.choose(scores, 5, seed, per_composer=3)
        assert {s.composer for s, _ in chosen} == {"A,_Anna", "B,_Bert"}
        splits = {split: {s.composer for s, sp in chosen if sp == split} for split in ("train", "select", "val")}
        assert splits["val"] and splits["train"] and not splits["val"] & splits["train"]
    with pytest.raises(ValueError, match="--quartet-songs 6: only 5 usable scores \\(public domain\\)"):
        quartets.choose(scores, 6, 0, per_composer=3)
    with pytest.raises(FileNotFoundError, match="git clone https://github.com/OpenScore/StringQuartets"):
        quartets.corpus(tmp_path / "nowhere")
    # another set's quartet composers and scores are left out; its Lieder songs are another corpus's
    first = quartets.choose(scores, 5, 2, per_composer=3)
    manifest = {"sources": [{"kind": "score-arrangement", "split": split,
                             "score": {"corpus": quartets.SOURCE, "composer": s.composer, "path": s.path}}
                            for s, split in first]
                + [{"kind": "score-arrangement", "split": "train",
                    "score": {"corpus": "https://github.com/OpenScore/Lieder", "composer": "Z", "path": "z.mxl"}}]}
    composers, paths = quartets.trained_on(manifest)
    assert "Z" not in composers and len(paths) == 5
    with pytest.raises(ValueError, match="only 0 usable scores"):
        quartets.choose(scores, 1, 2, per_composer=3, exclude=(composers, paths))


def test_a_set_with_lieder_and_quartets_records_both_corpora_and_its_card_names_both(tmp_path):
    need_fluidsynth("csound-gm", "timgm6mb")
    lieder_root, quartet_root = _lieder_corpus(tmp_path / "Lieder"), _corpus(tmp_path / "StringQuartets")
    duo = _write(quartet_root / "scores/B,_Bert/Duo/sq250.mxl", _quartet_xml(parts=2))  # chosen, then refused
    out = tmp_path / "set"
    manifest = data.build(out, 0, 3, seconds=2.0, lieder=lieder_root, lieder_songs=5, lieder_per_composer=3,
                          quartets=quartet_root, quartet_songs=6, quartet_per_composer=3, log=lambda *_: None)
    # the score the module cannot arrange is left out with the reason; the next one takes its song id
    (refused,) = manifest["generator"]["scores_refused"]
    assert refused["path"] == duo.relative_to(quartet_root).as_posix() and "three or more" in refused["reason"]
    assert refused["corpus"] == quartets.SOURCE and refused["split"] in ("train", "select", "val")
    assert manifest["commercial_use"] is True and data.verify(out) == []
    assert manifest["generator"]["quartet_songs"] == 6 and manifest["generator"]["quartets_tools"]["music21"]
    assert "quartet arrangements" in manifest["stems"]["bass"] and "doubling" in manifest["stems"]["bass"]
    sources = manifest["sources"]
    by_corpus = {c: [s for s in sources if s["score"]["corpus"] == c]
                 for c in ("https://github.com/OpenScore/Lieder", quartets.SOURCE)}
    assert [len(v) for v in by_corpus.values()] == [5, 5] and [s["id"] for s in sources] == [
        f"song{i:05d}" for i in range(10)]
    for s in by_corpus[quartets.SOURCE]:
        assert s["score"]["sha256"] == file_sha256(quartet_root / s["score"]["path"])
        assert s["licences"] == ["CC0-1.0", "LicenseRef-PublicDomain"] and s["commercial_use"]
        assert s["score"]["attribution"] == quartets.ATTRIBUTION and s["origin"].startswith(
            "separation.training.quartets.arrange_score(")
        assert s["vocals"]["kind"] in ("GM voice program on the score's top line (FluidSynth)",
                                       "silent: no one sings in this piece")
        assert (s["vocals"]["kind"] == "silent: no one sings in this piece") == (s["score"]["vocals"] == "silent")
    for corpus in by_corpus.values():  # each corpus splits by its own composers
        split_of = {sp: {s["score"]["composer"] for s in corpus if s["split"] == sp} for sp in ("train", "val")}
        assert split_of["train"] and split_of["val"] and not split_of["train"] & split_of["val"]
    assert set(train.composers(manifest).values()) == {"lieder", "quartets"}
    statement, _ = train.training_statement(manifest | {"_sha256": "f" * 64})
    q_trained = [s for s in by_corpus[quartets.SOURCE] if s["split"] != "val"]
    assert "excerpts of songs for voice and piano by 1 composer who died by" in statement
    assert (f" and {len(q_trained)} excerpts of string quartets by 1 composer who died by "
            f"{max(s['score']['composer_died'] for s in q_trained)}, from the OpenScore String Quartets corpus") in statement
    assert json.loads((out / "manifest.json").read_bytes()) == manifest


def test_the_cli_refuses_quartet_songs_without_a_checkout_and_writes_nothing(tmp_path):
    with pytest.raises(SystemExit, match="--quartet-songs needs --quartets"):
        data.main(["--out", str(tmp_path / "a"), "--songs", "0", "--seed", "1", "--quartet-songs", "3"])
    with pytest.raises(SystemExit, match="not a checkout of https://github.com/OpenScore/StringQuartets"):
        data.main(["--out", str(tmp_path / "b"), "--songs", "0", "--seed", "1", "--quartet-songs", "3",
                   "--quartets", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="--quartet-songs must be 0 or more"):
        data.main(["--out", str(tmp_path / "c"), "--songs", "0", "--seed", "1", "--quartet-songs", "-1",
                   "--quartets", str(tmp_path)])
    with pytest.raises(SystemExit, match="--quartet-exclude needs --quartet-songs"):
        data.main(["--out", str(tmp_path / "d"), "--songs", "0", "--seed", "1", "--quartet-exclude", str(tmp_path)])
    assert not any((tmp_path / d).exists() for d in "abcd")
