"""The set-up script's failure path: an install that leaves the interpreter unable to import the
stack (a full disk half-installs torch) is reported with the free space, and a virtualenv made by
that run is removed so a rerun starts clean; one it found is left alone.

The interpreter here is a stand-in whose `-m venv` makes a virtualenv whose imports fail: the
real failure needs a full disk, which a test cannot make without filling the machine's."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE_PYTHON = """#!/bin/sh
# stand-in for python3: `-m venv DIR` makes DIR/bin/{python,pip}; that python cannot import anything
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  printf '#!/bin/sh\\nexit 0\\n' > "$3/bin/pip"
  printf '#!/bin/sh\\necho "ModuleNotFoundError: No module named torch" >&2\\nexit 1\\n' > "$3/bin/python"
  chmod +x "$3/bin/pip" "$3/bin/python"
fi
"""


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="the script checks Debian packages first")
@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_install_says_how_much_room_there_was(tmp_path, existing):
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    if existing:  # a virtualenv the script did not make: never deleted
        subprocess.run([str(fake), "-m", "venv", str(venv)], check=True)
        (venv / "keep.txt").write_text("the user's")
    run = subprocess.run(["bash", str(ROOT / "scripts" / "bootstrap.sh"), str(venv)], capture_output=True, text=True,
                         env=os.environ | {"PYTHON": str(fake)}, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "bootstrap: dependency install failed;" in run.stderr and "MB free where" in run.stderr
    if existing:
        assert (venv / "keep.txt").read_text() == "the user's" and "removed" not in run.stderr
    else:
        assert not venv.exists() and f"removed the new {venv}" in run.stderr
