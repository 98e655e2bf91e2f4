"""bench.separate_busy runs every (busy, threads) condition through the worker's pipeline and
records the thread count the model really ran with; bad counts are usage errors before any work."""
from __future__ import annotations

import json

import pytest
import torch

busy = pytest.importorskip("bench.separate_busy")  # import errors proper: tests/test_bench_imports.py


@pytest.fixture
def torch_threads_kept():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)  # a driver set to 1 changes the default of threads started later


def test_every_condition_is_measured_with_the_threads_it_names(tmp_path, torch_threads_kept):
    out = tmp_path / "busy.json"
    busy.main(["--songs", "1", "--seconds", "2", "--rounds", "1", "--threads", "0", "1", "--busy", "0", "1",
               "--out", str(out)])
    got = json.loads(out.read_text())
    conditions = {(c["busy"], c["threads_setting"]): c for c in got["conditions"]}
    assert set(conditions) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for (_, setting), c in conditions.items():
        assert c["torch_threads"] == (setting or torch_threads_kept)
        assert len(c["x_realtime_runs"]) == 1 and c["x_realtime_median"] > 0


@pytest.mark.parametrize("argv", [["--threads", "-1"], ["--busy", "-1"], ["--rounds", "0"]])
def test_bad_counts_are_refused_before_any_work(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        busy.main([*argv, "--out", str(tmp_path / "x.json")])
    assert stop.value.code == 2 and "must be" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
