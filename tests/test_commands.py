"""Operator commands: onboarding, catalog ingest, identify, and the embedded demo."""
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from clearstem.accounts.models import Organisation, User
from licensing.models import Recording

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_org_and_user_with_token(db):
    assert "created label organisation 'acme'" in run("create_org", "acme", "--kind", "label", "--name", "Acme")
    token = run("create_user", "ann@acme.test", "--org", "acme", "--role", "admin", "--token").strip()
    user = User.objects.get(username="ann@acme.test")
    assert Token.objects.get(user=user).key == token and user.organisation.kind == "label"
    assert not user.has_usable_password()
    with pytest.raises(CommandError, match="already exists"):
        run("create_org", "acme", "--kind", "label")
    with pytest.raises(CommandError, match="no organisation"):
        run("create_user", "bob@x.test", "--org", "missing")
    assert Organisation.objects.count() == 1 and User.objects.count() == 1


def test_catalog_ingest_is_idempotent_and_reports_bad_files(orgs, audio_dir, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF0000WAVEnope")
    meta = tmp_path / "meta.csv"
    meta.write_text("file,isrc,title,artist\nsong11.wav,QZ-AAA-26-00011,Eleven,Band\n")
    with pytest.raises(SystemExit) as exc:
        run("catalog_ingest", str(audio_dir / "song11.wav"), str(audio_dir / "song12.wav"), str(bad),
            "--label", "label-a", "--metadata", str(meta))
    assert exc.value.code == 1
    rec = Recording.objects.get(isrc="QZAAA2600011")
    assert rec.title == "Eleven" and rec.artist == "Band"
    assert Recording.objects.get(title="song12").isrc is None
    from fingerprint.models import ReferenceFingerprint
    from fingerprint.services import index_store

    # the batch updated the identification index once, at the end (even though a file failed)
    assert set(ReferenceFingerprint.objects.values_list("id", flat=True)) <= index_store().index().keys()
    out = run("catalog_ingest", str(audio_dir / "song11.wav"), "--label", "label-a")
    assert "already registered" in out and "0 registered, 1 already registered, 0 failed" in out
    assert Recording.objects.count() == 2


def test_identify_json_lines(orgs, audio_dir):
    run("catalog_ingest", str(audio_dir / "song11.wav"), "--label", "label-a")
    lines = run("identify", str(audio_dir / "excerpt11.flac"), str(audio_dir / "original.wav"), "--json").splitlines()
    first, second = (json.loads(x) for x in lines)
    assert first["file"].endswith("excerpt11.flac") and first["matches"][0]["title"] == "song11"
    assert {"isrc", "recording", "score", "query_start_s", "ref_start_s", "duration_s"} <= set(first["matches"][0])
    assert second["matches"] == [] and second["elapsed_ms"] >= 0


def embedded_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CLEARSTEM_BROKER_URL", "CLEARSTEM_DATA_DIR", "DJANGO_SETTINGS_MODULE")}
    env["CLEARSTEM_DATA_DIR"] = str(tmp_path / "instance")
    return env


@pytest.mark.slow
def test_demo_runs_on_the_embedded_default(tmp_path):
    """`manage.py demo --no-serve` on a fresh data dir: SQLite, in-process worker, dev key."""
    proc = subprocess.run([sys.executable, "manage.py", "demo", "--no-serve"], cwd=ROOT, env=embedded_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "all checks passed" in out
    assert "decision: DENIED" in out and "no_license" in out
    assert out.count("provenance VERIFIED") == 8
    # a delivered WAV carries content credentials: a flipped byte breaks their binding
    assert "verify_ledger: OK" in out and "NOT VERIFIED (stem: the file was changed after it was signed)" in out
    # one stem downloaded as FLAC, checked by its embedded C2PA manifest alone
    c2pa = out[out.index("downloaded as FLAC, checked from the file alone (C2PA)"):]
    for name in ("Content credentials", "Hard binding", "Record signature", "Rendition of the stem", "Ledger entry",
                 "Signed tree head", "Inclusion proof"):
        assert f"     {name}: ok — " in c2pa, c2pa
    assert "chains to a trusted root" in c2pa and "FAILED" not in c2pa and "     verdict: VERIFIED" in c2pa
    key = tmp_path / "instance" / "keys" / "signing-ed25519.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "instance" / "clearstem.sqlite3").exists()
