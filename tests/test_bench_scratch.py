"""Benchmarks' scratch folders go when the benchmark does, on success and on an error alike."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import sys
from bench.scratch import scratch_dir
d = scratch_dir("clearstem-scratchtest-")
(d / "sub").mkdir()
(d / "sub" / "stem.wav").write_bytes(b"x" * 1000)
print(d, flush=True)
if sys.argv[1] == "fail":
    raise RuntimeError("the benchmark failed")
"""


@pytest.mark.parametrize("how, rc", [("ok", 0), ("fail", 1)])
def test_scratch_dir_is_removed_when_the_process_exits(how, rc):
    run = subprocess.run([sys.executable, "-c", SCRIPT, how], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == rc, run.stderr
    folder = Path(run.stdout.strip())
    assert folder.name.startswith("clearstem-scratchtest-")
    assert not folder.exists()
    if how == "fail":
        assert "the benchmark failed" in run.stderr
