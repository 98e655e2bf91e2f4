"""The benchmarks (`make bench`) keep up with the code they measure.

Every `bench/*.py` module is found with pkgutil (a new one is covered without editing this
file) and imported; every import statement inside them, including the ones deferred into
functions, must resolve too, so a renamed or moved class fails here rather than an hour into a
benchmark. Modules that need the `bench` extra (pyproject.toml) skip with the reason when it is
not installed. `bench.pipeline` also runs end to end on two short generated songs.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

import bench

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(m.name for m in pkgutil.iter_modules(bench.__path__, prefix="bench."))


def _bench_extra() -> set[str]:
    """Import names of the `bench` extra's distributions (fast-bss-eval -> fast_bss_eval)."""
    reqs = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["bench"]
    return {re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower().replace("-", "_") for req in reqs}


BENCH_EXTRA = _bench_extra()


def _import(name: str):
    """Import `name`; skip when what is missing is a package of the bench extra."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in BENCH_EXTRA:
            pytest.skip(f"needs the bench extra ({exc.name} is not installed): pip install -e '.[bench]'")
        raise


def test_discovery_covers_make_bench():
    """pkgutil finds the modules the Makefile's `bench` target runs."""
    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    run = re.findall(r"-m (bench\.\w+)", target)
    assert run and set(run) <= set(MODULES), (run, MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_bench_module_imports(name):
    module = _import(name)
    assert module.__name__ == name
    source = (ROOT / "bench" / f"{name.split('.', 1)[1]}.py").read_text()
    if 'if __name__ == "__main__":' in source:  # a `python -m bench.X` entry point
        assert callable(getattr(module, "main", None)), f"{name} runs main() but has none"


@pytest.mark.parametrize("name", MODULES)
def test_bench_module_deferred_imports_resolve(name):
    """Imports inside functions (run only mid-benchmark) name modules and attributes that exist."""
    tree = ast.parse((ROOT / "bench" / f"{name.split('.', 1)[1]}.py").read_text())
    checked = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                _import(alias.name)
                checked += 1
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            module_name = importlib.util.resolve_name("." * node.level + (node.module or ""), "bench")
            module = _import(module_name)
            for alias in node.names:
                if not hasattr(module, alias.name):  # maybe a submodule its package has not imported
                    try:
                        importlib.import_module(f"{module_name}.{alias.name}")
                    except ModuleNotFoundError:
                        pytest.fail(f"{name}: from {module_name} import {alias.name}: no such name")
                checked += 1
    assert checked


def test_pipeline_runs_on_tiny_songs(tmp_path, capsys):
    """The whole of `python -m bench.pipeline`: scan, index + identify, dsp separation, report."""
    pipeline = _import("bench.pipeline")
    out = tmp_path / "pipeline.json"
    summary = pipeline.main(["--songs", "2", "--seconds", "8", "--repeats", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == summary
    assert [r["song"] for r in summary["rows"]] == [0, 1]
    assert all(r["seconds"] == pytest.approx(8, abs=0.01) for r in summary["rows"])
    # each song is found in the index as itself (8 s: the matcher needs 5 s of Chromaprint items)
    assert summary["self_match_rate"] == 1.0
    assert all(v > 0 for v in summary["median"].values())
    printed = capsys.readouterr().out
    assert "dsp separation" in printed and "full-song self-match     : 100%" in printed
