"""The verifier ships alone: `pip install ./verifier` into a bare virtualenv (no Django, no torch,
no checkout on the path) gives a `clearstem-verify` command that accepts a stem the product made
and refuses the same stem with one byte flipped, saying exactly what the product's own
`python -m provenance.verify` says."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clearstem.jobs.models import Job
from clearstem.jobs.separation import do_separate_job
from clearstem.jobs.services import do_process_job
from clearstem.storage import local_path
from provenance.keys import verification_keys
from provenance.services import stem_bundle
from tests.conftest import upload_file

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # ~25 s: a fresh venv and a pip install (measured 14-22 s) before the job runs


def bare_env() -> dict:
    """The environment without anything that would put this checkout or its venv on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def verifier_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("verifier") / "venv"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=bare_env())
    pip = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", str(ROOT / "verifier")],
                         capture_output=True, text=True, env=bare_env(), cwd=venv.parent, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    print(f"\nclearstem-verify: new venv + pip install took {time.perf_counter() - t0:.1f} s")
    return venv


def run_in(venv: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True,
                          env=bare_env(), cwd=cwd, timeout=120)


def finished_stem(clients, audio_dir: Path):
    """A stem separated by the product (the pipeline's services, in this process)."""
    up = upload_file(clients["producer"], audio_dir / "excerpt11.flac").json()
    r = clients["producer"].post("/api/v1/jobs/", {"upload": up["id"], "requested_stems": ["vocals"], "purpose": "remix",
                                                   "territory": "GB", "model": "dsp"}, format="json")
    assert r.status_code == 201, r.content
    assert do_process_job(r.json()["id"]).state == "queued"
    job = do_separate_job(r.json()["id"])
    assert job.state == Job.State.DONE, (job.error_code, job.error_message)
    return job.stem_files.get()


def test_the_standalone_verifier_checks_a_stem_the_product_made(verifier_venv, clients, catalog, audio_dir,
                                                                tmp_path):
    for module in ("django", "torch", "provenance", "sharedcore"):
        probe = run_in(verifier_venv, "python", "-c", f"import {module}", cwd=tmp_path)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, (module, probe.stderr)

    stem = finished_stem(clients, audio_dir)
    stem_path, bundle_path, key_path = tmp_path / "vocals.wav", tmp_path / "vocals.provenance.json", tmp_path / "k.pem"
    with local_path(stem.file.name) as stored:
        shutil.copyfile(stored, stem_path)
    bundle_path.write_text(json.dumps(stem_bundle(stem)))
    key_path.write_text(next(iter(verification_keys().values())))
    args = [str(stem_path), str(bundle_path), "--pubkey", str(key_path)]

    ok = run_in(verifier_venv, "clearstem-verify", *args, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1].startswith("VERIFIED: vocals.wav is stem 'vocals'")
    assert "included in the signed tree" in ok.stdout
    listed = run_in(verifier_venv, "clearstem-verify", *args, "-v", cwd=tmp_path)
    assert [line.split(":")[1].strip() for line in listed.stdout.splitlines() if line.startswith("check: ")] == [
        "Record signature", "Stem file", "Ledger entry", "Signed tree head", "Inclusion proof"]

    data = bytearray(stem_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    stem_path.write_bytes(bytes(data))
    bad = run_in(verifier_venv, "clearstem-verify", *args, cwd=tmp_path)
    assert bad.returncode == 1 and bad.stdout.splitlines()[-1] == "NOT VERIFIED", bad.stdout + bad.stderr
    assert [line for line in bad.stdout.splitlines() if line.startswith("FAIL: ")] == [
        f"FAIL: stem hash mismatch: file {hashlib.sha256(data).hexdigest()}, record {stem.sha256}"]

    # one verifier: the product's module says the same, word for word
    product = subprocess.run([sys.executable, "-m", "provenance.verify", *args], capture_output=True, text=True,
                             cwd=ROOT, timeout=120)
    assert (product.returncode, product.stdout) == (bad.returncode, bad.stdout)
