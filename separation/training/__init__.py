"""Training data for a rights-clean separator (issue 16), with a manifest of every input's licence.

Where it lives: `separation.training`, a pure core inside the `separation` app (no Django, no
clearstem imports — `clearstem.synth` included: the composer here is its own). It sits beside
the engines it will feed (`python -m separation.train` comes next, and the registry's
`training_data`/`weights_licence`/`commercial_use` will be read from this package's manifest),
in the `fingerprint | separation` layer; a top-level `training/` package would sit outside the
import-linter's root packages and its contracts. FluidSynth is called as a program
(/usr/bin/fluidsynth), MIDI is written with mido.

Modules: `licences` (allow-lists of soundfonts and licences, the music21 corpus audit),
`compose` (procedural multi-style per-stem MIDI), `arrange` (a second composer: songs with a form —
sections, rests, instrumental leads — more grooves and meters), `orchestrate` (a third: ensemble pieces,
many with no voice or no kit, choirs, low lines in *other*, rubato), `lieder` (songs by other hands:
OpenScore Lieder's CC0 scores arranged into the four stems), `quartets` (OpenScore String Quartets'
CC0 scores: a singer may take the top line, a bass the bottom one), `scores` (what both corpora share:
MusicXML, death years, notes with dynamics, the split by composer), `data` (rendering, split, manifest, CLI),
`merge` (one set from rendered ones), `rebuild` (a set rendered again from its manifest alone, checked by hash),
`synth` (`clearstem-synth`: our own instrument bank, a second timbre family beside the soundfonts),
`voice` (opt-in espeak-ng sung syllables), `augment` (seeded training-time augmentation),
`arch_candidates` (three small architectures, timed below).

Debian packages it needs: fluidsynth, csound-soundfont, timgm6mb-soundfont; espeak-ng for
`--espeak-vocals`; opl3-soundfont only for the opt-in FM bank.

Model card — what the data is made of (default build):

* compositions: procedural, composed here (eight styles: rock, ballad, waltz, swing, house,
  funk, bossa, march; all keys; five modes; density, swing, melody model drawn per song) —
  licence `LicenseRef-ClearStem-own-work`; with `--arranged-songs M`, M more songs by `arrange`
  (fifteen grooves in 3/4 to 7/4, a form entered at a random point, the voice resting in
  instrumental sections where a sax, trumpet, flute, violin or synth lead carries the tune in
  *other*), same licence; with `--orchestrated-songs K`, K ensemble pieces by `orchestrate` (seven
  textures from chamber to 8-bit; a third with no voice, many with no kit), same licence; with
  `--lieder CHECKOUT --lieder-songs L`, L songs written by people: OpenScore Lieder's scores (CC0
  encodings of public-domain songs for voice and piano; each source names the score, its SHA-256,
  composer and death year), split by composer; with `--quartets CHECKOUT --quartet-songs Q`, Q excerpts
  of OpenScore String Quartets' scores (CC0 encodings of public-domain quartets), the same way. No other
  third-party music: music21's corpus
  states no licence for most encodings (Essen is explicitly non-commercial), see
  `licences.MUSIC21_AUDIT`; abcmidi is installable but the ABC collections we could pair it
  with have the same problem.
* instruments: the Csound GM bank (`sf_GMbank.sf2`, public domain) and, with
  `--train-soundfonts csound-gm,clearstem-synth`, our own synthesiser (`synth.py`: wavetable,
  FM, mallet and plucked timbres drawn per song, a synthesised kit; licence own work, pinned by
  the SHA-256 of its source) for train/select; TimGM6mb (GPL-2.0) for validation only; OPL-3 FM
  (CC-BY-SA-4.0) opt-in, non-commercial. MuseScore General is *refused*: its own copyright file
  says it is built from the GM bank family reserved for held-out evaluation.
* **vocals: no human voice.** By default the "vocals" stem is the song's lead melody played on
  the soundfont's General MIDI voice programs (52 choir aahs, 53 voice oohs, 54 synth voice,
  85 lead voice): sustained vowel-like timbres, no words, no consonants. In renders with the
  own bank the melody is sung by `synth.Voice`, a source-filter voice: a harmonic source shaped
  by vowel formants with a vowel glide per note, vibrato, portamento, breath noise and
  consonant-like bursts — still no words and no recorded voice. Opt-in
  (`--espeak-vocals FRACTION --allow-noncommercial`): for that fraction of songs the melody is
  sung as espeak-ng syllables ("naa", "hey", "tonight", …; formant voices only, never MBROLA),
  pitched to each note within ~25 cents — robotic, with consonants and formants. espeak-ng is
  GPL-3.0-or-later; whether its generated speech carries obligations for trained weights is not
  legally reviewed, so those songs are recorded as not commercial (`LicenseRef-espeak-ng-output`),
  one flag to flip in `licences.LICENCES` after review.
* commercial use: true for a set built with the defaults (own compositions + public-domain bank);
  the GPL-2.0 bank's renders are validation only and flagged non-commercial in the manifest.

Architecture, measured (`python -m separation.training.arch_candidates`, random weights, one
10 s stereo 44.1 kHz input, batch 1, fp32, torch.set_num_threads(2), forward incl. STFT/iSTFT;
2026-11-30 on the shared 2-core dev box at load average 4–4.7, so wall times are ~2× pessimistic;
"est." = process CPU time / 2, i.e. the wall time on two otherwise idle cores):

    candidate        weights   wall     est.    × real time (est.)
    mask_unet_8       0.6 MB   2.75 s   1.33 s   7.5
    mask_unet_16      2.3 MB   5.22 s   2.53 s   3.9
    hdemucs_c8_d5     4.0 MB  11.95 s   5.78 s   1.7
    hdemucs_c16      37.4 MB  11.75 s   5.48 s   1.8   (also over the 25 MB weights budget)
    bsrnn_d32_l3      5.6 MB   3.46 s   1.68 s   5.9
    bsrnn_d64_l4     13.3 MB   8.60 s   4.00 s   2.5

HDemucs-style networks are out on CPU speed even at 8 channels (the full-rate time branch
dominates). A small band-split RNN (28 bands, dim 32, 3 dual-path layers) meets ≥ 5× on the
forward pass with little margin; the U-Net at base 8 has the most margin but masks magnitudes
only. Next slice: train bsrnn_d32_l3 (and mask_unet_8 as the control) on this data; if the
band-split net misses 5× end to end, a hop of 1024 halves its frames.
"""
