"""Training data for the rights-clean separator (issue 16): rendering, manifest, licences, split,
augmentation. Renders two songs of two seconds (FluidSynth + the Csound GM bank and TimGM6mb)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from separation import train
from separation.training import arrange, data, freepats, rebuild, sonivox, synth, voice
from separation.training.augment import augment, recolour
from separation.training.compose import PPQ, STEMS, compose
from separation.training.licences import (
    ALLOWED_SOUNDFONTS,
    SoundfontRefused,
    commercial_ok,
    find_soundfont,
    resolve_soundfont,
)
from tests.conftest import need_fluidsynth

SECONDS = 2.0


_need = need_fluidsynth


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _need("csound-gm", "timgm6mb")
    out = tmp_path_factory.mktemp("train-a")
    assert data.main(["--out", str(out), "--songs", "2", "--seed", "11", "--seconds", str(SECONDS)]) == 0
    return out, json.loads((out / "manifest.json").read_bytes())


def test_stems_sum_to_the_mixture(built):
    out, manifest = built
    assert len(manifest["renders"]) == 2
    for render in manifest["renders"]:
        stems = {}
        for name in STEMS:
            audio, rate = sf.read(out / render["stems"][name]["path"], always_2d=True, dtype="float32")
            assert rate == 44100 and audio.shape == (int(SECONDS * 44100), 2)
            assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 1e-4, f"{render['song']} {name} is silent"
            stems[name] = audio.astype(np.float64)
        assert render["mixture"]["path"].endswith(".flac") and sf.info(out / render["mixture"]["path"]).subtype == "PCM_24"
        mix, _ = sf.read(out / render["mixture"]["path"], always_2d=True, dtype="float32")
        # 24-bit stems and their integer sum: exact, not merely close
        np.testing.assert_array_equal(sum(stems.values()), mix.astype(np.float64))
        assert 0.85 < np.abs(mix).max() <= 0.9 + 1e-6


def test_manifest_lists_every_file_with_its_hash(built):
    out, manifest = built
    listed = {f["path"]: f["sha256"] for s in manifest["sources"] for f in s["files"].values()}
    listed |= {f["path"]: f["sha256"] for r in manifest["renders"] for f in (*r["stems"].values(), r["mixture"])}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json", "manifest.sha256"}
    assert on_disk == set(listed)
    for path, digest in listed.items():
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == digest, path
    raw = (out / "manifest.json").read_bytes()
    assert (out / "manifest.sha256").read_text().split()[0] == hashlib.sha256(raw).hexdigest()
    assert raw == data.canonical(json.loads(raw))  # stored canonical (RFC 8785)
    for s in manifest["sources"]:
        assert s["licence"] == "LicenseRef-ClearStem-own-work" and s["commercial_use"] is True
    assert {s["id"]: s["sha256"] for s in manifest["soundfonts"]} == {
        "csound-gm": ALLOWED_SOUNDFONTS["sf_GMbank.sf2"].sha256, "timgm6mb": ALLOWED_SOUNDFONTS["TimGM6mb.sf2"].sha256}
    assert data.verify(out) == []
    # a changed stem is caught
    victim = out / manifest["renders"][0]["stems"]["bass"]["path"]
    original = victim.read_bytes()
    try:
        victim.write_bytes(original[:-4] + b"\0\0\0\1")
        assert data.verify(out) == [f"{manifest['renders'][0]['stems']['bass']['path']}: SHA-256 differs"]
    finally:
        victim.write_bytes(original)


def test_split_keeps_compositions_and_a_soundfont_out_of_training(built):
    _, manifest = built
    splits = manifest["splits"]
    assert splits["train"]["songs"] == ["song00000"] and splits["val"]["songs"] == ["song00001"]
    assert splits["train"]["soundfonts"] == ["csound-gm"] and splits["val"]["soundfonts"] == ["timgm6mb"]
    # GPL-2.0 bank: validation only, flagged; the weights' inputs stay commercial-clean
    assert splits["val"]["commercial_use"] is False
    assert splits["val"]["not_commercial_because"] == ["soundfont timgm6mb: GPL-2.0-only"]
    assert manifest["commercial_use"] is True
    assert manifest["weights_licence_inputs"] == ["LicenseRef-ClearStem-own-work", "LicenseRef-PublicDomain"]
    assert data.splits_for(10) == ["train"] * 7 + ["select"] + ["val"] * 2
    assert data.splits_for(1) == ["train"]


def test_same_seed_same_bytes_other_seed_other_songs(built, tmp_path):
    out, _ = built
    again = tmp_path / "again"
    data.build(again, 2, 11, SECONDS, log=lambda *_: None)
    assert (again / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()
    other = tmp_path / "other"
    m = data.build(other, 2, 12, SECONDS, log=lambda *_: None)
    assert m["sources"][0]["files"]["vocals"]["sha256"] != json.loads(
        (out / "manifest.json").read_bytes())["sources"][0]["files"]["vocals"]["sha256"]


def test_soundfont_allow_list(tmp_path):
    # unknown names are refused, whatever they are
    fake = tmp_path / "SomeOther_GM.sf2"
    fake.write_bytes(b"RIFF")
    with pytest.raises(SoundfontRefused, match="not on the soundfont allow-list"):
        resolve_soundfont(fake)
    # a symlink with an allowed name is judged by what it points to
    link = tmp_path / "TimGM6mb.sf2"
    os.symlink(fake, link)
    with pytest.raises(SoundfontRefused, match="SomeOther_GM.sf2: not on the soundfont allow-list"):
        resolve_soundfont(link)
    # an allowed name on a different file is refused by its hash
    renamed = tmp_path / "real" / "sf_GMbank.sf2"
    renamed.parent.mkdir()
    renamed.write_bytes(b"RIFF....sfbk")
    with pytest.raises(SoundfontRefused, match="is not the pinned"):
        resolve_soundfont(renamed)
    # MuseScore General (derived from the reserved bank) by name, also through a default-GM style link
    ms = tmp_path / "MuseScore_General_Lite.sf3"
    ms.write_bytes(b"RIFF")
    default = tmp_path / "default-GM.sf3"
    os.symlink(ms, default)
    with pytest.raises(SoundfontRefused, match="derived from the GM bank reserved"):
        resolve_soundfont(default)
    with pytest.raises(SoundfontRefused, match="unknown soundfont id"):
        find_soundfont("not-a-bank")


def test_commercial_use_logic(tmp_path):
    assert commercial_ok("LicenseRef-PublicDomain") and commercial_ok("MIT") and commercial_ok("CC0-1.0")
    assert not commercial_ok("GPL-2.0-only") and not commercial_ok("CC-BY-SA-4.0")
    assert not commercial_ok("LicenseRef-unstated") and not commercial_ok("Apache-2.0-but-unlisted")
    if not shutil.which("fluidsynth"):
        pytest.skip("fluidsynth is not installed")
    files = {}
    for name, entry in ALLOWED_SOUNDFONTS.items():
        (tmp_path / name).write_bytes(b"x")
        files[entry.id] = (tmp_path / name, entry)

    def manifest(train_banks, val_bank, source_licence="LicenseRef-ClearStem-own-work", select=False):
        own = "LicenseRef-ClearStem-own-work"
        sources = [{"id": "a", "split": "train", "licences": [source_licence]}, {"id": "b", "split": "val", "licences": [own]}]
        renders = [{"song": "a", "split": "train", "soundfont": b} for b in train_banks]
        renders += [{"song": "b", "split": "val", "soundfont": val_bank}]
        if select:
            sources.append({"id": "c", "split": "select", "licences": [own]})
            renders.append({"song": "c", "split": "select", "soundfont": select})
        banks = {b: files[b] for b in {*train_banks, val_bank, *([select] if select else [])}}
        return data.make_manifest(sources, renders, banks, train_banks, val_bank, seed=0, songs=2, seconds=1, rate=44100)

    assert manifest(["csound-gm"], "timgm6mb")["commercial_use"] is True
    m = manifest(["csound-gm", "opl3-fm"], "timgm6mb")
    assert m["commercial_use"] is False
    assert m["splits"]["train"]["not_commercial_because"] == ["soundfont opl3-fm: CC-BY-SA-4.0"]
    assert manifest(["timgm6mb"], "csound-gm")["commercial_use"] is False
    assert manifest(["csound-gm"], "timgm6mb", source_licence="LicenseRef-unstated")["commercial_use"] is False
    # checkpoint selection shapes the weights too: a GPL bank there makes them non-commercial
    assert manifest(["csound-gm"], "opl3-fm", select="timgm6mb")["commercial_use"] is False


def test_builder_refuses_a_noncommercial_training_bank_unless_told(tmp_path):
    _need("csound-gm", "timgm6mb")
    with pytest.raises(ValueError, match="not commercial-clean"):
        data.build(tmp_path / "x", 2, 0, 1.0, train_banks=("timgm6mb",), val_bank="csound-gm")
    assert not (tmp_path / "x").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="must not be a training soundfont"):
        data.build(tmp_path / "y", 2, 0, 1.0, train_banks=("csound-gm",), val_bank="csound-gm")


def test_composer_covers_styles_and_stem_roles():
    styles = {compose(s, 20.0).style for s in range(60)}
    assert len(styles) == 8
    c = compose(5, 10.0, "swing")
    assert [p.channel for p in c.stems["drums"]] == [9]
    assert all(32 <= p.program <= 39 for p in c.stems["bass"])
    assert all(p.program in (52, 53, 54, 85) for p in c.stems["vocals"])
    assert all(p.channel != 9 and not 32 <= p.program <= 39 and p.program not in (52, 53, 54, 85)
               for p in c.stems["other"])


def _starts_in(part, sections, bar_t, kinds):
    """Notes of `part` that start inside a section of one of these kinds, past its last beat's
    pickup into the next section."""
    out = []
    for tick, _, _, _ in part.notes:
        kind, _, end = next(((k, s, e) for k, s, e in sections if s * bar_t <= tick < e * bar_t), (None, 0, 0))
        if kind in kinds and tick < end * bar_t - PPQ:
            out.append(tick)
    return out


def test_second_composer_writes_forms_meters_and_leads_that_are_not_vocals():
    """`arrange` is another composer, not `compose` with other numbers: a form the excerpt enters
    anywhere, with the voice resting in instrumental sections and a melody instrument in *other*
    there; many grooves and meters; the same stem roles; the same seed the same MIDI."""
    songs = [arrange.arrange(seed, 30.0) for seed in range(60)]
    assert len({c.style for c in songs}) >= 12 and {c.meter for c in songs} >= {3, 4, 5, 6, 7}
    rests = leads = 0
    for c in songs:
        bar_t = c.meter * PPQ
        assert c.form and c.describe()["form"] == [list(s) for s in c.form]
        assert {k for k, _, _ in c.form} <= set(arrange.SECTIONS)
        assert [p.channel for p in c.stems["drums"]] == [9]
        assert all(32 <= p.program <= 39 for p in c.stems["bass"])
        assert all(p.program in (52, 53, 54, 85) for p in c.stems["vocals"]) and c.stems["vocals"][0].notes
        assert all(p.channel != 9 and not 32 <= p.program <= 39 and p.program not in (52, 53, 54, 85)
                   for p in c.stems["other"])
        quiet = ("intro", "break", "breakdown", "outro")
        assert _starts_in(c.stems["vocals"][0], c.form, bar_t, quiet) == [], c.describe()
        if any(k in quiet and e - s >= 2 for k, s, e in c.form):
            rests += 1
            if any(_starts_in(p, c.form, bar_t, quiet) for p in c.stems["other"] if p.channel == arrange.LEAD_CHANNEL):
                leads += 1
        assert not _starts_in(c.stems["drums"][0], c.form, bar_t, ("breakdown",))
    assert rests >= 30 and leads >= rests // 3, (rests, leads)
    # the spans a bench checks the vocals stem's silence in: exactly the sections that rest the voice
    c = next(c for c in songs if any(k in arrange.VOICE_RESTS for k, _, _ in c.form))
    bar = c.meter * 60 / c.describe()["bpm"] * 44100  # as the manifest records it
    spans = arrange.voice_rest_spans(c.describe(), 30 * 44100, 44100)
    assert spans == [(int(s * bar), min(int(e * bar), 30 * 44100)) for k, s, e in c.form
                     if k in arrange.VOICE_RESTS and int(s * bar) < 30 * 44100]
    assert arrange.voice_rest_spans(compose(7, 10.0).describe(), 10 * 44100, 44100) == []
    assert arrange.arrange(7, 10.0).midi("vocals").tracks[1] == arrange.arrange(7, 10.0).midi("vocals").tracks[1]
    assert arrange.arrange(7, 10.0).describe() != compose(7, 10.0).describe()


def _set_with_more_songs(built, tmp_path, kind: str, n: int):
    """The 2-song seed-11 set plus n songs by another composer (`--<kind>-songs n`): the manifest
    records the option, the first composer's songs are untouched. Returns (dir, manifest, added)."""
    _need("csound-gm", "timgm6mb")
    out = tmp_path / "set"
    assert data.main(["--out", str(out), "--songs", "2", "--seed", "11", "--seconds", str(SECONDS),
                      f"--{kind}-songs", str(n)]) == 0
    m = json.loads((out / "manifest.json").read_bytes())
    assert m["generator"][f"{kind}_songs"] == n and f"{kind}_songs" not in built[1]["generator"]
    assert m["sources"][:2] == built[1]["sources"]
    return out, m, m["sources"][2:]


def _refuses_a_negative_count(tmp_path, kind: str) -> None:
    with pytest.raises(SystemExit, match=f"refused: --{kind}-songs must be 0 or more"):
        data.main(["--out", str(tmp_path / "bad"), "--songs", "2", "--seed", "11", f"--{kind}-songs", "-1"])
    assert not (tmp_path / "bad").exists()


def test_a_set_with_arranged_songs_names_their_composer_and_splits_them_too(built, tmp_path):
    """--arranged-songs appends songs by the second composer after the first's, with their own
    split; a set built without them has the same manifest as before the option existed."""
    out, m, second = _set_with_more_songs(built, tmp_path, "arranged", 2)
    assert [s["split"] for s in second] == ["train", "val"]
    assert all(s["origin"].startswith("separation.training.arrange.arrange(") and s["composition"]["form"]
               and s["composition"]["style"].startswith("arrange:") for s in second)
    assert all(r["soundfont"] == ("timgm6mb" if r["split"] == "val" else "csound-gm") for r in m["renders"])
    assert m["commercial_use"] is True and data.verify(out) == []
    _refuses_a_negative_count(tmp_path, "arranged")


def test_one_gain_per_song_peaks_the_mixture_and_never_clips_a_stem_of_a_song_whose_stems_cancel(tmp_path):
    t = np.linspace(0, 1, 4410)
    tone = np.stack([np.sin(2 * np.pi * 55 * t)] * 2)
    plain = {"bass": tone, "other": 0.5 * tone}
    assert data.song_gain(plain) * 1.5 == pytest.approx(data.PEAK)  # the mixture at PEAK, as always
    cancelling = {"bass": tone, "other": -0.95 * tone}  # the sum is 0.05 of the bass
    gain = data.song_gain(cancelling)
    assert gain == pytest.approx(data.PEAK)  # the loudest stem at PEAK, not the mixture
    for name, stem in cancelling.items():
        data.write_audio(tmp_path / f"{name}.flac", stem * gain, 44100, "flac24")  # stored, no clip
    with pytest.raises(ValueError, match="outside the 24-bit range"):  # what the old gain would have written
        data.write_audio(tmp_path / "old.flac", cancelling["bass"] * data.PEAK / 0.05, 44100, "flac24")


def test_augmentation_is_seeded_and_additive():
    rng = np.random.default_rng(0)
    n = 44100
    stems = {k: (rng.standard_normal((2, n)) * 0.1).astype(np.float32) for k in STEMS}
    pool = [{k: (rng.standard_normal((2, n // 3)) * 0.1).astype(np.float32) for k in STEMS} for _ in range(3)]
    a, mix_a, pa = augment(stems, np.random.default_rng(42), pool=pool, p_swap=0.5)
    b, mix_b, pb = augment(stems, np.random.default_rng(42), pool=pool, p_swap=0.5)
    c, _, pc = augment(stems, np.random.default_rng(43), pool=pool, p_swap=0.5)
    assert pa == pb and all(np.array_equal(a[k], b[k]) for k in STEMS) and np.array_equal(mix_a, mix_b)
    assert pa != pc and not np.array_equal(a["bass"], c["bass"])
    assert all(a[k].shape == (2, n) and a[k].dtype == np.float32 for k in STEMS)
    np.testing.assert_allclose(sum(a[k].astype(np.float64) for k in STEMS), mix_a, atol=1e-6)
    assert 10 ** (-6 / 20) - 1e-6 <= np.abs(mix_a).max() <= 10 ** (-0.5 / 20) + 1e-6
    assert any("swapped_from" in s for s in pa["stems"].values())
    assert {"eq", "compressor", "placement", "gain_db", "reverb_send"} <= set(pa["stems"]["vocals"])


def test_timbre_recolours_stems_only_when_asked_and_keeps_the_mixture_their_sum():
    """`timbre` = 0 draws nothing (older runs make the same examples); at 1 every stem is
    recoloured, seeded, the mixture still their sum; `recolour` really transposes."""
    rng = np.random.default_rng(1)
    n = 44100
    stems = {k: (rng.standard_normal((2, n)) * 0.1).astype(np.float32) for k in STEMS}
    plain, mix_plain, p_plain = augment(stems, np.random.default_rng(9))
    zero, mix_zero, p_zero = augment(stems, np.random.default_rng(9), timbre=0.0)
    assert p_plain == p_zero and np.array_equal(mix_plain, mix_zero)
    a, mix_a, pa = augment(stems, np.random.default_rng(9), timbre=1.0)
    b, _, pb = augment(stems, np.random.default_rng(9), timbre=1.0)
    assert pa == pb and all(np.array_equal(a[k], b[k]) for k in STEMS)
    assert all(-3 <= pa["stems"][k]["timbre"]["semitones"] <= 3 and len(pa["stems"][k]["timbre"]["resonances"]) == 3
               for k in STEMS)
    assert all(a[k].shape == (2, n) and np.isfinite(a[k]).all() for k in STEMS)
    np.testing.assert_allclose(sum(a[k].astype(np.float64) for k in STEMS), mix_a, atol=1e-6)
    assert not np.array_equal(mix_a, mix_plain)
    # a 220 Hz tone comes out at 220 Hz · 2^(semitones / 12), the length unchanged
    t = np.arange(2 * n) / 44100
    tone = np.stack([np.sin(2 * np.pi * 220 * t)] * 2) * 0.3
    for seed in range(3):
        out, p = recolour(tone, 44100, np.random.default_rng(seed))
        spectrum = np.abs(np.fft.rfft(out[0] * np.hanning(out.shape[1])))
        heard = np.argmax(spectrum) * 44100 / out.shape[1]
        assert out.shape == tone.shape
        assert heard == pytest.approx(220 * 2 ** (p["semitones"] / 12), rel=0.012), (heard, p)


def test_espeak_vocals_sing_the_melody_in_tune_and_are_not_claimed_commercial(tmp_path):
    if not voice.available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    comp, sr = compose(7, 6.0), 44100
    n = 6 * sr
    sung, info = voice.sing(comp, n, np.random.default_rng(7), sr)
    assert sung.shape == (n,) and not info["voice"].startswith("mb")
    sec_per_tick, cents = 60 / comp.bpm / PPQ, []
    for tick, dur, pitch, _ in comp.stems["vocals"][0].notes:
        a, b = int(tick * sec_per_tick * sr), min(n, int((tick + dur) * sec_per_tick * sr))
        if b - a > 0.2 * sr:
            f0 = voice._f0(sung[a + sr // 20: b - sr // 20], sr)
            cents.append(1200 * np.log2(f0 / (440 * 2 ** ((pitch + info["transpose"] - 69) / 12))))
    assert len(cents) >= 4 and max(abs(c) for c in cents) < 35, cents
    _need("csound-gm", "timgm6mb")
    with pytest.raises(ValueError, match="espeak-ng vocals are not claimed commercial-clean"):
        data.build(tmp_path / "x", 2, 0, 1.0, espeak_vocals=0.5)


def _render_every_stem(tmp_path, render, comp, n: int) -> dict:
    """Each stem of `comp` rendered by `render(midi_path)`: the right shape, audible, and the
    same samples when rendered again."""
    audio = {}
    for stem in STEMS:
        path = tmp_path / f"{stem}.mid"
        comp.midi(stem).save(path)
        audio[stem] = render(path)
        assert audio[stem].shape == (2, n) and audio[stem].dtype == np.float32 and np.isfinite(audio[stem]).all()
        assert np.sqrt(np.mean(audio[stem].astype(np.float64) ** 2)) > 1e-3, f"{stem} is silent"
        np.testing.assert_array_equal(audio[stem], render(path))
    return audio


def _centroid(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x.mean(axis=0))) ** 2
    return float((spec * np.fft.rfftfreq(x.shape[1], 1 / sr)).sum() / spec.sum())


def test_own_synth_bank_renders_every_stem_seeded_and_in_tune(tmp_path):
    """`clearstem-synth` (our own instruments): the same MIDI sources as a soundfont, every stem
    audible, the same seed the same samples, the voice sung at the written pitch, the bass below
    the accompaniment."""
    comp, sr = compose(7, 6.0), 44100
    n = 6 * sr
    audio = _render_every_stem(tmp_path, lambda path: synth.render_midi(path, n, sr, seed=3), comp, n)
    assert not np.array_equal(audio["other"], synth.render_midi(tmp_path / "other.mid", n, sr, seed=4))
    assert _centroid(audio["bass"], sr) < _centroid(audio["other"], sr)
    voice_track = audio["vocals"].mean(axis=0)
    sec_per_tick, cents = 60 / comp.bpm / PPQ, []
    for tick, dur, pitch, _ in comp.stems["vocals"][0].notes:
        a, b = int(tick * sec_per_tick * sr), min(n, int((tick + dur) * sec_per_tick * sr))
        if b - a > 0.25 * sr:  # past the glide from the previous note
            x = voice_track[a + sr // 8: b - sr // 20].astype(np.float64)
            # the strongest partial within two semitones of the written fundamental (vibrato
            # broadens autocorrelation peaks, so a spectral peak reads the pitch more truly)
            spec = np.abs(np.fft.rfft(x * np.hanning(x.size), 8 * x.size))
            freqs = np.fft.rfftfreq(8 * x.size, 1 / sr)
            written = 440 * 2 ** ((pitch - 69) / 12)
            near = (freqs > written * 2 ** (-2 / 12)) & (freqs < written * 2 ** (2 / 12))
            cents.append(1200 * np.log2(freqs[near][spec[near].argmax()] / written))
    assert len(cents) >= 3 and np.median(np.abs(cents)) < 35, cents


def _set_with_bank(tmp_path, bank_id: str):
    """A two-song set trained on Csound GM and `bank_id`: (its manifest, the bank's entry, its folder)."""
    _need("csound-gm", "timgm6mb")
    out = tmp_path / "set"
    m = data.build(out, 2, 11, 1.0, train_banks=("csound-gm", bank_id), log=lambda *_: None)
    return m, next(s for s in m["soundfonts"] if s["id"] == bank_id), out


def test_a_set_rendered_with_the_own_bank_pins_it_and_stays_commercial_clean(tmp_path):
    m, bank, out = _set_with_bank(tmp_path, synth.BANK_ID)
    assert bank["licence"] == "LicenseRef-ClearStem-own-work" and bank["commercial_use"] is True
    assert bank["sha256"] == synth.source_sha256() == m["render"]["synth"]["sha256"]
    assert bank["splits"] == ["train"] and m["splits"]["train"]["soundfonts"] == ["clearstem-synth", "csound-gm"]
    assert sorted(r["soundfont"] for r in m["renders"] if r["split"] == "train") == ["clearstem-synth", "csound-gm"]
    assert m["commercial_use"] is True and data.verify(out) == []


def _need_sonivox():
    if sonivox.library_path() is None:
        pytest.skip(f"{sonivox.LIBRARY} is not installed (apt-get install libsonivox3)")


def test_sonivox_bank_renders_every_stem_the_same_each_time_and_band_limited(tmp_path):
    """The second sampled GM bank: every stem audible, repeatable, at the set's rate, and —
    as its docstring says — nothing above EAS's 11 kHz Nyquist, the bass below the accompaniment."""
    _need_sonivox()
    comp, sr = compose(7, 6.0), 44100
    n = 6 * sr
    audio = _render_every_stem(tmp_path, lambda path: sonivox.render_midi(path, n, sr), comp, n)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    for stem, x in audio.items():
        spec = np.abs(np.fft.rfft(x.astype(np.float64).mean(axis=0))) ** 2
        assert spec[freqs > 11_100].sum() < 1e-4 * spec.sum(), stem  # under -40 dB: resampling's filter
    assert _centroid(audio["bass"], sr) < _centroid(audio["other"], sr)
    with pytest.raises(sonivox.SonivoxError):
        (tmp_path / "broken.mid").write_bytes(b"MThd not a midi file")
        sonivox.render_midi(tmp_path / "broken.mid", n, sr)


def test_a_set_rendered_with_sonivox_pins_its_library_and_stays_commercial_clean(tmp_path):
    _need_sonivox()
    m, bank, out = _set_with_bank(tmp_path, sonivox.BANK_ID)
    assert bank["licence"] == "Apache-2.0" and bank["commercial_use"] is True and bank["sha256"] == sonivox.SHA256
    assert bank["splits"] == ["train"] and m["splits"]["train"]["soundfonts"] == ["csound-gm", "sonivox-eas"]
    assert sorted(r["soundfont"] for r in m["renders"] if r["split"] == "train") == ["csound-gm", "sonivox-eas"]
    assert m["commercial_use"] is True and data.verify(out) == []


def _need_freepats():
    if not freepats.available():
        pytest.skip("FreePats or TiMidity++ is not installed (apt-get install freepats timidity)")


def test_freepats_maps_every_gm_program_and_keeps_the_stems_meaning():
    """FreePats lacks 56 GM programs: each plays a present patch, a voice program always the one
    voice, an instrument never a voice (the vocals stem would otherwise hold what GM calls *other*)."""
    _need_freepats()
    present = freepats._present("Tone_000")
    programs = freepats.program_map(present)
    assert sorted(programs) == list(range(128)) and set(programs.values()) <= set(present)
    assert all(programs[p] == p for p in present)
    assert all(programs[p] == freepats.VOICE_PATCH for p in freepats.VOICE_PROGRAMS)
    assert not any(programs[p] in freepats.VOICE_PROGRAMS for p in range(128) if p not in freepats.VOICE_PROGRAMS)
    missing = [p for p in range(128) if p not in present and p not in freepats.VOICE_PROGRAMS]
    assert missing and all(programs[p] // 8 == p // 8 for p in missing)  # Debian's set has every family
    drums = freepats.drum_map()
    assert sorted(drums) == list(freepats.GM_PERCUSSION) and set(drums.values()) <= set(freepats._present("Drum_000"))
    with pytest.raises(freepats.FreePatsError):  # not FreePats without its voice
        freepats.program_map({p: f"Tone_000/{p:03d}.pat" for p in present if p != freepats.VOICE_PATCH})


def test_freepats_bank_renders_every_stem_the_same_each_time(tmp_path):
    _need_freepats()
    comp, sr = compose(7, 6.0), 44100
    n = 6 * sr
    audio = _render_every_stem(tmp_path, lambda path: freepats.render_midi(path, n, sr), comp, n)
    assert _centroid(audio["bass"], sr) < _centroid(audio["other"], sr)
    (tmp_path / "broken.mid").write_bytes(b"MThd not a midi file")
    with pytest.raises(freepats.FreePatsError):
        freepats.render_midi(tmp_path / "broken.mid", n, sr)


def test_freepats_tree_digest_moves_with_any_patch(tmp_path):
    """The pin covers every file of the tree: a changed byte or a renamed patch is another bank."""
    _need_freepats()
    assert freepats.tree_sha256() == freepats.TREE_SHA256
    copy = tmp_path / "freepats"
    shutil.copytree(freepats.PATCH_DIR, copy)
    assert freepats.tree_sha256(copy) == freepats.TREE_SHA256
    patch = copy / "Tone_000" / "053_Voice_Oohs.pat"
    raw = bytearray(patch.read_bytes())
    raw[-1] ^= 1
    patch.write_bytes(bytes(raw))
    changed = freepats.tree_sha256(copy)
    patch.rename(copy / "Tone_000" / "052_Voice_Oohs.pat")
    assert len({changed, freepats.tree_sha256(copy), freepats.TREE_SHA256}) == 3


def test_a_set_rendered_with_freepats_pins_it_and_stays_commercial_clean(tmp_path):
    _need_freepats()
    m, bank, out = _set_with_bank(tmp_path, freepats.BANK_ID)
    assert bank["licence"] == freepats.LICENCE and bank["commercial_use"] is True
    assert bank["sha256"] == freepats.TREE_SHA256 and bank["splits"] == ["train"]
    assert sorted(r["soundfont"] for r in m["renders"] if r["split"] == "train") == ["csound-gm", "freepats"]
    played = m["render"]["freepats"]
    assert played["player"].startswith("TiMidity++") and played["programs_mapped"]["52"] == freepats.VOICE_PATCH
    assert m["commercial_use"] is True and data.verify(out) == []
    with pytest.raises(ValueError, match="val-effects"):  # TiMidity renders have no FluidSynth effects
        data.build(tmp_path / "wet", 2, 11, 1.0, val_bank=freepats.BANK_ID, val_effects=True, log=lambda *_: None)
    # renders are reused only from a set whose player, flags and map were these: the patches alone
    # do not make a render (a recorded player changed by hand stands for another TiMidity++)
    other = json.loads((out / "manifest.json").read_bytes())
    other["render"]["freepats"]["player"] = "TiMidity++ version 9.9"
    (out / "manifest.json").write_bytes(data.canonical(other))
    again = data.build(tmp_path / "again", 2, 11, 1.0, train_banks=("csound-gm", freepats.BANK_ID),
                       reuse=out, log=lambda *_: None)
    linked = {r["soundfont"]: (tmp_path / "again" / r["mixture"]["path"]).stat().st_ino ==
              (out / r["mixture"]["path"]).stat().st_ino for r in again["renders"] if r["split"] == "train"}
    assert linked == {"csound-gm": True, "freepats": False}
    with pytest.raises(rebuild.RebuildRefused, match="FreePats renders were made by TiMidity"):
        rebuild.resolve(rebuild.plan(other, "-"), other, {}, [])


def _need_flite():
    if not voice.available("flite"):
        pytest.skip("flite is not installed (apt-get install flite)")


def test_flite_voices_sing_the_melody_in_tune_and_are_pinned(tmp_path):
    """Each Flite voice used sings the notes at their pitch (a flat contour asked for, resampled
    to the exact pitch), and what was used names the voice's library by its SHA-256."""
    _need_flite()
    sr, cents = 44100, {}
    for seed in range(60):  # until every voice has sung enough notes
        if len(cents) == len(voice.FLITE_VOICES) and min(map(len, cents.values())) >= 12:
            break
        comp = compose(300 + seed, 6.0)
        n = 6 * sr
        sung, info = voice.sing(comp, n, np.random.default_rng(seed), sr, engine="flite")
        assert sung.shape == (n,) and np.isfinite(sung).all() and np.sqrt(np.mean(sung ** 2)) > 1e-3
        lib = info["voice_library"]
        assert lib["file"].startswith(f"libflite_cmu_us_{info['voice']}.so") and len(lib["sha256"]) == 64
        assert info["engine"].startswith("flite-")
        sec_per_tick = 60 / comp.bpm / PPQ
        for tick, dur, pitch, _ in comp.stems["vocals"][0].notes:
            a, b = int(tick * sec_per_tick * sr), min(n, int((tick + dur) * sec_per_tick * sr))
            if b - a > 0.2 * sr:
                f0 = voice._f0(sung[a + sr // 20: b - sr // 20], sr, min_corr=0.5)
                want = 440 * 2 ** ((pitch + info["transpose"] - 69) / 12)
                cents.setdefault(info["voice"], []).append(1200 * np.log2(f0 / want) if f0 > 0 else np.inf)
    assert set(cents) == set(voice.FLITE_VOICES)
    for name, c in cents.items():  # a glide or a note of consonants can throw one reading; most are in tune
        c = np.abs(np.array(c))
        assert len(c) >= 12 and np.median(c) < 30 and np.mean(c < 50) >= 0.85, (name, np.round(c))


def test_a_set_with_flite_vocals_stays_commercial_clean_and_says_what_sang(tmp_path):
    _need("csound-gm", "timgm6mb")
    _need_flite()
    out = tmp_path / "set"
    assert data.main(["--out", str(out), "--songs", "2", "--seed", "11", "--seconds", "1",
                      "--flite-vocals", "1"]) == 0
    m = json.loads((out / "manifest.json").read_bytes())
    assert all(s["vocals"]["kind"] == voice.FLITE_KIND and "LicenseRef-CMU-Flite" in s["licences"]
               and s["commercial_use"] for s in m["sources"])
    assert m["commercial_use"] is True and "Flite's CMU voices" in m["stems"]["vocals"]
    assert data.verify(out) == []
    # the share is recorded, so `separation.training.rebuild` can replay it
    assert m["generator"]["flite_vocals"] == 1 and "espeak_vocals" not in m["generator"]
    (part,) = rebuild.plan(m, "-")
    assert part.kwargs["flite_vocals"] == 1
    m["_sha256"] = (out / "manifest.sha256").read_text().split()[0]
    statement, licence = train.training_statement(m)
    assert "Flite CMU voices" in statement and "no recording of a voice" in statement
    assert "no human voice" not in statement and "LicenseRef-CMU-Flite" in licence
    for bad in (["--flite-vocals", "1.5"], ["--flite-vocals", "0.6", "--espeak-vocals", "0.6"],
                ["--flite-vocals", "-0.1"]):
        with pytest.raises(SystemExit, match="refused: .*fractions of the songs"):
            data.main(["--out", str(tmp_path / "bad"), "--songs", "2", "--seed", "11", *bad])
        assert not (tmp_path / "bad").exists()


def test_third_composer_writes_ensembles_that_songs_never_hold():
    """`orchestrate` is a third set of habits: pieces with no voice or no kit (silent stems), choirs
    in chords, instrumental tunes and low lines in *other*, hand and orchestral percussion, pitch
    bends and expression, and a tempo that breathes; the same stem roles; the same seed the same MIDI."""
    import mido

    from separation.training import orchestrate as orch

    pieces = [orch.orchestrate(seed, 30.0) for seed in range(80)]
    assert {c.style for c in pieces} == {f"orchestrate:{t}" for t in orch.TEXTURES}
    assert {c.meter for c in pieces} >= {2, 3, 4} and len({c.meter for c in pieces}) >= 5
    sounding = {s: sum(any(p.notes for p in c.stems[s]) for c in pieces) for s in STEMS}
    assert 10 <= 80 - sounding["vocals"] <= 45 and 15 <= 80 - sounding["drums"] <= 60, sounding
    assert sounding["other"] == 80 and sounding["bass"] < 80
    assert sum(sum(bool(p.notes) for p in c.stems["vocals"]) >= 2 for c in pieces) >= 8  # choirs
    keys = {n[2] for c in pieces for n in c.stems["drums"][0].notes}
    assert keys & {orch.CONGA_H, orch.BONGO_H, orch.AGOGO_H, orch.TRIANGLE, orch.TIMBALE_H}
    low = sum(any(n[2] < 48 for p in c.stems["other"] for n in p.notes) for c in pieces)
    assert low >= 20, low  # the bass register is not the bass stem's alone
    for c in pieces:
        assert [p.channel for p in c.stems["drums"]] == [9]
        assert all(32 <= p.program <= 39 for p in c.stems["bass"])
        assert all(p.program in (52, 53, 54, 85) for p in c.stems["vocals"])
        others = c.stems["other"]
        assert all(p.channel != 9 and not 32 <= p.program <= 39 and p.program not in (52, 53, 54, 85) for p in others)
        assert len({p.channel for p in others}) == len(others) >= 3
        assert all(0 <= n[2] <= 127 and 1 <= n[3] <= 127 and n[1] > 0 for ps in c.stems.values() for p in ps for n in p.notes)
    bent = next(c for c in pieces if any(p.controls for ps in c.stems.values() for p in ps))
    kinds = {m.type for s in STEMS for t in bent.midi(s).tracks for m in t}
    assert "pitchwheel" in kinds or "control_change" in kinds
    # rubato: a pad's chord onsets (not humanised) are not evenly spaced in a piece that breathes
    chamber = next(c for c in pieces if c.style == "orchestrate:chamber" and any(
        p.controls and p.notes for p in c.stems["other"]))
    pad = next(p for p in chamber.stems["other"] if p.controls and p.notes)
    onsets = sorted({t for t, _, _, _ in pad.notes})
    gaps = np.diff(onsets)
    assert gaps.max() / gaps.min() > 1.05
    assert orch.orchestrate(7, 10.0).midi("other").tracks[1] == orch.orchestrate(7, 10.0).midi("other").tracks[1]
    assert orch.orchestrate(7, 10.0).describe() != arrange.arrange(7, 10.0).describe() != compose(7, 10.0).describe()
    assert isinstance(mido.MidiFile, type)


def test_a_set_with_orchestrated_pieces_names_their_composer_and_says_when_nobody_sings(built, tmp_path):
    """--orchestrated-songs appends the third composer's pieces after the others, split the same
    way; a piece with no voice says so in its source; the two earlier composers' songs are untouched."""
    # seed 11: among the six pieces, some with no voice (checked below)
    out, m, third = _set_with_more_songs(built, tmp_path, "orchestrated", 6)
    assert [s["split"] for s in third] == ["train"] * 5 + ["val"]
    assert all(s["origin"].startswith("separation.training.orchestrate.orchestrate(")
               and s["composition"]["style"].startswith("orchestrate:") for s in third)
    renders = {r["song"]: r for r in m["renders"]}
    quiet = [s["vocals"]["kind"].startswith("silent") for s in third]
    assert 0 < sum(quiet) < 6  # (a sung piece's voice may also not have started within these 2 s)
    assert all(renders[s["id"]]["stems"]["vocals"]["rms_dbfs"] < -150 for s, q in zip(third, quiet) if q)
    assert m["commercial_use"] is True and data.verify(out) == []
    _refuses_a_negative_count(tmp_path, "orchestrated")


def test_orchestra_choirs_put_a_choir_in_the_asked_share_of_pieces_and_nothing_else_changes(built, tmp_path):
    """--orchestra-choirs F: that share of the orchestrated pieces (one draw each) have a choir in
    the vocals stem, their origin says so and the manifest records F; without it the pieces are
    the ones the seed always wrote. A share outside 0..1, or without orchestrated pieces, is refused."""
    from separation.training import orchestrate as orch

    plain = orch.orchestrate(5, 10.0)
    assert orch.orchestrate(5, 10.0, vocals=None).describe() == plain.describe()
    for mode in orch.VOCAL_MODES:
        sung = sum(bool(p.notes) for p in orch.orchestrate(5, 10.0, vocals=mode).stems["vocals"])
        assert (sung >= 2) if "choir" in mode else (sung == 1) if mode == "melody" else (sung == 0), (mode, sung)
    with pytest.raises(ValueError, match="vocals must be one of"):
        orch.orchestrate(5, 10.0, vocals="duet")

    _need("csound-gm", "timgm6mb")
    out = tmp_path / "choirs"
    assert data.main(["--out", str(out), "--songs", "2", "--seed", "11", "--seconds", str(SECONDS),
                      "--orchestrated-songs", "6", "--orchestra-choirs", "1"]) == 0
    m = json.loads((out / "manifest.json").read_bytes())
    third = m["sources"][2:]
    assert m["generator"]["orchestra_choirs"] == 1 and m["sources"][:2] == built[1]["sources"]
    assert all(s["origin"].endswith(", vocals='choir')") for s in third)
    kinds = [s["vocals"]["kind"] for s in third]  # a 2 s excerpt may fall in a section the choir rests
    assert sum(k.startswith("GM voice programs as a choir") for k in kinds) >= 4
    assert all(k.startswith(("GM voice programs as a choir", "silent")) for k in kinds), kinds
    assert m["commercial_use"] is True and data.verify(out) == []
    plain_set, _, plain_third = _set_with_more_songs(built, tmp_path, "orchestrated", 6)
    assert "orchestra_choirs" not in json.loads((plain_set / "manifest.json").read_bytes())["generator"]
    assert not any("vocals=" in s["origin"] for s in plain_third)
    for bad, why in ((["--orchestrated-songs", "2", "--orchestra-choirs", "1.5"], "is a fraction"),
                     (["--orchestra-choirs", "0.5"], "needs --orchestrated-songs"),
                     (["--orchestrated-songs", "2", "--orchestra-choirs", "1", "--orchestra-choir-tunes", "-0.1"],
                      "is a fraction"),
                     (["--orchestrated-songs", "2", "--orchestra-choir-tunes", "0.5"], "needs --orchestra-choirs")):
        with pytest.raises(SystemExit, match=f"refused: .*{why}"):
            data.main(["--out", str(tmp_path / "bad"), "--songs", "2", "--seed", "11", *bad])
        assert not (tmp_path / "bad").exists()


def test_a_choir_tune_is_sung_by_the_top_voice_over_the_choirs_chords_and_is_recorded(built, tmp_path):
    """vocals="choir_tune": the choir's top voice sings the tune (the melody a plain choir piece
    gives an instrument in *other*), the others chords below it; an instrument doubles it in
    some pieces only, as over a solo singer. --orchestra-choir-tunes F: that share of the forced
    choirs (a second draw each) sing the tune, the origin and the manifest say so, and the plain
    choirs are the pieces --orchestra-choirs alone writes."""
    from separation.training import orchestrate as orch

    doubled = 0
    for seed in range(12):
        piece = orch.orchestrate(seed, 20.0, vocals="choir_tune")
        top, *below = piece.stems["vocals"]
        melody = top.notes
        if not melody:  # every section of this excerpt one the choir rests in
            assert not any(p.notes for p in below)
            continue
        assert all(n[2] < min(m[2] for m in melody) for p in below for n in p.notes)  # below the tune
        assert all(p.program in orch.VOICE_PROGRAMS for p in piece.stems["vocals"])
        plain = orch.orchestrate(seed, 20.0, vocals="choir")  # the same piece's plain choir ...
        lead = plain.stems["other"][0]  # ... leaves the tune to an instrument, all through
        assert lead.program in orch.TEXTURES[plain.style.split(":")[1]]["leads"]
        sung, played = iter(n[2] % 12 for n in melody), (n[2] % 12 for n in lead.notes)
        want = next(sung, None)
        for pc in played:  # the sung tune is the played one, less the sections the choir rests
            want = next(sung, None) if pc == want else want
        assert want is None
        doubled += {n[2] % 12 for n in piece.stems["other"][0].notes} <= {n[2] % 12 for n in melody}
    assert 0 < doubled < 12  # the instrument doubles the sung tune in some pieces, not all

    _need("csound-gm", "timgm6mb")
    out, ref = tmp_path / "tunes", tmp_path / "choirs"
    common = ["--songs", "0", "--seed", "13", "--seconds", str(SECONDS), "--orchestrated-songs", "8",
              "--orchestra-choirs", "1"]
    assert data.main(["--out", str(out), *common, "--orchestra-choir-tunes", "0.5"]) == 0
    assert data.main(["--out", str(ref), *common]) == 0
    m, r = (json.loads((d / "manifest.json").read_bytes()) for d in (out, ref))
    assert m["generator"]["orchestra_choir_tunes"] == 0.5 and "orchestra_choir_tunes" not in r["generator"]
    tunes = [s["origin"].endswith(", vocals='choir_tune')") for s in m["sources"]]
    assert 0 < sum(tunes) < 8
    for s, t, plain in zip(m["sources"], tunes, r["sources"]):
        if t:
            assert s["vocals"]["kind"].startswith(("GM voice programs as a choir, its top voice on the tune",
                                                   "GM voice program on the melody", "silent"))
        else:
            assert s == plain
    assert data.verify(out) == []


def test_a_judging_set_renders_only_its_val_split_and_those_renders_are_a_full_builds(built, tmp_path):
    """--splits val: every song composed and listed, only the val songs rendered, each byte for
    byte what the full build wrote; the manifest says so, and training refuses such a set. An
    unknown or empty split list is refused before anything is written."""
    out, full = built
    part = tmp_path / "val-only"
    assert data.main(["--out", str(part), "--songs", "2", "--seed", "11", "--seconds", str(SECONDS),
                      "--splits", "val"]) == 0
    m = json.loads((part / "manifest.json").read_bytes())
    assert m["generator"]["rendered_splits"] == ["val"] and "rendered_splits" not in full["generator"]
    assert m["sources"] == full["sources"] and {r["split"] for r in m["renders"]} == {"val"}
    assert m["renders"] == [r for r in full["renders"] if r["split"] == "val"]
    for r in m["renders"]:
        for f in (*r["stems"].values(), r["mixture"]):
            assert (part / f["path"]).read_bytes() == (out / f["path"]).read_bytes()
    assert data.verify(part) == []
    with pytest.raises(SystemExit, match="the set has no 'train' renders"):
        train.main(["--data", str(part), "--out", str(tmp_path / "run"), "--steps", "1"])
    for bad in ("test", ","):
        with pytest.raises(SystemExit, match="refused: --splits names splits among train, select and val"):
            data.main(["--out", str(tmp_path / "bad"), "--songs", "2", "--seed", "11", "--splits", bad])
        assert not (tmp_path / "bad").exists()


def test_reused_renders_give_the_set_a_full_render_gives_and_a_changed_file_is_rendered_again(built, tmp_path):
    """--reuse-renders hard-links an earlier set's renders where nothing that shaped them differs:
    the grown set's manifest is byte-identical to rendering everything, the earlier files are
    linked, not copied; a render whose earlier file no longer hashes to its manifest is rendered
    again (never propagated), a directory without a manifest is refused, and rebuilding the
    earlier set leaves the grown one intact."""
    _need("csound-gm", "timgm6mb")
    out, m = built
    fresh, _, _ = _set_with_more_songs(built, tmp_path, "orchestrated", 2)
    earlier = tmp_path / "earlier"
    shutil.copytree(out, earlier)
    damaged = m["renders"][0]["stems"]["drums"]["path"]
    (earlier / damaged).write_bytes(b"not the render")
    grown = tmp_path / "grown"
    lines = []
    data.build(grown, 2, 11, SECONDS, orchestrated=2, reuse=earlier, log=lines.append)
    assert (grown / "manifest.json").read_bytes() == (fresh / "manifest.json").read_bytes()
    assert data.verify(grown) == []
    linked = m["renders"][1:]
    assert all(os.path.samefile(grown / f["path"], earlier / f["path"])
               for r in linked for f in (*r["stems"].values(), r["mixture"]))
    assert not os.path.samefile(grown / damaged, earlier / damaged)
    assert f"{len(linked)} of {len(m['renders']) + 2} renders linked from {earlier}, the rest rendered" in lines
    with pytest.raises(SystemExit, match="refused: --reuse-renders .*no readable manifest.json"):
        data.main(["--out", str(tmp_path / "bad"), "--songs", "2", "--seed", "11", "--reuse-renders", str(tmp_path)])
    assert not (tmp_path / "bad").exists()
    before = (grown / "manifest.json").read_bytes()
    with pytest.raises(SystemExit, match="refused: --reuse-renders .* is the set being built"):
        data.main(["--out", str(grown), "--songs", "2", "--seed", "11", "--reuse-renders", str(grown)])
    assert (grown / "manifest.json").read_bytes() == before and data.verify(grown) == []
    data.build(earlier, 2, 12, SECONDS, log=lambda *_: None)  # the earlier set rendered again, as other songs
    assert data.verify(grown) == [] and data.verify(earlier) == []  # linked files are replaced there, not rewritten


def test_a_val_split_rendered_with_fluidsynths_effects_says_so_and_shares_nothing_dry(built, tmp_path):
    """--val-effects: the val split is rendered with FluidSynth's reverb and chorus on (a plain
    `fluidsynth` command line's sound), recorded in the manifest; train renders are the dry ones an
    earlier set holds (linked), its dry val render is not; a bank FluidSynth does not render is refused."""
    _need("csound-gm", "timgm6mb")
    out, m = built
    wet = tmp_path / "wet"
    lines = []
    w = data.build(wet, 2, 11, SECONDS, val_effects=True, reuse=out, log=lines.append)
    assert w["render"]["val_flags"] == data.FLUIDSYNTH_EFFECTS_FLAGS and w["generator"]["val_effects"] is True
    assert w["render"]["flags"] == data.FLUIDSYNTH_FLAGS and "-R" not in data.FLUIDSYNTH_EFFECTS_FLAGS
    assert data.verify(wet) == []
    by_split = {r["split"]: r for r in w["renders"]}
    dry = {r["split"]: r for r in m["renders"]}
    train, val = by_split["train"], by_split["val"]
    assert os.path.samefile(wet / train["mixture"]["path"], out / dry["train"]["mixture"]["path"])
    assert not os.path.samefile(wet / val["mixture"]["path"], out / dry["val"]["mixture"]["path"])
    assert val["mixture"]["sha256"] != dry["val"]["mixture"]["sha256"]  # the effects are heard
    stems = [sf.read(wet / val["stems"][s]["path"], dtype="float64")[0] for s in data.STEMS]
    mix = sf.read(wet / val["mixture"]["path"], dtype="float64")[0]
    assert np.abs(sum(stems) - mix).max() < 1e-6  # still additive: each stem carries its own effects
    assert "1 of 2 renders linked" in " ".join(lines)
    with pytest.raises(ValueError, match="needs a soundfont"):
        data.build(tmp_path / "x", 2, 11, SECONDS, train_banks=("csound-gm",), val_bank=synth.BANK_ID,
                   val_effects=True, log=lambda *_: None)
    with pytest.raises(SystemExit, match="refused: --val-effects needs a soundfont"):
        data.main(["--out", str(tmp_path / "y"), "--songs", "2", "--seed", "11", "--val-soundfont", "clearstem-synth",
                   "--val-effects"])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
