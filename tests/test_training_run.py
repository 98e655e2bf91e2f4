"""The separator's training run (issue 16): seeded, resumable to the same weights, selecting on
the `select` split only, refusing a tampered or non-commercial set. A tiny network on a tiny
rendered set (ten songs of 1.5 s: eight train, one select, one val)."""
from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from separation import bandsplit, install_model, registry, train, voice_gate
from separation.run import separate_file
from separation.training import data, kicks, synth
from tests.conftest import need_fluidsynth

TINY = ["--steps", "4", "--batch", "1", "--seconds", "1.0", "--dim", "8", "--layers", "1", "--threads", "1",
        "--checkpoint-every", "2", "--select-every", "2", "--log-every", "1"]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    need_fluidsynth("csound-gm", "timgm6mb")
    out = tmp_path_factory.mktemp("train-set")
    data.build(out, songs=10, seed=5, seconds=1.5, log=lambda *_: None)
    return out


def _params(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def _shipped_base_and_run(config: dict, weights, base_state: dict, run_state: dict):
    """The exported file's stems, the base's and the run's, on one random input (tiny networks)."""
    both = bandsplit.build(config).eval()
    both.load_state_dict(torch.load(weights, weights_only=True))
    plain = bandsplit.BandSplitRNN(config["dim"], config["layers"]).eval()
    run = bandsplit.BandSplitRNN(config.get("specialist_dim", config["dim"]),
                                 config.get("specialist_layers", config["layers"])).eval()
    plain.load_state_dict(base_state)
    run.load_state_dict(run_state)
    x = torch.randn(1, 2, 22050)
    with torch.inference_mode():
        return both(x), plain(x), run(x)


def _tiny(**flags: str) -> list[str]:
    """TINY's flags changed (or added) by `flags`, e.g. layers="3"."""
    args = [*TINY]
    for flag, value in flags.items():
        if f"--{flag}" in args:
            args[args.index(f"--{flag}") + 1] = value
        else:
            args += [f"--{flag}", value]
    return args


def _two_shipped(tiny_set, tmp_path, manifest_beside: bool = True) -> Path:
    """Two tiny networks exported to `tmp_path/ship`: tiny-a (a fine-tune's start) and tiny-o
    (another network, trained at another rate), with tiny-o's training manifest beside it unless
    `manifest_beside` is false (as `separation/weights/` ships a model a --base may name)."""
    ship = tmp_path / "ship"
    for name, extra in (("tiny-a", []), ("tiny-o", ["--lr", "0.05"])):
        assert train.main(["--data", str(tiny_set), "--out", str(tmp_path / name), *TINY, *extra]) == 0
        train.export(tmp_path / name / "last.pt", ship / f"{name}.pt", tiny_set, name)
    if manifest_beside:
        shutil.copy(tiny_set / "manifest.json", ship / "tiny-o.training-manifest.json")
    return ship


def _start_of_run(tiny_set, out: Path, start: str, **flags: str):
    """One step at rate 0 from `start` with `_tiny(**flags)`: the network the run began from, as
    its checkpoint and as an eval-mode model."""
    args = _tiny(**{"lr": "0", "steps": "1", **flags})
    assert train.main(["--data", str(tiny_set), "--out", str(out), *args, "--init", start]) == 0
    ckpt = torch.load(out / "last.pt", weights_only=False)
    model = bandsplit.BandSplitRNN(ckpt["config"]["dim"], ckpt["config"]["layers"]).eval()
    model.load_state_dict(ckpt["model"])
    return ckpt, model


def _ships_one_stem_from_the_run(card: dict, name: str, stem: str, base_state: dict, run_state: dict,
                                 tiny_set, tmp_path) -> None:
    """The exported file gives the run's `stem` and the base's other stems exactly, and the
    registry installs and runs it like any model."""
    got, want_base, want_run = _shipped_base_and_run(card["config"], card["weights"], base_state, run_state)
    i = bandsplit.STEMS.index(stem)
    assert torch.equal(got[:, i], want_run[:, i]) and not torch.equal(got[:, i], want_base[:, i])
    assert all(torch.equal(got[:, k], want_base[:, k]) for k in range(4) if k != i)
    models = tmp_path / "models"
    registry.install_model(card["weights"], name, models, card["config"], architecture="bandsplit-rnn",
                           stems=card["stems"], sample_rate=44100)
    engine = registry.get_engine(name, str(models), device="cpu")
    mix = next(r for r in train.load_set(tiny_set)["renders"] if r["split"] == "val")["mixture"]["path"]
    outputs, _ = separate_file(engine, tiny_set / mix, tmp_path / "stems", fmt="wav", bits=16)
    assert sorted(o.name for o in outputs) == sorted(bandsplit.STEMS)


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tiny_set, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train.main(["--data", str(tiny_set), "--out", str(straight), *TINY]) == 0
    # the same run stopped after two steps, then started again with the same command
    first = TINY.copy()
    first[first.index("--steps") + 1] = "2"
    assert train.main(["--data", str(tiny_set), "--out", str(resumed), *first]) == 0
    assert _params(resumed / "last.pt") and torch.load(resumed / "last.pt", weights_only=False)["step"] == 2
    assert train.main(["--data", str(tiny_set), "--out", str(resumed), *TINY]) == 0
    a, b = _params(straight / "last.pt"), _params(resumed / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    # it learned something: the weights moved from their seeded initialisation
    torch.manual_seed(0)
    init = bandsplit.BandSplitRNN(8, 1).state_dict()
    assert any(not torch.equal(init[k], a[k]) for k in a)
    # selection ran on the select split and kept a best checkpoint; the log says so
    log = [json.loads(line) for line in (straight / "log.jsonl").read_text().splitlines()]
    selects = [r for r in log if "select" in r]
    assert [r["step"] for r in selects] == [2, 4]
    assert all(r["select"]["songs"] == 1 and "by_composer" not in r["select"] for r in selects)  # one composer
    assert (straight / "best.pt").exists()
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4]


def test_trained_weights_install_and_separate_like_any_pinned_model(tiny_set, tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *TINY]) == 0
    card = train.export(run / "best.pt", tmp_path / "bandsplit.pt")
    assert card["architecture"] == "bandsplit-rnn" and card["config"] == {"dim": 8, "layers": 1}
    assert card["training_data_manifest_sha256"] == train.load_set(tiny_set)["_sha256"]
    # with the set and a name, export also writes the model card the repository ships
    shipped = train.export(run / "best.pt", tmp_path / "ship" / "tiny-v1.pt", tiny_set, "tiny-v1")
    written = json.loads((tmp_path / "ship" / "tiny-v1.json").read_text())
    assert written["sha256"] == shipped["sha256"] == registry.file_sha256(tmp_path / "ship" / "tiny-v1.pt")
    assert written["training_data_manifest_sha256"] == card["training_data_manifest_sha256"]
    assert card["training_data_manifest_sha256"] in written["training_data"] and "no human voice" in written["training_data"]
    assert written["commercial_use"] is True and "allows commercial use" in written["weights_licence"]
    with pytest.raises(SystemExit) as exited:
        train.main(["export", str(run / "best.pt"), "--to", str(tmp_path / "x.pt"), "--name", "x"])
    assert exited.value.code == 2 and "--data and --name go together" in capsys.readouterr().err
    models = tmp_path / "models"
    assert install_model.main([str(tmp_path / "bandsplit.pt"), "--name", "clearstem-bandsplit-test", "--model-dir",
                               str(models), "--architecture", "bandsplit-rnn", "--stems", *card["stems"],
                               "--sample-rate", "44100", "--config", json.dumps(card["config"]),
                               "--training-data", f"separation.training set {card['training_data_manifest_sha256']}",
                               "--licence", "test weights"]) == 0
    engine = registry.get_engine("clearstem-bandsplit-test", str(models), device="cpu")
    assert engine.info.code_version == registry.BANDSPLIT_CODE_VERSION and not engine.info.commercial_use
    mix = next(r for r in train.load_set(tiny_set)["renders"] if r["split"] == "val")["mixture"]["path"]
    outputs, _ = separate_file(engine, tiny_set / mix, tmp_path / "stems", fmt="wav", bits=16)
    assert sorted(o.name for o in outputs) == sorted(bandsplit.STEMS)
    n = sf.info(tiny_set / mix).frames
    assert all(sf.info(o.path).frames == n for o in outputs)
    # weights that are not this architecture's are refused with the reason, not run
    torch.save({"nonsense": torch.zeros(3)}, models / "bandsplit.pt")
    registry.install_model(models / "bandsplit.pt", "clearstem-bandsplit-bad", models, card["config"],
                           architecture="bandsplit-rnn", stems=card["stems"], sample_rate=44100)
    with pytest.raises(registry.ModelUnavailable, match="do not fit the bandsplit-rnn architecture"):
        registry.get_engine("clearstem-bandsplit-bad", str(models), device="cpu")


def test_data_loading_workers_do_not_change_what_is_trained(tiny_set, tmp_path):
    """Two loader processes make the batches (as on a GPU machine): same batches, same order,
    same weights as making them in the training process."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert train.main(["--data", str(tiny_set), "--out", str(one), *TINY]) == 0
    assert train.main(["--data", str(tiny_set), "--out", str(two), *TINY, "--workers", "2"]) == 0
    a, b = _params(one / "last.pt"), _params(two / "last.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


def test_examples_are_a_function_of_seed_step_and_index(tiny_set):
    manifest = train.load_set(tiny_set)
    ex = train.Examples(tiny_set, manifest, "train", 1.0, seed=3)
    mix, stems = ex.example(7, 1)
    mix2, stems2 = train.Examples(tiny_set, manifest, "train", 1.0, seed=3).example(7, 1)
    assert (mix == mix2).all() and (stems == stems2).all()
    other, _ = ex.example(8, 1)
    assert not (other == mix).all()
    assert stems.shape == (len(bandsplit.STEMS), 2, 44100)
    assert abs(stems.sum(axis=0) - mix).max() < 1e-5  # the mixture is the sum of the targets
    assert not any(r["split"] != "train" for r in ex.renders)


def test_a_tampered_or_noncommercial_set_is_refused(tiny_set, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_set, bad)
    manifest = json.loads((bad / "manifest.json").read_bytes())
    manifest["commercial_use"] = True
    manifest["renders"] = manifest["renders"][:1]
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SystemExit, match="manifest.sha256 says"):
        train.main(["--data", str(bad), "--out", str(tmp_path / "run"), *TINY])
    # a set that is honestly not commercial-clean: refused unless the run says so
    manifest["commercial_use"] = False
    data.write_manifest(manifest, bad)
    with pytest.raises(SystemExit, match="commercial_use false"):
        train.main(["--data", str(bad), "--out", str(tmp_path / "run"), *TINY])
    assert not (tmp_path / "run" / "last.pt").exists()


def test_resuming_with_other_settings_is_refused(tiny_set, tmp_path):
    first = TINY.copy()
    first[first.index("--steps") + 1] = "2"
    assert train.main(["--data", str(tiny_set), "--out", str(tmp_path), *first]) == 0
    other = first.copy()
    other[other.index("--dim") + 1] = "16"
    with pytest.raises(SystemExit, match="other settings \\(dim\\)"):
        train.main(["--data", str(tiny_set), "--out", str(tmp_path), *other])


def test_a_run_started_from_exported_weights_records_them_and_refuses_bad_ones(tiny_set, tmp_path):
    """Fine-tuning (`--init`): the run starts from the exported weights exactly, and the new card
    names what shaped them (this set and the starting weights' own training data); weights whose
    card does not pin them, of another shape, or not commercial-clean are refused."""
    base = tmp_path / "base"
    assert train.main(["--data", str(tiny_set), "--out", str(base), *TINY]) == 0
    start = train.export(base / "best.pt", tmp_path / "ship" / "tiny-v1.pt", tiny_set, "tiny-v1")
    init = torch.load(tmp_path / "ship" / "tiny-v1.pt", weights_only=True)
    frozen = TINY.copy()
    frozen[frozen.index("--steps") + 1] = "1"
    fresh = tmp_path / "fresh"
    assert train.main(["--data", str(tiny_set), "--out", str(fresh), *TINY, "--init", start["weights"]]) == 0
    ckpt = torch.load(fresh / "last.pt", weights_only=False)
    assert ckpt["config"]["init"]["weights_sha256"] == start["sha256"] and ckpt["config"]["init"]["name"] == "tiny-v1"
    # it starts from those weights: a step at learning rate 0 leaves them exactly as exported
    assert train.main(["--data", str(tiny_set), "--out", str(tmp_path / "frozen"), *frozen, "--lr", "0",
                       "--init", start["weights"]]) == 0
    after = _params(tmp_path / "frozen" / "last.pt")
    assert after.keys() == init.keys() and all(torch.equal(init[k], after[k]) for k in init)
    # the start is scored as step 0 and stays best.pt until a step beats it; a run that never beat
    # it has nothing to export
    selects = [json.loads(line) for line in (tmp_path / "frozen" / "log.jsonl").read_text().splitlines()
               if "select" in line]
    assert [r["step"] for r in selects] == [0, 1] and selects[0]["select"] == selects[1]["select"]
    assert torch.load(tmp_path / "frozen" / "best.pt", weights_only=False)["step"] == 0
    with pytest.raises(train.TrainingSetError, match="no step of the run beat the --init weights"):
        train.export(tmp_path / "frozen" / "best.pt", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    card = train.export(fresh / "last.pt", tmp_path / "ship" / "tiny-v2.pt", tiny_set, "tiny-v2")
    written = json.loads((tmp_path / "ship" / "tiny-v2.json").read_text())
    assert written["training"]["init"]["weights_sha256"] == start["sha256"]
    assert f"fine-tuned from tiny-v1 (weights SHA-256 {start['sha256']}), which learned from this same set" \
        in written["training_data"]
    assert written["training_data"].count("ClearStem training set, manifest SHA-256") == 1  # the set, stated once
    # weights from another set: that set's statement follows, whole
    manifest = json.loads((tiny_set / "manifest.json").read_text()) | {"_sha256": "0" * 64}
    elsewhere = {"name": "other-v1", "weights_sha256": "f" * 64, "training_data": "another set's words",
                 "commercial_use": True}
    assert train.training_statement(manifest, elsewhere)[0].endswith(
        f"fine-tuned from other-v1 (weights SHA-256 {'f' * 64}), whose training data was: another set's words")
    assert written["commercial_use"] is True and card["sha256"] == written["sha256"]
    # some of a fine-tune's stems over its start's (`--take`): those come from the run, the rest
    # exactly as the start computes them, and the card says which came from where
    assert train.main(["export", str(fresh / "last.pt"), "--to", str(tmp_path / "ship" / "tiny-t.pt"),
                       "--data", str(tiny_set), "--name", "tiny-t", "--base", start["weights"],
                       "--take", "other", "vocals"]) == 0
    taken = json.loads((tmp_path / "ship" / "tiny-t.json").read_text())
    assert taken["config"] == {"dim": 8, "layers": 1, "specialist": ["vocals", "other"]}
    assert taken["training"]["taken_stems"] == ["vocals", "other"] and "loss_stems" not in taken["training"]
    assert taken["training_data"].startswith(
        f"drums, bass: tiny-v1 unchanged (weights SHA-256 {start['sha256']}); vocals, other: a network fine-tuned "
        "on every stem's loss, only these stems taken from it, on ")
    got, want_base, want_run = _shipped_base_and_run(taken["config"], tmp_path / "ship" / "tiny-t.pt", init,
                                                     _params(fresh / "last.pt"))
    for i, stem in enumerate(bandsplit.STEMS):
        assert torch.equal(got[:, i], (want_run if stem in ("vocals", "other") else want_base)[:, i]), stem
    for take, base, why in ((["vocals"], None, "give them with --base"),
                            (list(bandsplit.STEMS), start["weights"], "not all of them"),
                            (["vocals", "vocals"], start["weights"], "each once")):
        with pytest.raises(train.TrainingSetError, match=why):
            train.export(fresh / "last.pt", tmp_path / "y.pt", base=Path(base) if base else None, take=take)
    assert not (tmp_path / "y.pt").exists()
    # refused: a file its card does not pin, another shape, weights not commercial-clean
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(tmp_path / "ship" / "tiny-v1.json", bad / "w.json")
    torch.save({k: v + 1 for k, v in init.items()}, bad / "w.pt")
    with pytest.raises(SystemExit, match="its card pins"):
        train.main(["--data", str(tiny_set), "--out", str(tmp_path / "r1"), *TINY, "--init", str(bad / "w.pt")])
    with pytest.raises(SystemExit, match="this run is bandsplit-rnn"):  # 8 wide does not divide 12
        train.main(["--data", str(tiny_set), "--out", str(tmp_path / "r2"), *TINY, "--dim", "12",
                    "--init", start["weights"]])
    meta = json.loads((tmp_path / "ship" / "tiny-v1.json").read_text())
    shutil.copy(tmp_path / "ship" / "tiny-v1.pt", bad / "nc.pt")
    (bad / "nc.json").write_text(json.dumps(meta | {"commercial_use": False}))
    with pytest.raises(SystemExit, match="not commercial-clean"):
        train.main(["--data", str(tiny_set), "--out", str(tmp_path / "r3"), *TINY, "--init", str(bad / "nc.pt")])
    (bad / "missing.pt").write_bytes((tmp_path / "ship" / "tiny-v1.pt").read_bytes())
    with pytest.raises(SystemExit, match="card .* is missing"):
        train.main(["--data", str(tiny_set), "--out", str(tmp_path / "r4"), *TINY, "--init", str(bad / "missing.pt")])


def test_some_stems_of_a_fine_tune_over_another_exported_network(tiny_set, tmp_path):
    """`export --base W --take …` where W is not the run's start (`train.other_base`): the stems not
    taken are exactly W's, and the card names W and what W learned from — checked as a start is,
    with W's training manifest beside it so its inputs' licences are counted."""
    ship = _two_shipped(tiny_set, tmp_path, manifest_beside=False)
    run = tmp_path / "run"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *TINY, "--lr", "0.05",
                       "--init", str(ship / "tiny-a.pt")]) == 0
    with pytest.raises(train.TrainingSetError, match="training manifest its card names is not beside it"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=ship / "tiny-o.pt", take=["vocals"])
    (ship / "tiny-o.training-manifest.json").write_bytes(b"{}")
    with pytest.raises(train.TrainingSetError, match="is not the training manifest its card names"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=ship / "tiny-o.pt", take=["vocals"])
    shutil.copy(tiny_set / "manifest.json", ship / "tiny-o.training-manifest.json")
    with pytest.raises(train.TrainingSetError, match="give them with --base"):
        train.export(run / "last.pt", tmp_path / "x.pt", take=["vocals"])
    assert not (tmp_path / "x.pt").exists()
    made = train.export(run / "last.pt", ship / "tiny-c.pt", tiny_set, "tiny-c", base=ship / "tiny-o.pt",
                        take=["vocals"])
    card = json.loads((ship / "tiny-c.json").read_text())
    other = json.loads((ship / "tiny-o.json").read_text())
    assert card["config"] == {"dim": 8, "layers": 1, "specialist": ["vocals"]} and made["sha256"] == card["sha256"]
    assert card["training"]["base"]["name"] == "tiny-o" and card["training"]["init"]["name"] == "tiny-a"
    assert card["training_data"].startswith(
        f"drums, bass, other: tiny-o unchanged (weights SHA-256 {other['sha256']}), whose training data was: "
        f"{other['training_data']}; vocals: a network fine-tuned on every stem's loss, only these stems taken from it, on ")
    assert card["commercial_use"] is True and card["weights_licence"] == other["weights_licence"]
    manifest = json.loads((tiny_set / "manifest.json").read_bytes()) | {"_sha256": card["training_data_manifest_sha256"]}
    made_as = {"init": card["training"]["init"], "stems": card["stems"], "data_manifest_sha256": manifest["_sha256"],
               "taken_stems": card["training"]["taken_stems"], "base": card["training"]["base"]}
    assert train.card_statement(manifest, made_as) == (card["training_data"], card["weights_licence"])
    got, want_base, want_run = _shipped_base_and_run(card["config"], ship / "tiny-c.pt",
                                                     torch.load(ship / "tiny-o.pt", weights_only=True),
                                                     _params(run / "last.pt"))
    for i, stem in enumerate(bandsplit.STEMS):
        assert torch.equal(got[:, i], (want_run if stem == "vocals" else want_base)[:, i]), stem
    start, over = (torch.load(ship / f"{n}.pt", weights_only=True) for n in ("tiny-a", "tiny-o"))
    assert any(not torch.equal(start[k], over[k]) for k in start)  # tiny-o is another network than the start


def test_exported_stems_go_over_other_weights_again_without_the_run(tiny_set, tmp_path):
    """`export` of weights exported with --take (card beside them, `train.taken_as_checkpoint`):
    the run's network over another base gives what exporting the run itself over it gives, tensor
    for tensor and card for card — the run's checkpoint may be gone. Weights that are one network,
    or without a card that pins them, are refused."""
    ship = _two_shipped(tiny_set, tmp_path)
    run = tmp_path / "run"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *TINY, "--lr", "0.05",
                       "--init", str(ship / "tiny-a.pt")]) == 0
    train.export(run / "last.pt", ship / "tiny-s.pt", tiny_set, "tiny-s", base=ship / "tiny-a.pt",
                 take=["vocals", "other"])  # over its start, as v5 over v3
    direct, again = tmp_path / "direct", tmp_path / "again"
    train.export(run / "last.pt", direct / "tiny-c.pt", tiny_set, "tiny-c", base=ship / "tiny-o.pt", take=["vocals"])
    assert train.main(["export", str(ship / "tiny-s.pt"), "--to", str(again / "tiny-c.pt"), "--data", str(tiny_set),
                       "--name", "tiny-c", "--base", str(ship / "tiny-o.pt"), "--take", "vocals"]) == 0
    want, got = (torch.load(d / "tiny-c.pt", weights_only=True) for d in (direct, again))
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    cards = [json.loads((d / "tiny-c.json").read_text()) for d in (direct, again)]
    assert cards[0]["training"]["base"]["name"] == "tiny-o"
    assert {k: v for k, v in cards[0].items() if k != "sha256"} == {k: v for k, v in cards[1].items() if k != "sha256"}
    with pytest.raises(train.TrainingSetError, match="is one network"):
        train.export(ship / "tiny-o.pt", tmp_path / "x.pt", base=ship / "tiny-a.pt", take=["vocals"])
    shutil.copy(ship / "tiny-s.pt", tmp_path / "lone.pt")
    with pytest.raises(SystemExit, match="their card beside them"):
        train.main(["export", str(tmp_path / "lone.pt"), "--to", str(tmp_path / "x.pt"),
                    "--base", str(ship / "tiny-o.pt"), "--take", "vocals"])
    shutil.copy(direct / "tiny-c.json", tmp_path / "lone.json")  # another model's card: it does not pin these
    with pytest.raises(train.TrainingSetError, match="does not pin"):
        train.export(tmp_path / "lone.pt", tmp_path / "x.pt", base=ship / "tiny-o.pt", take=["vocals"])
    assert not (tmp_path / "x.pt").exists()


def test_a_wider_runs_stems_go_beside_a_narrower_network(tiny_set, tmp_path):
    """`export --base W --take …` where W is narrower than the run (v17's form, stop 62: a 64-wide
    network's drums, vocals and *other* beside v2's 32-wide bass): the file holds both networks at
    their own widths (`specialist_dim`), gives each stem of the network it was taken from exactly,
    installs and separates like any model, and re-exports from the shipped file alone. Over the
    run's own (narrower) start too."""
    ship = _two_shipped(tiny_set, tmp_path)
    run = tmp_path / "run"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *_tiny(lr="0.05", dim="16"),
                       "--init", str(ship / "tiny-a.pt")]) == 0
    taken = ["drums", "vocals", "other"]
    made = train.export(run / "last.pt", ship / "tiny-w.pt", tiny_set, "tiny-w", base=ship / "tiny-o.pt", take=taken)
    card = json.loads((ship / "tiny-w.json").read_text())
    assert card["config"] == made["config"] == {"dim": 8, "layers": 1, "specialist": taken, "specialist_dim": 16}
    assert card["training"]["base"]["name"] == "tiny-o" and card["training"]["init"]["widened_from_dim"] == 8
    assert card["training_data"].startswith("bass: tiny-o unchanged") and card["commercial_use"] is True
    got, want_base, want_run = _shipped_base_and_run(card["config"], ship / "tiny-w.pt",
                                                     torch.load(ship / "tiny-o.pt", weights_only=True),
                                                     _params(run / "last.pt"))
    for i, stem in enumerate(bandsplit.STEMS):
        assert torch.equal(got[:, i], (want_run if stem in taken else want_base)[:, i]), stem
    models = tmp_path / "models"
    registry.install_model(ship / "tiny-w.pt", "tiny-w", models, card["config"], architecture="bandsplit-rnn",
                           stems=card["stems"], sample_rate=44100)
    engine = registry.get_engine("tiny-w", str(models), device="cpu")
    mix = next(r for r in train.load_set(tiny_set)["renders"] if r["split"] == "val")["mixture"]["path"]
    outputs, _ = separate_file(engine, tiny_set / mix, tmp_path / "stems", fmt="wav", bits=16)
    assert sorted(o.name for o in outputs) == sorted(bandsplit.STEMS)
    # the shipped file alone re-exports the same stems over the same base
    assert train.main(["export", str(ship / "tiny-w.pt"), "--to", str(tmp_path / "again" / "tiny-w.pt"),
                       "--data", str(tiny_set), "--name", "tiny-w", "--base", str(ship / "tiny-o.pt"),
                       "--take", *taken]) == 0
    want, again = (torch.load(p, weights_only=True) for p in (ship / "tiny-w.pt", tmp_path / "again" / "tiny-w.pt"))
    assert want.keys() == again.keys() and all(torch.equal(want[k], again[k]) for k in want)
    # over the narrower start the run was widened from
    over_start = train.export(run / "last.pt", tmp_path / "s" / "tiny-s.pt", base=ship / "tiny-a.pt", take=["vocals"])
    assert over_start["config"] == {"dim": 8, "layers": 1, "specialist": ["vocals"], "specialist_dim": 16}
    with pytest.raises(ValueError, match="at least one feature per band"):
        bandsplit.WithSpecialist(8, 1, specialist=("bass",), specialist_dim=0)


def test_learning_rate_warms_up_then_decays_to_zero_over_the_last_steps():
    peak = 1e-3
    assert train.learning_rate(0, peak, 1000) == pytest.approx(peak / 200)
    assert train.learning_rate(199, peak, 1000) == train.learning_rate(999, peak, 1000) == peak  # constant: no decay
    decayed = [train.learning_rate(s, peak, 1000, 200) for s in (799, 800, 900, 999)]
    assert decayed == pytest.approx([peak, peak, peak / 2, peak / 200])
    assert all(a > b for a, b in zip(decayed[1:], decayed[2:]))


def test_a_decaying_run_records_its_schedule_and_refuses_another_length(tiny_set, tmp_path, capsys):
    """With --decay-steps the rate depends on --steps, so both are in the run's settings (a resume
    with another length would not reach the weights an uninterrupted run does) and in the card; a
    decay longer than the run is refused before anything is written."""
    run = tmp_path / "run"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *TINY, "--decay-steps", "2"]) == 0
    config = torch.load(run / "last.pt", weights_only=False)["config"]
    assert config["decay_steps"] == 2 and config["steps"] == 4
    longer = TINY.copy()
    longer[longer.index("--steps") + 1] = "6"
    with pytest.raises(SystemExit, match=r"other settings \(steps\)"):
        train.main(["--data", str(tiny_set), "--out", str(run), *longer, "--decay-steps", "2"])
    train.export(run / "best.pt", tmp_path / "ship" / "dec.pt", tiny_set, "dec")
    card = json.loads((tmp_path / "ship" / "dec.json").read_text())
    assert card["training"]["decay_steps"] == 2 and card["training"]["run_steps"] == 4
    with pytest.raises(SystemExit) as refused:
        train.main(["--data", str(tiny_set), "--out", str(tmp_path / "none"), *TINY, "--decay-steps", "5"])
    assert refused.value.code == 2 and "--decay-steps must be between 0 and --steps (4), got 5" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_sdr_loss_is_minus_each_stems_sdr_over_the_batch_averaged_over_stems():
    """Known answers: a stem estimated at half its amplitude has SDR 10 log10(1 / 0.25) = 6.02 dB
    whatever its level; a stem silent in one excerpt adds its leak there to the batch's error."""
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 4, 2, 1000, generator=g)
    ref[:, 2] *= 0.01  # a quiet voice: counts the same in dB as the loud stems
    est = ref * 0.5
    assert float(train.sdr_loss(est, ref)) == pytest.approx(-10 * math.log10(4), abs=1e-4)
    assert float(train.sdr_loss(ref, ref)) < -70  # perfect: only the numerical floor
    quiet_leak = ref.clone()
    quiet_leak[1, 0] = 0.0  # stem 0 silent in the second excerpt, exact in the first ...
    est = quiet_leak * 0.5
    est[0, 0] = quiet_leak[0, 0]
    est[1, 0] = 0.1 * ref[0, 0]  # ... where the estimate leaks at -20 dB of the first excerpt's level
    assert float(train.sdr_loss(est, quiet_leak)) == pytest.approx(-(20.0 + 3 * 10 * math.log10(4)) / 4, abs=1e-3)


def test_the_sounding_sdr_loss_leaves_out_a_stem_silent_in_every_excerpt_and_keeps_its_leak_elsewhere():
    """A batch with no drums anywhere (kit-less music): `sdr_loss` scores the drums at the 1e-8
    floor over their leak, tens of dB that swamp the sounding stems; `sdr-sounding` averages the
    three that sound. With drums in one excerpt, the leak in the other counts as in `sdr_loss`."""
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(2, 4, 2, 1000, generator=g)
    ref[:, 0] = 0.0  # no drums in either excerpt
    est = ref * 0.5
    est[:, 0] = 1e-3 * torch.randn(2, 2, 1000, generator=g)  # a faint leak into the absent stem
    assert float(train.sdr_loss(est, ref)) > 5  # the floor's −50 dB outweighs three stems at 6 dB
    assert float(train.sounding_sdr_loss(est, ref)) == pytest.approx(-10 * math.log10(4), abs=1e-4)
    ref[0, 0] = torch.randn(2, 1000, generator=g)  # drums sound in the first excerpt: counted again
    est[0, 0] = 0.5 * ref[0, 0]
    assert float(train.sounding_sdr_loss(est, ref)) == pytest.approx(float(train.sdr_loss(est, ref)), abs=1e-5)
    est.requires_grad_(True)
    nothing = train.sounding_sdr_loss(est[:, 2:3], torch.zeros_like(ref[:, 2:3]))  # a specialist's silent batch
    nothing.backward()
    assert float(nothing.detach()) == 0.0 and float(est.grad.abs().sum()) == 0.0  # teaches nothing, breaks nothing


def test_a_run_with_the_sdr_loss_records_it_and_refuses_a_resume_with_another(tiny_set, tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *TINY, "--loss", "sdr"]) == 0
    ckpt = torch.load(run / "last.pt", weights_only=False)
    assert ckpt["config"]["loss"] == "sdr" and ckpt["step"] == 4
    losses = [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert losses and all(math.isfinite(v) for v in losses)
    with pytest.raises(SystemExit, match=r"other settings \(loss\)"):
        train.main(["--data", str(tiny_set), "--out", str(run), *TINY])  # v1's loss on this run: refused
    train.export(run / "best.pt", tmp_path / "ship" / "s.pt", tiny_set, "s")
    assert json.loads((tmp_path / "ship" / "s.json").read_text())["training"]["loss"] == "sdr"
    with pytest.raises(SystemExit) as refused:
        train.main(["--data", str(tiny_set), "--out", str(tmp_path / "none"), *TINY, "--loss", "si-sdr"])
    assert refused.value.code == 2 and "invalid choice: 'si-sdr'" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_a_deeper_run_starts_from_shallower_weights_computing_the_same_and_says_so(tiny_set, tmp_path):
    """`--layers` above the start's: the start's layers come first, the new ones begin as the
    identity, so before any step the deeper network separates exactly as the start did; the
    card says it was deepened. A start of another width or with more layers is refused."""
    base = tmp_path / "base"
    assert train.main(["--data", str(tiny_set), "--out", str(base), *TINY]) == 0
    start = train.export(base / "best.pt", tmp_path / "ship" / "tiny-v1.pt", tiny_set, "tiny-v1")
    shallow = bandsplit.BandSplitRNN(8, 1).eval()
    shallow.load_state_dict(torch.load(start["weights"], weights_only=True))
    deep = tmp_path / "deep"
    ckpt, model = _start_of_run(tiny_set, deep, start["weights"], layers="3")
    assert ckpt["config"]["layers"] == 3 and ckpt["config"]["init"]["deepened_from_layers"] == 1
    assert torch.count_nonzero(model.time_proj[2].weight) == 0 and torch.count_nonzero(model.band_proj[1].bias) == 0
    x = torch.randn(1, 2, 22050)
    with torch.inference_mode():
        assert torch.equal(model(x), shallow(x))
    card = train.export(deep / "last.pt", tmp_path / "ship" / "tiny-deep.pt", tiny_set, "tiny-deep")
    written = json.loads((tmp_path / "ship" / "tiny-deep.json").read_text())
    assert written["config"] == {"dim": 8, "layers": 3} and card["sha256"] == written["sha256"]
    assert "fine-tuned from tiny-v1" in written["training_data"] and "deepened from its 1 layers" in written["training_data"]
    # refused: more layers than the run, another width; and load_deeper itself refuses both
    with pytest.raises(SystemExit, match="at most as many layers"):
        train.main(["--data", str(tiny_set), "--out", str(tmp_path / "r1"), *TINY, "--init", card["weights"]])
    with pytest.raises(SystemExit, match="same width"):
        train.main(["--data", str(tiny_set), "--out", str(tmp_path / "r2"), *TINY, "--dim", "16", "--layers", "3",
                    "--init", start["weights"]])
    state = torch.load(card["weights"], weights_only=True)
    with pytest.raises(ValueError, match="cannot load a 3-layer state"):
        bandsplit.load_deeper(bandsplit.BandSplitRNN(8, 2), state)
    with pytest.raises(ValueError, match="width 8 into 3 layers of width 16"):
        bandsplit.load_deeper(bandsplit.BandSplitRNN(16, 3), state)


def test_load_wider_copies_every_unit_so_the_wider_network_computes_the_same():
    """`bandsplit.load_wider` (stop 60): a network widened by any whole factor separates exactly as
    the narrower one did (float rounding aside), and the shares it split weights into differ, so
    copies of a unit do not stay copies; other shapes are refused."""
    torch.manual_seed(3)
    narrow = bandsplit.BandSplitRNN(8, 2).eval()
    with torch.no_grad():
        for p in narrow.parameters():
            p.add_(0.1 * torch.randn_like(p))  # away from the initialisation's symmetries
    x = torch.randn(1, 2, 22050)
    for factor in (2, 3):
        wide = bandsplit.BandSplitRNN(8 * factor, 2).eval()
        assert bandsplit.load_wider(wide, narrow.state_dict(), torch.Generator().manual_seed(1)) == factor
        with torch.inference_mode():
            torch.testing.assert_close(wide(x), narrow(x), rtol=0, atol=1e-5)
    rnn = wide.time_rnn[0].weight_hh_l0.detach()  # rows: a gate unit's copies; columns: shares of one weight
    for copy in (0, 8, 16):
        torch.testing.assert_close(rnn[copy].reshape(3, 8).sum(0), narrow.time_rnn[0].weight_hh_l0[0].detach())
    assert not torch.equal(rnn[0], rnn[8])  # unequal shares: the copies' gradients will differ
    state = narrow.state_dict()
    for other in (bandsplit.BandSplitRNN(12, 2), bandsplit.BandSplitRNN(16, 3)):
        with pytest.raises(ValueError, match="same depth, a width that divides it"):
            bandsplit.load_wider(other, state, torch.Generator())


def test_a_wider_run_starts_from_narrower_weights_computing_the_same_and_says_so(tiny_set, tmp_path):
    """`--dim` a multiple of the start's (same layers): the run begins from the start widened
    (`load_wider`, seeded by the run), so before any step it separates as the start did; training
    moves the copies apart; the card says it was widened; `soup --start` averages the run with the
    very start it widened. Another width or depth together with a wider one is refused."""
    base = tmp_path / "base"
    assert train.main(["--data", str(tiny_set), "--out", str(base), *TINY]) == 0
    start = train.export(base / "best.pt", tmp_path / "ship" / "tiny-v1.pt", tiny_set, "tiny-v1")
    narrow = bandsplit.BandSplitRNN(8, 1).eval()
    narrow.load_state_dict(torch.load(start["weights"], weights_only=True))
    ckpt, model = _start_of_run(tiny_set, tmp_path / "frozen", start["weights"], dim="16", seed="4")
    assert ckpt["config"]["dim"] == 16 and ckpt["config"]["init"]["widened_from_dim"] == 8
    x = torch.randn(1, 2, 22050)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), narrow(x), rtol=0, atol=1e-5)
    # trained, the copies of a unit learn apart (their incoming weights were equal at the start)
    moving = _tiny(lr="0.05", seed="4", steps="2", dim="16")
    run = tmp_path / "run"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *moving, "--init", start["weights"]]) == 0
    trained = _params(run / "last.pt")["split.0.1.weight"]
    assert not torch.allclose(trained[0], trained[8]) and torch.equal(ckpt["model"]["split.0.1.weight"][0],
                                                                      ckpt["model"]["split.0.1.weight"][8])
    card = train.export(run / "last.pt", tmp_path / "ship" / "tiny-wide.pt", tiny_set, "tiny-wide")
    written = json.loads((tmp_path / "ship" / "tiny-wide.json").read_text())
    assert written["config"] == {"dim": 16, "layers": 1} and card["sha256"] == written["sha256"]
    assert "fine-tuned from tiny-v1" in written["training_data"] and "widened from its 8 features" in written["training_data"]
    # the soup's start ingredient is the start as the run widened it (same seed, same shares)
    soup = train.soup([run / "last.pt"], tmp_path / "wise.pt", tiny_set, start=Path(start["weights"]))
    assert soup["ingredients"][-1]["weights_sha256"] == start["sha256"]
    souped = _params(tmp_path / "wise.pt")
    for k, v in _params(run / "last.pt").items():
        torch.testing.assert_close(souped[k], (v + ckpt["model"][k]) / 2, msg=k)
    other = tmp_path / "other"  # widened with another seed: another start, so no soup with `run`
    reseeded = _tiny(lr="0.05", seed="5", steps="2", dim="16")
    assert train.main(["--data", str(tiny_set), "--out", str(other), *reseeded, "--init", start["weights"]]) == 0
    with pytest.raises(train.TrainingSetError, match="a soup of widened runs needs one seed"):
        train.soup([run / "last.pt", other / "last.pt"], tmp_path / "mixed.pt", tiny_set)
    # refused: a width the start's does not divide, and wider and deeper at once
    for dim, layers in (("12", "1"), ("16", "2")):
        bad = [*TINY]
        bad[bad.index("--dim") + 1], bad[bad.index("--layers") + 1] = dim, layers
        with pytest.raises(SystemExit, match="a width that divides the run's"):
            train.main(["--data", str(tiny_set), "--out", str(tmp_path / f"r{dim}{layers}"), *bad,
                        "--init", start["weights"]])
        assert not (tmp_path / f"r{dim}{layers}" / "last.pt").exists()


def test_selection_scores_each_composer_when_the_split_mixes_them(tiny_set):
    """`evaluate` with songs by more than one composer also gives each composer's mean and medians
    per stem, the same figures as scoring that composer's songs alone (the per-composer trade stop
    44 could not see; per stem for a specialist, whose untrained stems make the mean meaningless)."""
    manifest = train.load_set(tiny_set)
    assert set(train.composers(manifest).values()) == {"compose"}
    torch.manual_seed(0)
    model = bandsplit.BandSplitRNN(8, 1)
    renders = [r for r in manifest["renders"] if r["split"] == "train"][:4]
    who = {r["song"]: "odd" if i % 2 else "even" for i, r in enumerate(renders)}
    both = train.evaluate(model, tiny_set, renders, seconds=1.0, composer_of=who)
    assert both["songs"] == 4 and set(both["by_composer"]) == {"even", "odd"}
    # each song's own figures are kept, and the medians are theirs
    assert list(both["per_song"]) == [f"{r['song']}.{r['soundfont']}" for r in renders]
    for s in bandsplit.STEMS:
        each = [got[s] for got in both["per_song"].values() if s in got]
        assert both["sdr_median"][s] == pytest.approx(float(np.median(each)) if each else math.nan, nan_ok=True)
    for name in ("even", "odd"):
        alone = train.evaluate(model, tiny_set, [r for r in renders if who[r["song"]] == name], seconds=1.0)
        assert math.isfinite(alone["sdr_mean"]) and "by_composer" not in alone
        assert both["by_composer"][name] == pytest.approx(alone["sdr_mean"], abs=1e-9)
        assert both["by_composer_stems"][name] == pytest.approx(alone["sdr_median"], abs=1e-9, nan_ok=True)


def test_a_deepened_specialist_ships_over_its_shallower_start(tiny_set, tmp_path):
    """A specialist deepened from its start (`--layers` above the start's with `--loss-stems`, stop
    58: more capacity for one stem) goes over that start in one file: the card gives both depths,
    the start's stems come out exactly, the run's stem is the deeper network's, the registry runs
    it, and the shipped file goes again (`--take`) over another network of the start's depth."""
    base = tmp_path / "base"
    assert train.main(["--data", str(tiny_set), "--out", str(base), *TINY]) == 0
    ship = tmp_path / "ship"
    start = train.export(base / "last.pt", ship / "tiny-v1.pt", tiny_set, "tiny-v1")
    deep = [*TINY, "--lr", "0.05", "--loss", "sdr", "--loss-stems", "bass", "--init", start["weights"]]
    deep[deep.index("--layers") + 1] = "2"
    run = tmp_path / "deep"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *deep]) == 0
    card = train.export(run / "last.pt", ship / "tiny-deep.pt", tiny_set, "tiny-deep", base=Path(start["weights"]))
    written = json.loads((ship / "tiny-deep.json").read_text())
    assert written["config"] == card["config"] == {"dim": 8, "layers": 1, "specialist": ["bass"], "specialist_layers": 2}
    assert "deepened from its 1 layers" in written["training_data"]
    _ships_one_stem_from_the_run(card, "tiny-deep", "bass", torch.load(start["weights"], weights_only=True),
                                 _params(run / "last.pt"), tiny_set, tmp_path)
    # the shipped file's bass over another 1-layer network (as v8 took v7's stems over v2)
    other = tmp_path / "other"
    assert train.main(["--data", str(tiny_set), "--out", str(other), *TINY, "--seed", "7"]) == 0
    train.export(other / "last.pt", ship / "tiny-o.pt", tiny_set, "tiny-o")
    shutil.copy(tiny_set / "manifest.json", ship / "tiny-o.training-manifest.json")
    again = train.export(ship / "tiny-deep.pt", ship / "tiny-again.pt", tiny_set, "tiny-again", base=ship / "tiny-o.pt",
                         take=["bass"])
    assert again["config"] == {"dim": 8, "layers": 1, "specialist": ["bass"], "specialist_layers": 2}
    reloaded = torch.load(again["weights"], weights_only=True)
    assert all(torch.equal(reloaded[f"specialist.{k}"], v) for k, v in _params(run / "last.pt").items())
    with pytest.raises(ValueError, match="at least one layer"):
        bandsplit.WithSpecialist(8, 1, specialist=("bass",), specialist_layers=0)


def test_a_specialist_trains_only_its_stems_and_ships_over_the_weights_it_started_from(tiny_set, tmp_path, capsys):
    """`--loss-stems vocals` (stop 45): only the vocals count in the loss and in choosing best.pt;
    `export --base` puts the run's vocals over the starting weights' other stems, in one file the
    registry loads like any model, and those stems come out exactly as the base computes them."""
    base = tmp_path / "base"
    assert train.main(["--data", str(tiny_set), "--out", str(base), *TINY]) == 0
    start = train.export(base / "best.pt", tmp_path / "ship" / "tiny-v1.pt", tiny_set, "tiny-v1")
    one = [*TINY, "--lr", "0.1", "--loss", "sdr", "--loss-stems", "vocals", "--init", start["weights"]]
    one[one.index("--steps") + 1] = "1"
    assert train.main(["--data", str(tiny_set), "--out", str(tmp_path / "one"), *one]) == 0
    before, after = torch.load(start["weights"], weights_only=True), _params(tmp_path / "one" / "last.pt")
    heads = sorted(k for k in before if k.startswith("masks.") and k.endswith(".3.weight"))  # per band: Linear -> S x 4w
    for k in heads:  # rows are stem-major (drums, bass, vocals, other): only the vocals rows are trained
        rows = before[k].shape[0] // 4
        for i, stem in enumerate(bandsplit.STEMS):
            moved = not torch.allclose(before[k][i * rows:(i + 1) * rows], after[k][i * rows:(i + 1) * rows], atol=1e-6)
            assert moved == (stem == "vocals"), (k, stem)
    run = tmp_path / "spec"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *TINY, "--loss", "sdr", "--loss-stems", "vocals",
                       "--init", start["weights"]]) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    selects = [r for r in log if "select" in r]
    assert selects and all(r["select_score"] == pytest.approx(r["select"]["sdr_median"]["vocals"]) for r in selects)
    assert torch.load(run / "best.pt", weights_only=False)["best_select_sdr"] == max(r["select_score"] for r in selects)
    with pytest.raises(train.TrainingSetError, match="export it with --base"):
        train.export(run / "best.pt", tmp_path / "x.pt")
    with pytest.raises(train.TrainingSetError, match="it goes over those weights"):
        train.export(run / "best.pt", tmp_path / "x.pt", base=run / "best.pt")
    with pytest.raises(train.TrainingSetError, match="--base is for a specialist"):
        train.export(base / "best.pt", tmp_path / "x.pt", base=Path(start["weights"]))
    with pytest.raises(train.TrainingSetError, match="this run trained only vocals"):  # its drums never trained
        train.export(run / "best.pt", tmp_path / "x.pt", base=Path(start["weights"]), take=["drums"])
    card = train.export(run / "best.pt", tmp_path / "ship" / "tiny-voc.pt", tiny_set, "tiny-voc", base=Path(start["weights"]))
    written = json.loads((tmp_path / "ship" / "tiny-voc.json").read_text())
    assert written["config"] == card["config"] == {"dim": 8, "layers": 1, "specialist": ["vocals"]}
    assert written["training"]["loss_stems"] == ["vocals"] and written["commercial_use"] is True
    assert written["training_data"].startswith(f"drums, bass, other: tiny-v1 unchanged (weights SHA-256 {start['sha256']}); "
                                               "vocals: a specialist network trained on that stem's loss only")
    # the shipped file computes the base's drums, bass and other and the specialist's vocals
    _ships_one_stem_from_the_run(card, "tiny-voc", "vocals", before, _params(run / "best.pt"), tiny_set, tmp_path)
    # refused: a specialist without a start, a stem named twice, a start that is itself two networks
    for bad, why in ((["--loss-stems", "vocals"], "--loss-stems needs --init"),
                     (["--loss-stems", "vocals", "vocals", "--init", start["weights"]], "names a stem twice")):
        with pytest.raises(SystemExit) as exited:
            train.main(["--data", str(tiny_set), "--out", str(tmp_path / "r"), *TINY, *bad])
        assert exited.value.code == 2 and why in capsys.readouterr().err
    with pytest.raises(SystemExit, match="two networks"):
        train.main(["--data", str(tiny_set), "--out", str(tmp_path / "r"), *TINY, "--init", card["weights"]])
    with pytest.raises(ValueError, match="distinct stems"):
        bandsplit.WithSpecialist(8, 1, specialist=("voice",))


def _drums_specialist_of_a_start(tiny_set: Path, tmp_path: Path) -> tuple[Path, dict, Path]:
    """A tiny run (`base`), its export as a start (`start`, shipped as tiny-v1) and a drums
    specialist fine-tuned from it (`run`): what the specialist-export tests put over one another."""
    base = tmp_path / "base"
    assert train.main(["--data", str(tiny_set), "--out", str(base), *TINY]) == 0
    start = train.export(base / "best.pt", tmp_path / "ship" / "tiny-v1.pt", tiny_set, "tiny-v1")
    run = tmp_path / "spec"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *TINY, "--lr", "0.05", "--loss", "sdr",
                       "--loss-stems", "drums", "--init", start["weights"]]) == 0
    return base, start, run


def _installed_model_separates_a_val_song(weights: Path, name: str, card: dict, tiny_set: Path, tmp_path: Path):
    """Installed as the registry installs an operator's model, `weights` splits a val song of the
    tiny set into the four stems (what a worker then runs)."""
    models = tmp_path / "models"
    registry.install_model(weights, name, models, card["config"], architecture="bandsplit-rnn",
                           stems=card["stems"], sample_rate=44100)
    engine = registry.get_engine(name, str(models), device="cpu")
    mix = next(r for r in train.load_set(tiny_set)["renders"] if r["split"] == "val")["mixture"]["path"]
    outputs, _ = separate_file(engine, tiny_set / mix, tmp_path / "stems", fmt="wav", bits=16)
    assert sorted(o.name for o in outputs) == sorted(bandsplit.STEMS)


def test_a_blended_specialist_weighs_its_stems_with_the_bases(tiny_set, tmp_path):
    """`export --base W --blend w` (stop 77): the specialist's stems are w·its estimate + (1 − w)·the
    base's (an ensemble of the two networks), the other stems the base's exactly; the weight is in
    the config the registry builds from and in the card's words; a weight outside (0, 1), a blend
    without a specialist and a blend of a kit-routed export are refused, nothing written."""
    base, start, run = _drums_specialist_of_a_start(tiny_set, tmp_path)
    assert train.main(["export", str(run / "last.pt"), "--to", str(tmp_path / "ship" / "tiny-mix.pt"), "--data",
                       str(tiny_set), "--name", "tiny-mix", "--base", start["weights"], "--blend", "0.25"]) == 0
    card = json.loads((tmp_path / "ship" / "tiny-mix.json").read_text())
    assert card["config"] == {"dim": 8, "layers": 1, "specialist": ["drums"], "specialist_weight": 0.25}
    assert card["training"]["specialist_weight"] == 0.25 and card["commercial_use"] is True
    assert card["training_data"].startswith(
        f"bass, vocals, other: tiny-v1 unchanged (weights SHA-256 {start['sha256']}); drums: 0.75 × tiny-v1's "
        "estimate + 0.25 × that of a specialist network trained on that stem's loss only, on ")
    got, want_base, want_run = _shipped_base_and_run(card["config"], tmp_path / "ship" / "tiny-mix.pt",
                                                     torch.load(start["weights"], weights_only=True),
                                                     _params(run / "last.pt"))
    assert torch.allclose(got[:, 0], 0.75 * want_base[:, 0] + 0.25 * want_run[:, 0], atol=1e-6)
    assert not torch.allclose(got[:, 0], want_base[:, 0]) and not torch.allclose(got[:, 0], want_run[:, 0])
    assert all(torch.equal(got[:, k], want_base[:, k]) for k in (1, 2, 3))
    _installed_model_separates_a_val_song(tmp_path / "ship" / "tiny-mix.pt", "tiny-mix", card, tiny_set, tmp_path)
    for bad in (0.0, 1.0, 1.5, -0.2, float("nan")):
        with pytest.raises(train.TrainingSetError, match="between 0 and 1"):
            train.export(run / "last.pt", tmp_path / "x.pt", base=Path(start["weights"]), blend=bad)
    with pytest.raises(train.TrainingSetError, match="--blend is for a specialist"):
        train.export(base / "best.pt", tmp_path / "x.pt", blend=0.5)
    with pytest.raises(train.TrainingSetError, match="no --take, --blend"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=Path(start["weights"]), blend=0.5, kit_routed_below=-20)
    with pytest.raises(SystemExit, match="between 0 and 1"):
        train.main(["export", str(run / "last.pt"), "--to", str(tmp_path / "x.pt"), "--base", start["weights"],
                    "--blend", "2"])
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(ValueError, match="between 0 and 1"):
        bandsplit.WithSpecialist(8, 1, specialist=("drums",), specialist_weight=1.0)


def test_a_blend_may_weigh_each_of_the_specialists_stems_on_its_own(tiny_set, tmp_path, capsys):
    """`export --blend drums=0.5 bass=0.25` (stop 80): a drums-and-bass specialist's drums are
    0.5·its estimate + 0.5·the base's and its bass 0.25·its + 0.75·the base's; the weights are in
    the config the registry builds from and in the card's words, which say the network trained on
    both stems' loss. Refused, nothing written: a stem of the run left out, a stem it did not
    train, a weight outside (0, 1), a word that is neither form, both forms mixed, a stem twice."""
    base = tmp_path / "base"
    assert train.main(["--data", str(tiny_set), "--out", str(base), *TINY]) == 0
    start = train.export(base / "best.pt", tmp_path / "ship" / "tiny-v1.pt", tiny_set, "tiny-v1")
    run = tmp_path / "spec"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *TINY, "--lr", "0.05", "--loss", "sdr",
                       "--loss-stems", "drums", "bass", "--init", start["weights"]]) == 0
    shipped = tmp_path / "ship" / "tiny-each.pt"
    assert train.main(["export", str(run / "last.pt"), "--to", str(shipped), "--data", str(tiny_set), "--name",
                       "tiny-each", "--base", start["weights"], "--blend", "drums=0.5", "bass=0.25"]) == 0
    card = json.loads(shipped.with_suffix(".json").read_text())
    assert card["config"] == {"dim": 8, "layers": 1, "specialist": ["drums", "bass"],
                              "specialist_weight": {"drums": 0.5, "bass": 0.25}}
    assert card["training"]["specialist_weight"] == {"drums": 0.5, "bass": 0.25}
    assert card["training_data"].startswith(
        f"vocals, other: tiny-v1 unchanged (weights SHA-256 {start['sha256']}); drums, bass: per stem, (1 − w) × "
        "tiny-v1's estimate + w × that of a specialist network trained on those stems' loss only, w = 0.5 for "
        "drums, 0.25 for bass, on ")
    got, want_base, want_run = _shipped_base_and_run(card["config"], shipped,
                                                     torch.load(start["weights"], weights_only=True),
                                                     _params(run / "last.pt"))
    assert torch.allclose(got[:, 0], 0.5 * want_base[:, 0] + 0.5 * want_run[:, 0], atol=1e-6)
    assert torch.allclose(got[:, 1], 0.75 * want_base[:, 1] + 0.25 * want_run[:, 1], atol=1e-6)
    assert not torch.allclose(got[:, 1], torch.lerp(want_base[:, 1], want_run[:, 1], 0.5), atol=1e-6)
    assert all(torch.equal(got[:, k], want_base[:, k]) for k in (2, 3))
    _installed_model_separates_a_val_song(shipped, "tiny-each", card, tiny_set, tmp_path)
    # only the drums of the same run: the card says what the network trained on
    train.export(run / "last.pt", tmp_path / "drums.pt", tiny_set, "tiny-drums", base=Path(start["weights"]),
                 take=["drums"], blend={"drums": 0.5})
    assert "drums: per stem, (1 − w) × tiny-v1's estimate + w × that of a specialist network trained on the loss " \
           "of drums and bass only, w = 0.5 for drums, on " in (tmp_path / "drums.json").read_text()
    for bad, why in (({"drums": 0.5}, "each of the specialist's stems"),
                     ({"drums": 0.5, "bass": 0.25, "vocals": 0.5}, "each of the specialist's stems"),
                     ({"drums": 0.5, "bass": 1.0}, "between 0 and 1"),
                     ({"drums": float("nan"), "bass": 0.5}, "between 0 and 1")):
        with pytest.raises(train.TrainingSetError, match=why):
            train.export(run / "last.pt", tmp_path / "x.pt", base=Path(start["weights"]), blend=bad)
    for words, why in ((["drums=0.5"], "each of the specialist's stems"), (["drums=0.5", "bass=0"], "between 0 and 1")):
        with pytest.raises(SystemExit, match=why):
            train.main(["export", str(run / "last.pt"), "--to", str(tmp_path / "x.pt"), "--base", start["weights"],
                        "--blend", *words])
    for words, why in ((["drums=half", "bass=0.25"], "is not a number"), (["0.5", "bass=0.25"], "STEM=W"),
                       (["voice=0.5"], "STEM=W"), (["drums=0.5", "drums=0.25"], "names a stem twice")):
        with pytest.raises(SystemExit) as exited:
            train.main(["export", str(run / "last.pt"), "--to", str(tmp_path / "x.pt"), "--base", start["weights"],
                        "--blend", *words])
        assert exited.value.code == 2 and why in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "x.json").exists()
    with pytest.raises(ValueError, match="each of the specialist's stems"):
        bandsplit.WithSpecialist(8, 1, specialist=("drums", "bass"), specialist_weight={"drums": 0.5})


def test_a_specialist_stored_in_float16_is_the_runs_network_rounded_to_it(tiny_set, tmp_path):
    """`export --base W --specialist-precision float16` (stop 78): the run's network is stored in
    float16 (the base as it is), so a second network of v19's size adds half as much to the file;
    the registry loads it back into float32 and the file computes exactly what the run's network
    rounded to float16 does; the card says so. Refused, nothing written: the flag without a
    specialist, with a kit-routed export (its expert is float16 already), an unknown precision."""
    base, start, run = _drums_specialist_of_a_start(tiny_set, tmp_path)
    half, full = tmp_path / "ship" / "tiny-half.pt", tmp_path / "ship" / "tiny-full.pt"
    assert train.main(["export", str(run / "last.pt"), "--to", str(half), "--data", str(tiny_set), "--name",
                       "tiny-half", "--base", start["weights"], "--blend", "0.5",
                       "--specialist-precision", "float16"]) == 0
    train.export(run / "last.pt", full, base=Path(start["weights"]), blend=0.5)
    stored = torch.load(half, weights_only=True)
    assert {v.dtype for k, v in stored.items() if k.startswith("specialist.")} == {torch.float16}
    assert {v.dtype for k, v in stored.items() if k.startswith("base.")} == {torch.float32}
    assert half.stat().st_size < full.stat().st_size
    card = json.loads(half.with_suffix(".json").read_text())
    assert card["config"] == {"dim": 8, "layers": 1, "specialist": ["drums"], "specialist_weight": 0.5}
    assert card["training"]["specialist_precision"] == "float16"
    assert "a specialist network trained on that stem's loss only (stored in float16), on " in card["training_data"]
    rounded = {k: v.half().float() for k, v in _params(run / "last.pt").items()}
    torch.manual_seed(81)  # one input for both calls
    got, want_base, want_run = _shipped_base_and_run(card["config"], half,
                                                     torch.load(start["weights"], weights_only=True), rounded)
    # the blend is taken in the masks since stop 81: the same to float rounding, far from the unrounded run's
    assert torch.allclose(got[:, 0], torch.lerp(want_base[:, 0], want_run[:, 0], 0.5), atol=1e-6)
    torch.manual_seed(81)
    _, base_again, unrounded = _shipped_base_and_run(card["config"], half, torch.load(start["weights"], weights_only=True),
                                            _params(run / "last.pt"))
    assert torch.equal(base_again, want_base)
    assert not torch.allclose(got[:, 0], torch.lerp(want_base[:, 0], unrounded[:, 0], 0.5), atol=1e-5)
    assert all(torch.equal(got[:, k], want_base[:, k]) for k in (1, 2, 3))
    _installed_model_separates_a_val_song(half, "tiny-half", card, tiny_set, tmp_path)
    with pytest.raises(train.TrainingSetError, match="--specialist-precision is for a specialist"):
        train.export(base / "best.pt", tmp_path / "x.pt", specialist_precision="float16")
    with pytest.raises(train.TrainingSetError, match="float16 already"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=Path(start["weights"]), kit_routed_below=-20,
                     specialist_precision="float16")
    with pytest.raises(train.TrainingSetError, match="one of float32, float16"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=Path(start["weights"]), specialist_precision="bfloat16")
    with pytest.raises(SystemExit) as exited:
        train.main(["export", str(run / "last.pt"), "--to", str(tmp_path / "x.pt"), "--base", start["weights"],
                    "--specialist-precision", "int8"])
    assert exited.value.code == 2 and not (tmp_path / "x.pt").exists()


def _subset(tiny_set: Path, to: Path) -> Path:
    """A copy of the tiny set whose manifest lists one train render fewer: another set (its own
    manifest hash) every input of which the tiny set lists."""
    shutil.copytree(tiny_set, to)
    manifest = json.loads((to / "manifest.json").read_text())
    dropped = next(r for r in manifest["renders"] if r["split"] == "train")
    manifest["renders"].remove(dropped)
    raw = json.dumps(manifest).encode()
    (to / "manifest.json").write_bytes(raw)
    (to / "manifest.sha256").write_text(hashlib.sha256(raw).hexdigest() + "  manifest.json\n")
    return to


def test_a_soup_averages_fine_tunes_of_one_start_and_its_card_pins_a_set_listing_all_they_learned(tiny_set, tmp_path,
                                                                                                   capsys):
    """`separation.train soup` (stop 47): the uniform average of runs from one start, exported like a
    run (here two vocals specialists, over their base); the card pins `--data`, which must list every
    input of each run's set (`--covers`), and names each run. Refused: one checkpoint, runs without a
    start, runs of another kind, a run's set that `--data` does not list or that was not named."""
    base = tmp_path / "base"
    assert train.main(["--data", str(tiny_set), "--out", str(base), *TINY]) == 0
    start = train.export(base / "best.pt", tmp_path / "ship" / "tiny-v1.pt", tiny_set, "tiny-v1")
    spec = [*TINY, "--lr", "0.05", "--loss", "sdr", "--loss-stems", "vocals", "--init", start["weights"]]
    other = _subset(tiny_set, tmp_path / "subset")
    assert train.main(["--data", str(tiny_set), "--out", str(tmp_path / "a"), *spec, "--seed", "1"]) == 0
    assert train.main(["--data", str(other), "--out", str(tmp_path / "b"), *spec, "--seed", "2"]) == 0
    a, b = tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt"
    out = train.soup([a, b], tmp_path / "soup.pt", tiny_set, [other], score=True)
    got, pa, pb = _params(tmp_path / "soup.pt"), _params(a), _params(b)
    assert got.keys() == pa.keys() and all(torch.allclose(got[k], (pa[k] + pb[k]) / 2) for k in got)
    assert any(not torch.equal(pa[k], pb[k]) for k in pa)  # two different runs, averaged
    ckpt = torch.load(tmp_path / "soup.pt", weights_only=False)
    assert ckpt["config"]["data_manifest_sha256"] == train.load_set(tiny_set)["_sha256"] == out["data_manifest_sha256"]
    assert [i["seed"] for i in ckpt["config"]["soup"]] == [1, 2] and "optimizer" not in ckpt
    assert ckpt["config"]["soup"][1]["data_manifest_sha256"] == train.load_set(other)["_sha256"]
    # scored on --data's select split as the trainer scores (the vocals: a vocals specialist)
    net = bandsplit.BandSplitRNN(8, 1)
    net.load_state_dict(got)
    select = [r for r in train.load_set(tiny_set)["renders"] if r["split"] == "select"]
    ev = train.evaluate(net, tiny_set, select)
    assert out["select"]["soup"]["score"] == pytest.approx(ev["sdr_median"]["vocals"], nan_ok=True)
    assert ckpt["best_select_sdr"] == out["select"]["soup"]["score"] and len(out["select"]["ingredients"]) == 2
    # a soup of a run with itself is that run
    same = train.soup([a, a], tmp_path / "same.pt", tiny_set)
    assert same["commercial_use"] is True and all(torch.equal(_params(tmp_path / "same.pt")[k], pa[k]) for k in pa)
    # exported over the base like a specialist; the card pins --data's manifest and names both runs
    card = train.export(tmp_path / "soup.pt", tmp_path / "ship" / "tiny-soup.pt", tiny_set, "tiny-soup",
                        base=Path(start["weights"]))
    written = json.loads((tmp_path / "ship" / "tiny-soup.json").read_text())
    assert card["config"] == {"dim": 8, "layers": 1, "specialist": ["vocals"]} and written["commercial_use"] is True
    assert written["training_data_manifest_sha256"] == train.load_set(tiny_set)["_sha256"]
    assert "vocals: the uniform average of the weights of 2 runs from one start (seed 1, 4 steps" in written["training_data"]
    assert f"on set {train.load_set(other)['_sha256']}, every input of which the set below lists" in written["training_data"]
    assert [i["seed"] for i in written["training"]["soup"]] == [1, 2] and "seed" not in written["training"]
    # with --start, the weights the runs started from are one more ingredient: one run and its start
    # average to the middle of the fine-tune (WiSE-FT), a plain network exported without --base
    full = tmp_path / "full"
    assert train.main(["--data", str(tiny_set), "--out", str(full), *TINY, "--lr", "0.05", "--init", start["weights"]]) == 0
    train.soup([full / "last.pt"], tmp_path / "wise.pt", tiny_set, start=Path(start["weights"]))
    mid, end, init = _params(tmp_path / "wise.pt"), _params(full / "last.pt"), torch.load(start["weights"], weights_only=True)
    assert all(torch.allclose(mid[k], (end[k] + init[k]) / 2) for k in mid) and any(not torch.equal(end[k], init[k]) for k in end)
    wise = train.export(tmp_path / "wise.pt", tmp_path / "ship" / "tiny-wise.pt", tiny_set, "tiny-wise")
    words = json.loads((tmp_path / "ship" / "tiny-wise.json").read_text())["training_data"]
    assert wise["config"] == {"dim": 8, "layers": 1} and words.startswith(
        "the uniform average of the weights of one run and of the start it was fine-tuned from (seed 0, 4 steps") and "), the run: trained on " in words
    assert f"fine-tuned from tiny-v1 (weights SHA-256 {start['sha256']})" in words
    with pytest.raises(train.TrainingSetError, match="--start .* the runs started from tiny-v1"):
        train.soup([full / "last.pt"], tmp_path / "refused.pt", tiny_set, start=tmp_path / "ship" / "tiny-wise.pt")
    # refused, nothing written
    refusals = [
        (([a], tiny_set), "at least two checkpoints \\(or one and --start\\)"),
        (([a, base / "last.pt"], tiny_set), "differs from .* in loss, loss_stems, init"),
        (([a, b], tiny_set), "name the set it trained on with --covers"),
        (([a, b], other, [tiny_set]), "does not list every input"),
    ]
    assert train.main(["--data", str(tiny_set), "--out", str(tmp_path / "scratch2"), *TINY, "--seed", "3"]) == 0
    refusals.append((([base / "last.pt", tmp_path / "scratch2" / "last.pt"], tiny_set), "no --init"))
    for args, why in refusals:
        with pytest.raises(train.TrainingSetError, match=why):
            train.soup(args[0], tmp_path / "refused.pt", *args[1:])
        assert not (tmp_path / "refused.pt").exists()
    with pytest.raises(SystemExit, match="separation.train soup: .*name the set it trained on"):
        train.main(["soup", str(a), str(b), "--to", str(tmp_path / "refused.pt"), "--data", str(tiny_set)])
    assert train.main(["soup", str(a), str(b), "--to", str(tmp_path / "cli.pt"), "--data", str(tiny_set),
                       "--covers", str(other)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["soup"] == str(tmp_path / "cli.pt")


def test_a_kit_routed_model_keeps_its_base_where_there_is_a_kit_and_gives_the_rest_to_its_expert(tiny_set, tmp_path,
                                                                                                 capsys):
    """`export --base W --kit-routed-below DB` (stop 69, `bandsplit.KitRouted`): one file with W and a
    fine-tune of W; per chunk, W's stems where W's drums estimate is at least DB re the mixture,
    the fine-tune's (stored in float16) elsewhere; the card says so and names both; a base that
    is not the run's start, a bad level or a kit-routed start are refused."""
    ship = _two_shipped(tiny_set, tmp_path)
    run = tmp_path / "run"
    assert train.main(["--data", str(tiny_set), "--out", str(run), *TINY, "--lr", "0.05",
                       "--init", str(ship / "tiny-a.pt")]) == 0
    with pytest.raises(train.TrainingSetError, match="needs --base"):
        train.export(run / "last.pt", tmp_path / "x.pt", kit_routed_below=-20.0)
    with pytest.raises(train.TrainingSetError, match="it routes over those weights"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=ship / "tiny-o.pt", kit_routed_below=-20.0)
    with pytest.raises(train.TrainingSetError, match="must be finite"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=ship / "tiny-a.pt", kit_routed_below=math.nan)
    with pytest.raises(SystemExit, match="must be finite"):
        train.main(["export", str(run / "last.pt"), "--to", str(tmp_path / "x.pt"), "--base", str(ship / "tiny-a.pt"),
                    "--kit-routed-below", "inf"])
    assert not (tmp_path / "x.pt").exists()
    base_state, run_state = torch.load(ship / "tiny-a.pt", weights_only=True), _params(run / "last.pt")
    x = torch.randn(6, 2, 22050) * torch.tensor([1, 2, 3, 1, 2, 3]).view(6, 1, 1)
    base, expert = bandsplit.BandSplitRNN(8, 1).eval(), bandsplit.BandSplitRNN(8, 1).eval()
    base.load_state_dict(base_state)
    expert.load_state_dict({k: v.half().float() for k, v in run_state.items()})  # as shipped: float16
    with torch.inference_mode():
        want_base, want_expert = base(x), expert(x)
    levels = bandsplit.level_db(want_base[:, bandsplit.STEMS.index("drums")], x)
    below = float(levels.median())  # half the chunks under it
    made = train.export(run / "last.pt", ship / "tiny-k.pt", tiny_set, "tiny-k", base=ship / "tiny-a.pt",
                        kit_routed_below=below)
    card = json.loads((ship / "tiny-k.json").read_text())
    assert card["config"] == made["config"] == {"dim": 8, "layers": 1, "kit_routed": {"below_db": below}}
    assert card["training"]["kit_routed"] == {"below_db": below, "expert_precision": "float16"}
    start = json.loads((ship / "tiny-a.json").read_text())
    assert card["training_data"].startswith(
        f"two networks, chosen per 10 s chunk by the first one's drums estimate: where it is at least {below:.2f} dB "
        f"re the mixture, tiny-a unchanged (weights SHA-256 {start['sha256']}); elsewhere (no drum kit), a network "
        "fine-tuned from it (stored in float16) on ")
    manifest = json.loads((tiny_set / "manifest.json").read_bytes()) | {"_sha256": card["training_data_manifest_sha256"]}
    made_as = {"init": card["training"]["init"], "stems": card["stems"], "data_manifest_sha256": manifest["_sha256"],
               "kit_routed": card["training"]["kit_routed"]}
    assert train.card_statement(manifest, made_as) == (card["training_data"], card["weights_licence"])
    state = torch.load(ship / "tiny-k.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for k, v in state.items() if k.startswith("expert."))
    assert all(torch.equal(state[f"base.{k}"], v) for k, v in base_state.items())
    routed = bandsplit.build(card["config"]).eval()
    routed.load_state_dict(state)
    with torch.inference_mode():
        got = routed(x)
    to_expert = levels < below
    assert 0 < int(to_expert.sum()) < len(x)
    for i in range(len(x)):
        assert torch.equal(got[i], (want_expert if to_expert[i] else want_base)[i]), i
    # a silent chunk (the zero-padded end of an input) reads 0 dB: never routed for want of a kit
    assert bandsplit.level_db(torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)).item() == 0
    # the registry loads it like any model and the engine separates with it
    models = tmp_path / "models"
    registry.install_model(ship / "tiny-k.pt", "clearstem-bandsplit-k", models, card["config"],
                           architecture="bandsplit-rnn", stems=card["stems"], sample_rate=44100)
    engine = registry.get_engine("clearstem-bandsplit-k", str(models), device="cpu")
    mix = next(r for r in train.load_set(tiny_set)["renders"] if r["split"] == "val")["mixture"]["path"]
    outputs, _ = separate_file(engine, tiny_set / mix, tmp_path / "stems", fmt="wav", bits=16)
    assert sorted(o.name for o in outputs) == sorted(bandsplit.STEMS)
    with pytest.raises(SystemExit, match="kit-less expert"):
        train.main(["--data", str(tiny_set), "--out", str(tmp_path / "r"), *TINY, "--init", str(ship / "tiny-k.pt")])
    with pytest.raises(ValueError, match=r"needs a drums \(and a vocals\) stem"):
        bandsplit.KitRouted(8, 1, stems=("bass", "vocals", "other"))
    with pytest.raises(ValueError, match=r"needs a drums \(and a vocals\) stem"):
        bandsplit.KitRouted(8, 1, stems=("drums", "bass", "other"), vocals_below_db=-20.0)
    with pytest.raises(ValueError, match="must be finite"):
        bandsplit.build({"dim": 8, "layers": 1, "kit_routed": {"below_db": math.inf}})

    def routes_as(name: str, to_the_expert: torch.Tensor) -> None:
        """The exported file's card restates itself, and its model takes each chunk's stems from
        the expert exactly where `to_the_expert` says, from the base elsewhere."""
        card = json.loads((ship / f"{name}.json").read_text())
        made = made_as | {"kit_routed": card["training"]["kit_routed"]}
        assert train.card_statement(manifest, made) == (card["training_data"], card["weights_licence"])
        model = bandsplit.build(card["config"]).eval()
        model.load_state_dict(torch.load(ship / f"{name}.pt", weights_only=True))
        with torch.inference_mode():
            got = model(x)
        for i in range(len(x)):
            assert torch.equal(got[i], (want_expert if to_the_expert[i] else want_base)[i]), (name, i)

    # with a vocals level too (stop 69's v32), only chunks under both levels go to the expert
    vocal_levels = bandsplit.level_db(want_base[:, bandsplit.STEMS.index("vocals")], x)
    quiet = float(vocal_levels[to_expert].max()) if int(to_expert.sum()) == 1 else float(vocal_levels[to_expert].median())
    with pytest.raises(train.TrainingSetError, match="give it too"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=ship / "tiny-a.pt", kit_routed_vocals_below=quiet)
    with pytest.raises(train.TrainingSetError, match="must be finite"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=ship / "tiny-a.pt", kit_routed_below=below,
                     kit_routed_vocals_below=math.inf)
    train.export(run / "last.pt", ship / "tiny-kv.pt", tiny_set, "tiny-kv", base=ship / "tiny-a.pt",
                 kit_routed_below=below, kit_routed_vocals_below=quiet)
    card = json.loads((ship / "tiny-kv.json").read_text())
    assert card["config"]["kit_routed"] == {"below_db": below, "vocals_below_db": quiet}
    assert card["training_data"].startswith(
        f"two networks, chosen per 10 s chunk by the first one's drums and vocals estimates: where the drums are under "
        f"{below:.2f} dB and the vocals under {quiet:.2f} dB re the mixture (no drum kit, no voice), a network "
        "fine-tuned from the other (stored in float16) on ")
    assert card["training_data"].endswith(f"; elsewhere, tiny-a unchanged (weights SHA-256 {start['sha256']})")
    narrower = to_expert & (vocal_levels < quiet)
    assert 0 <= int(narrower.sum()) < int(to_expert.sum())
    routes_as("tiny-kv", narrower)
    # with a voice gate (stop 70's v33), only the chunks under the drums level where the gate hears no voice
    torch.manual_seed(1)
    gate = voice_gate.VoiceGate().eval()
    torch.save(gate.state_dict(), tmp_path / "gate.pt")
    record = {"renders": 3, "banks": ["csound-gm"], "steps": 1, "batch": 1, "lr": 1e-3, "seed": 0,
              "with_kit_songs": True, "eq_db": 12.0, "lr_schedule": "cosine to 0"}  # v34's recipe
    (tmp_path / "gate.json").write_text(json.dumps(record | {"data_manifest_sha256": "0" * 64}))
    with pytest.raises(train.TrainingSetError, match="fit the gate on the expert's set"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=ship / "tiny-a.pt", kit_routed_below=below,
                     voice_gate=tmp_path / "gate.pt", voice_gate_below=0.0)
    (tmp_path / "gate.json").write_text(json.dumps(record | {"data_manifest_sha256": manifest["_sha256"]}))
    with pytest.raises(train.TrainingSetError, match="go together"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=ship / "tiny-a.pt", kit_routed_below=below,
                     voice_gate=tmp_path / "gate.pt")
    with pytest.raises(train.TrainingSetError, match="give it too"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=ship / "tiny-a.pt", voice_gate=tmp_path / "gate.pt",
                     voice_gate_below=0.0)
    with pytest.raises(train.TrainingSetError, match="not a voice gate"):
        train.export(run / "last.pt", tmp_path / "x.pt", base=ship / "tiny-a.pt", kit_routed_below=below,
                     voice_gate=ship / "tiny-a.pt", voice_gate_below=0.0)
    assert not (tmp_path / "x.pt").exists()
    with torch.inference_mode():
        logits = gate(x)
    p_below = float(logits[to_expert].min() + logits[to_expert].max()) / 2  # between the kit-less chunks' scores
    train.export(run / "last.pt", ship / "tiny-kg.pt", tiny_set, "tiny-kg", base=ship / "tiny-a.pt",
                 kit_routed_below=below, voice_gate=tmp_path / "gate.pt", voice_gate_below=p_below)
    card = json.loads((ship / "tiny-kg.json").read_text())
    gate_sha = hashlib.sha256((tmp_path / "gate.pt").read_bytes()).hexdigest()
    assert card["config"]["kit_routed"] == {"below_db": below, "voice_gate": {
        "below": p_below, "sha256": gate_sha, "data_manifest_sha256": manifest["_sha256"]} | record}
    assert card["training_data"].startswith(
        f"two networks and a voice detector, chosen per 10 s chunk: where the first network's drums estimate is under "
        f"{below:.2f} dB re the mixture and the detector's logit is under {p_below:.3f} (no drum kit, no voice heard), "
        "a network fine-tuned from the other (stored in float16) on ")
    assert (f"The detector (separation.voice_gate, weights SHA-256 {gate_sha}) learned from the stems of the train "
            f"renders, their drums left out, of training set {manifest['_sha256']} (3 renders, csound-gm), re-mixed with "
            "and without their vocals, each example's colour tilted at random by up to ±12 dB") in card["training_data"]
    quiet_chunks = to_expert & (logits < p_below)
    assert 0 < int(quiet_chunks.sum()) < int(to_expert.sum())
    routes_as("tiny-kg", quiet_chunks)


@pytest.fixture(scope="module")
def two_bank_set(tmp_path_factory):
    """tiny_set's kind of set, every train and select song rendered with two banks."""
    need_fluidsynth("csound-gm", "timgm6mb")
    out = tmp_path_factory.mktemp("two-banks")
    data.build(out, songs=10, seed=6, seconds=1.5, train_banks=("csound-gm", synth.BANK_ID), log=lambda *_: None)
    return out


def test_bank_mixing_takes_each_stem_from_a_bank_of_the_same_song_at_the_same_place(two_bank_set, tmp_path):
    """`--bank-mix`: every stem of a mixed example is one of the song's own renders (whichever bank)
    at one place, the stems of one example come from different banks, the mixture stays their sum,
    and at P = 0 nothing changes (older runs make the same examples)."""
    two = two_bank_set
    manifest = train.load_set(two)
    plain = train.Examples(two, manifest, "train", 1.0, seed=4)
    at_zero = train.Examples(two, manifest, "train", 1.0, seed=4, bank_mix=0.0)
    assert all((a == b).all() for a, b in zip(plain.example(2, 0), at_zero.example(2, 0)))
    mixed = train.Examples(two, manifest, "train", 1.0, seed=4, bank_mix=1.0)
    combos = set()
    for step in range(16):
        sources, start = mixed.picks(np.random.default_rng([4, step, 0]))
        assert len({r["song"] for r in sources.values()}) == 1  # one song, whichever bank each stem
        assert {r["split"] for r in sources.values()} == {"train"}
        assert 0 <= start <= min(mixed._frames(r) for r in sources.values()) - mixed.n + 1
        combos.add(tuple(sources[s]["soundfont"] for s in bandsplit.STEMS))
        mix, stems = mixed.example(step, 0)
        assert stems.shape == (len(bandsplit.STEMS), 2, mixed.n)
        assert abs(stems.sum(axis=0) - mix).max() < 1e-5
    assert any(len(set(c)) == 2 for c in combos)  # an example whose stems come from both banks
    assert not all((a == b).all() for a, b in zip(plain.example(5, 0), mixed.example(5, 0)))
    # one bank only: refused, and a probability outside [0, 1] is refused by the command
    with pytest.raises(train.TrainingSetError, match="more than one bank"):
        train.Examples(two, {"renders": [r for r in manifest["renders"] if r["soundfont"] == "csound-gm"]},
                       "train", 1.0, seed=4, bank_mix=0.5)
    with pytest.raises(SystemExit):
        train.main(["--data", str(two), "--out", str(tmp_path / "run"), *_tiny(**{"bank-mix": "1.5"})])
    assert not (tmp_path / "run").exists()


def test_a_bank_mixing_run_records_it_resumes_only_with_it_and_its_card_says_so(two_bank_set, tmp_path):
    two = two_bank_set
    run = tmp_path / "run"
    assert train.main(["--data", str(two), "--out", str(run), *_tiny(steps="2", **{"bank-mix": "0.5"})]) == 0
    assert torch.load(run / "last.pt", weights_only=False)["config"]["bank_mix"] == 0.5
    with pytest.raises(SystemExit, match="other settings \\(bank_mix\\)"):
        train.main(["--data", str(two), "--out", str(run), *_tiny(steps="2")])
    card = train.export(run / "last.pt", tmp_path / "w.pt", two, "tiny-mixed")
    assert json.loads(Path(card["card"]).read_text())["training"]["bank_mix"] == 0.5


def test_a_timbre_run_records_it_resumes_only_with_it_and_its_card_says_so(two_bank_set, tmp_path):
    """`--timbre P`: the examples differ from a plain run's, the mixture stays the stems' sum, the run
    records P, refuses a resume without it, the card says it; P outside [0, 1] is refused."""
    two = two_bank_set
    manifest = train.load_set(two)
    plain = train.Examples(two, manifest, "train", 1.0, seed=4)
    recoloured = train.Examples(two, manifest, "train", 1.0, seed=4, timbre=1.0)
    mix, stems = recoloured.example(3, 0)
    assert abs(stems.sum(axis=0) - mix).max() < 1e-5
    assert not (plain.example(3, 0)[0] == mix).all()
    with pytest.raises(SystemExit):
        train.main(["--data", str(two), "--out", str(tmp_path / "bad"), *_tiny(timbre="-0.1")])
    assert not (tmp_path / "bad").exists()
    run = tmp_path / "run"
    assert train.main(["--data", str(two), "--out", str(run), *_tiny(steps="2", timbre="0.5")]) == 0
    assert torch.load(run / "last.pt", weights_only=False)["config"]["timbre"] == 0.5
    with pytest.raises(SystemExit, match="other settings \\(timbre\\)"):
        train.main(["--data", str(two), "--out", str(run), *_tiny(steps="2")])
    card = train.export(run / "last.pt", tmp_path / "w.pt", two, "tiny-recoloured")
    assert json.loads(Path(card["card"]).read_text())["training"]["timbre"] == 0.5


def test_a_kit_swap_run_replays_the_drums_records_the_kits_and_its_card_names_them(two_bank_set, tmp_path):
    """`--kits K --kit-swap P`: an example's drums become the song's drum part replayed by a recorded
    kit at the place and level the bank's kit had there, the mixture stays the stems' sum, P = 0
    changes nothing; the run records the kits (pins, licences), refuses a resume without them,
    and the card names them with their licences; bad flags are refused with nothing written."""
    two = two_bank_set
    manifest = train.load_set(two)
    plain = train.Examples(two, manifest, "train", 1.0, seed=4)
    at_zero = train.Examples(two, manifest, "train", 1.0, seed=4, kits=["hydrogen-audiophob"], kit_swap=0.0)
    assert all((a == b).all() for a, b in zip(plain.example(2, 0), at_zero.example(2, 0)))
    swapped = train.Examples(two, manifest, "train", 1.0, seed=4, kits=["hydrogen-audiophob"], kit_swap=1.0)
    checked = 0
    for step in range(12):
        sources, start = plain.picks(np.random.default_rng([4, step, 0]))
        rendered = plain._read(sources["drums"], "drums", start)
        level = np.sqrt(np.mean(rendered.astype(np.float64) ** 2))
        if level < train.SILENT_RMS:
            continue
        played = swapped.kit_drums(sources["drums"]["song"], start, rendered, np.random.default_rng(step))
        assert played.shape == rendered.shape and not np.allclose(played, rendered)
        assert np.sqrt(np.mean(played.astype(np.float64) ** 2)) == pytest.approx(level, rel=1e-3)
        checked += 1
    assert checked >= 3
    mix, stems = swapped.example(3, 0)
    assert abs(stems.sum(axis=0) - mix).max() < 1e-5
    for bad in (["--kit-swap", "1.5", "--kits", "hydrogen-rumpf"], ["--kit-swap", "0.5"], ["--kits", "hydrogen-rumpf"]):
        with pytest.raises(SystemExit):
            train.main(["--data", str(two), "--out", str(tmp_path / "bad"), *_tiny(), *bad])
    assert not (tmp_path / "bad").exists()
    run = tmp_path / "run"
    assert train.main(["--data", str(two), "--out", str(run), *_tiny(steps="2"), "--kits", "hydrogen-audiophob",
                       "hydrogen-rumpf", "--kit-swap", "0.5"]) == 0
    config = torch.load(run / "last.pt", weights_only=False)["config"]
    assert config["kit_swap"] == 0.5 and [k["id"] for k in config["kits"]] == ["hydrogen-audiophob", "hydrogen-rumpf"]
    with pytest.raises(SystemExit, match="other settings \\(kit_swap, kits\\)"):
        train.main(["--data", str(two), "--out", str(run), *_tiny(steps="2")])
    card = json.loads(Path(train.export(run / "last.pt", tmp_path / "w.pt", two, "tiny-kits")["card"]).read_text())
    assert card["training"]["kit_swap"] == 0.5 and card["commercial_use"] is True
    assert "recorded drum kits" in card["training_data"] and "Emanuel Rumpf" in card["training_data"]
    assert "no third-party recordings but the drum kits' below" in card["training_data"]
    assert "CC-BY-3.0" in card["weights_licence"] and "CC0-1.0" in card["weights_licence"]


def test_a_kit_layer_run_adds_the_kit_to_the_banks_drums_and_says_so(two_bank_set, tmp_path, capsys):
    """`--kit-swap P --kit-layer` (stop 77): the kit's replay is added to the bank's drums, 0 to 12 dB
    under their level, instead of replacing them; the run records it and refuses a resume without
    it; the card says how the kits were used; --kit-layer without --kit-swap is refused."""
    two = two_bank_set
    manifest = train.load_set(two)
    plain = train.Examples(two, manifest, "train", 1.0, seed=4)
    swap = train.Examples(two, manifest, "train", 1.0, seed=4, kits=["hydrogen-audiophob"], kit_swap=1.0)
    layer = train.Examples(two, manifest, "train", 1.0, seed=4, kits=["hydrogen-audiophob"], kit_swap=1.0,
                           kit_layer=True)
    checked = 0
    for step in range(12):
        sources, start = plain.picks(np.random.default_rng([4, step, 0]))
        rendered = plain._read(sources["drums"], "drums", start)
        if np.sqrt(np.mean(rendered.astype(np.float64) ** 2)) < train.SILENT_RMS:
            continue
        song = sources["drums"]["song"]
        swapped = swap.kit_drums(song, start, rendered, np.random.default_rng(step))
        added = layer.kit_drums(song, start, rendered, np.random.default_rng(step)) - rendered
        # the same kit at the same place, at 0 to 12 dB under the level the swap gives it
        ratio = np.sqrt(np.mean(added.astype(np.float64) ** 2) / np.mean(swapped.astype(np.float64) ** 2))
        assert 10 ** (-12 / 20) - 1e-3 <= ratio <= 1 + 1e-3
        assert np.allclose(added, swapped * ratio, atol=1e-4)
        checked += 1
    assert checked >= 3
    mix, stems = layer.example(3, 0)
    assert abs(stems.sum(axis=0) - mix).max() < 1e-5
    with pytest.raises(SystemExit):
        train.main(["--data", str(two), "--out", str(tmp_path / "bad"), *_tiny(), "--kit-layer"])
    assert "--kit-layer goes with --kit-swap" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    run = tmp_path / "run"
    kits = ["--kits", "hydrogen-audiophob", "--kit-swap", "0.5"]
    assert train.main(["--data", str(two), "--out", str(run), *_tiny(steps="2"), *kits, "--kit-layer"]) == 0
    assert torch.load(run / "last.pt", weights_only=False)["config"]["kit_layer"] is True
    with pytest.raises(SystemExit, match="other settings \\(kit_layer\\)"):
        train.main(["--data", str(two), "--out", str(run), *_tiny(steps="2"), *kits])
    card = json.loads(Path(train.export(run / "last.pt", tmp_path / "w.pt", two, "tiny-layer")["card"]).read_text())
    assert card["training"]["kit_layer"] is True
    assert "the bank's drums with the song's drum part replayed over them, 0 to 12 dB quieter, by one of these " \
           "recorded drum kits" in card["training_data"]


def test_a_synth_kicks_run_adds_a_kick_on_the_kick_notes_records_it_and_its_card_says_so(two_bank_set, tmp_path,
                                                                                          capsys):
    """`--synth-kicks P` (stop 83): an example's drums get a kick synthesised for it (`kicks`) at the
    song's kick notes, 0 to 12 dB under the drums' level; the mixture stays the stems' sum and P = 0
    changes nothing; the run records P, refuses a resume without it, and the card says what the
    drums were; a P outside [0, 1] is refused with nothing written."""
    two = two_bank_set
    manifest = train.load_set(two)
    plain = train.Examples(two, manifest, "train", 1.0, seed=4)
    at_zero = train.Examples(two, manifest, "train", 1.0, seed=4, synth_kicks=0.0)
    assert all((a == b).all() for a, b in zip(plain.example(2, 0), at_zero.example(2, 0)))
    kicked = train.Examples(two, manifest, "train", 1.0, seed=4, synth_kicks=1.0)
    checked = 0
    for step in range(16):
        sources, start = plain.picks(np.random.default_rng([4, step, 0]))
        rendered = plain._read(sources["drums"], "drums", start)
        level = np.sqrt(np.mean(rendered.astype(np.float64) ** 2))
        song = sources["drums"]["song"]
        added = kicked.kick_drums(song, start, rendered, np.random.default_rng(step)) - rendered
        if level < train.SILENT_RMS or not any(n[2] in kicks.KICK_KEYS for n in kicked._notes(song)):
            assert not added.any()
            continue
        ratio = np.sqrt(np.mean(added.astype(np.float64) ** 2)) / level
        if ratio == 0:  # no kick note sounds in this excerpt
            continue
        assert 10 ** (-12 / 20) - 1e-3 <= ratio <= 1 + 1e-3
        spectrum = np.abs(np.fft.rfft(added[0].astype(np.float64))) ** 2
        assert spectrum[np.fft.rfftfreq(added.shape[1], 1 / 44100) < 250].sum() > 0.6 * spectrum.sum()
        checked += 1
    assert checked >= 3
    mix, stems = kicked.example(3, 0)
    assert abs(stems.sum(axis=0) - mix).max() < 1e-5
    with pytest.raises(SystemExit):
        train.main(["--data", str(two), "--out", str(tmp_path / "bad"), *_tiny(), "--synth-kicks", "1.5"])
    assert "--synth-kicks is a probability" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    run = tmp_path / "run"
    assert train.main(["--data", str(two), "--out", str(run), *_tiny(steps="2"), "--synth-kicks", "0.5"]) == 0
    config = torch.load(run / "last.pt", weights_only=False)["config"]
    assert config["synth_kicks"] == 0.5 and config["kicks_sha256"] == kicks.source_sha256()
    with pytest.raises(SystemExit, match="other settings \\(kicks_sha256, synth_kicks\\)"):
        train.main(["--data", str(two), "--out", str(run), *_tiny(steps="2")])
    card = json.loads(Path(train.export(run / "last.pt", tmp_path / "w.pt", two, "tiny-kicks")["card"]).read_text())
    assert card["training"]["synth_kicks"] == 0.5 and card["commercial_use"] is True
    assert card["training"]["kicks_sha256"] == kicks.source_sha256()
    assert ("in 50% of the training examples a kick synthesised by ClearStem for that example "
            f"(separation/training/kicks.py, source SHA-256 {kicks.source_sha256()}, LicenseRef-ClearStem-own-work) "
            "was added to the drums") in card["training_data"]
