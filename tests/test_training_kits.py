"""Recorded drum kits (`separation.training.kits`): Hydrogen drumkits read in both of Hydrogen's
formats, pinned, and played from GM drum parts at any place in a song."""
from __future__ import annotations

import mido
import numpy as np
import pytest
import soundfile as sf

from separation.training import kits, licences
from separation.training.freepats import tree_sha256

RATE = 44100
NS = "http://www.hydrogen-music.org/drumkit"


def _instrument(name: str, layers: list[tuple[str, float, float, float]], pan=(1.0, 1.0), volume=1.0) -> str:
    body = "".join(f"<layer><filename>{f}</filename><min>{lo}</min><max>{hi}</max><gain>{g}</gain></layer>"
                   for f, lo, hi, g in layers)
    return (f"<instrument><id>0</id><name>{name}</name><volume>{volume}</volume><pan_L>{pan[0]}</pan_L>"
            f"<pan_R>{pan[1]}</pan_R><instrumentComponent>{body}</instrumentComponent></instrument>")


@pytest.fixture
def layered_kit(tmp_path) -> kits.KitSource:
    """A kit in Hydrogen's layered format: a kick with a soft and a hard layer, hats, a panned tom,
    and an instrument of no known class; every sample a constant so levels can be read off."""
    folder = tmp_path / "kits" / "TestKit"
    folder.mkdir(parents=True)
    for name, value, seconds, rate in (("soft.wav", 0.25, 0.1, RATE), ("hard.wav", 0.5, 0.1, RATE),
                                       ("closed.wav", 0.1, 0.05, RATE), ("open.wav", 0.2, 1.0, 48000),
                                       ("tom.wav", 0.4, 3.0, RATE), ("odd.wav", 0.9, 0.1, RATE)):
        sf.write(folder / name, np.full(int(seconds * rate), value, np.float32), rate, subtype="FLOAT")
    xml = (f'<drumkit_info xmlns="{NS}"><name>TestKit</name><instrumentList>'
           + _instrument("Kick", [("soft.wav", 0, 0.5, 1), ("hard.wav", 0.5, 1, 2)])
           + _instrument("Closed HH", [("closed.wav", 0, 1, 1)])
           + _instrument("Open HH", [("open.wav", 0, 1, 1)])
           + _instrument("Tom Hi", [("tom.wav", 0, 1, 1)], pan=(1.0, 0.25), volume=0.5)
           + _instrument("Sample: odd.wav", [("odd.wav", 0, 1, 1)])
           + "</instrumentList></drumkit_info>")
    (folder / "drumkit.xml").write_text(xml)
    return kits.KitSource("test-kit", "TestKit", "CC0-1.0", "a test kit", tree_sha256(folder))


def _note(t: float, key: int, vel: int = 127) -> tuple:
    return (t, t + 0.1, key, vel, 0, 9)


def test_a_layered_kit_plays_each_note_where_it_falls_by_velocity_pan_and_choke(layered_kit, tmp_path):
    player = kits.Player(layered_kit, root=tmp_path / "kits")
    assert sorted(player.classes) == ["hat_closed", "hat_open", "kick", "tom_high"]  # "Sample: odd.wav" left out
    start = 10.0
    out = player.render([_note(10.5, 36, 127), _note(11.0, 36, 40)], start, 2 * RATE)
    at = int(0.5 * RATE)
    assert out[:, at - 1].max() == 0 and np.allclose(out[:, at + 10], 0.5 * 2)  # hard layer: sample × gain × 127/127
    assert np.allclose(out[:, RATE + 10], 0.25 * 40 / 127)  # soft layer, scaled by velocity
    # an open hat rings (resampled from 48 kHz) until the next closed hat cuts it, with a 5 ms fade
    hats = player.render([_note(10.0, 46), _note(10.2, 42)], start, RATE)
    assert np.allclose(hats[:, int(0.1 * RATE)], 0.2, atol=1e-3)
    assert np.allclose(hats[:, int(0.2 * RATE) + int(0.006 * RATE)], 0.1)  # the closed hat alone...
    assert np.allclose(hats[:, int(0.26 * RATE):], 0)  # ...and nothing after it: the open hat was cut
    # a tom keyed before the window still sounds in it; pan_L / pan_R weigh the channels
    tom = player.render([_note(8.5, 50)], start, RATE // 2)
    assert np.allclose(tom[0], 0.4 * 0.5) and np.allclose(tom[1], 0.4 * 0.5 * 0.25)
    # GM fallbacks: a pedal hat plays the closed hat, a low tom the high one; a cowbell nothing here
    assert player.instrument(44).name == "Closed HH" and player.instrument(41).name == "Tom Hi"
    assert player.instrument(56) is None and not player.render([_note(10.1, 56)], start, RATE).any()


def test_a_kit_in_hydrogens_older_format_is_read_and_its_named_keys_win_within_a_class(tmp_path):
    """The one-`<filename>` format of older kits; a partly-GM kit that names its instruments by key
    ("d#4 - cymbal 1": 51, the GM ride) plays that one for the key, if it is of the key's class."""
    folder = tmp_path / "Old"
    folder.mkdir()
    body = ""
    for i, name in enumerate(("c3 - bass drum 1", "f3 - bass drum 2", "c#4 - crash", "d#4 - cymbal 1")):
        sf.write(folder / f"s{i}.flac", np.full(100, 0.1 * (i + 1), np.float32), RATE)
        body += (f"<instrument><id>{i}</id><name>{name}</name><filename>s{i}.flac</filename><volume>0.9</volume>"
                 "<pan_L>1</pan_L><pan_R>1</pan_R></instrument>")
    (folder / "drumkit.xml").write_text(f"<drumkit_info><name>Old</name><instrumentList>{body}</instrumentList>"
                                        "</drumkit_info>")
    classes = kits.read_drumkit(folder)
    assert [(i.name, i.key) for i in classes["kick"]] == [("c3 - bass drum 1", 36), ("f3 - bass drum 2", 41)]
    assert classes["kick"][0].volume == 0.9 and classes["kick"][0].layers[0].audio.shape == (2, 100)
    player = kits.Player(kits.KitSource("old", "Old", "CC0-1.0", "a test kit", tree_sha256(folder)), root=tmp_path)
    assert player.instrument(51).name == "d#4 - cymbal 1"  # no ride: a crash-class cymbal, the one named at 51
    assert player.instrument(49).name == "c#4 - crash"
    assert player.instrument(41) is None  # GM 41 is a tom: a kick named at 41 does not play it


def test_a_changed_or_missing_kit_is_refused(layered_kit, tmp_path):
    root = tmp_path / "kits"
    sf.write(root / "TestKit" / "tom.wav", np.zeros(10, np.float32), RATE)
    with pytest.raises(kits.KitError, match="pinned"):
        kits.Player(layered_kit, root=root)
    with pytest.raises(kits.KitError, match="missing"):
        kits.Player(layered_kit, root=tmp_path / "elsewhere")
    with pytest.raises(kits.KitError, match="unknown kit"):
        kits.Player("no-such-kit")
    (tmp_path / "Broken").mkdir()
    (tmp_path / "Broken" / "drumkit.xml").write_text("<drumkit_info><instrumentList>")
    with pytest.raises(kits.KitError, match="readable"):
        kits.read_drumkit(tmp_path / "Broken")


def test_the_installed_kits_match_their_pins_and_play_a_groove(tmp_path):
    """The three kits training may use, as Debian's hydrogen-drumkits installs them (the set-up
    installs it): pinned, and each plays kick, snare, hats, a tom and a cymbal from a GM part read
    from a MIDI file."""
    if not kits.KIT_ROOT.is_dir():
        pytest.fail("Debian's hydrogen-drumkits is not installed: run scripts/bootstrap.sh as root")
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    keys = (36, 38, 42, 46, 44, 45, 49, 51)
    for key in keys:  # one note a beat at 120 bpm: every 0.5 s
        track += [mido.Message("note_on", channel=9, note=key, velocity=100, time=0),
                  mido.Message("note_off", channel=9, note=key, velocity=0, time=480)]
    path = tmp_path / "groove.mid"
    mid.save(path)
    notes = kits.drum_notes(path)
    assert [n[2] for n in notes] == list(keys)
    for kit_id, source in kits.KITS.items():
        assert licences.commercial_ok(source.licence), kit_id
        player = kits.Player(kit_id)
        out = player.render(notes, 0.0, 4 * RATE)
        for i in range(len(keys)):  # each note sounds in the 50 ms after its onset
            onset = int(i * 0.5 * RATE)
            assert np.abs(out[:, onset:onset + RATE // 20]).max() > 1e-3, (kit_id, keys[i])


def test_kit_records_name_each_kit_its_licence_and_pin():
    rec = kits.record(["hydrogen-audiophob", "hydrogen-rumpf"])
    assert [r["licence"] for r in rec] == ["CC0-1.0", "CC-BY-3.0"]
    assert all(len(r["tree_sha256"]) == 64 and r["attribution"] for r in rec)

